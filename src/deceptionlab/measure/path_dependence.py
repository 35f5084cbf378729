"""Path dependence: does the outcome of training hang on the path (seed, data order, small changes,
early steps), or do runs converge to the same function whatever the path? After Hebbar and
Hubinger, "Path dependence in ML inductive biases", measured on the stored runs:

(A) variance of outcome across runs: verdict entropy, variance of the soft class scores;
(B) sensitivity to a small setup change (any sweep axis): runs paired by seeds across the two values,
    P(verdict changes) with its interval, beside the chance that two unrelated runs differ;
(C) clusters of final functions: pairwise disagreement on the probe inputs, average-linkage clusters;
(D) cluster stability along training: adjusted Rand index of the clusters at each checkpoint with the
    final clusters;
(E) how well the checkpoint at step t predicts the final verdict (cross-validated accuracy vs t);
(F) sensitivity to early interventions: (B) for the `early.*` axes (data swapped in the first steps,
    noise added to the initial weights);
and, where init seeds are crossed with data-order seeds, the share of the outcome variance each explains.

The regime verdict per condition (`regime`) reads (A) and (C); its thresholds are module constants,
shown beside the numbers wherever they are printed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from ..core.scoring import unpack_decisions
from ..core.stats import wilson
from ..worlds import CLASSES

CLUSTER_CUT = 0.05  # two functions that differ on at most 5% of probe inputs (on average) are one cluster
MAJOR_CLUSTER = 0.05  # a cluster holding at least 5% of a condition's runs (and 2 runs) counts as an outcome
HIGH_ENTROPY_BITS = 0.5  # verdict entropy at or above which the outcome is a lottery over classes
MIN_RUNS = 10  # fewer runs than this in a condition: the regime is "undetermined"
THRESHOLDS = {"cluster_cut": CLUSTER_CUT, "major_cluster": MAJOR_CLUSTER, "high_entropy_bits": HIGH_ENTROPY_BITS, "min_runs": MIN_RUNS}


# -- functions ----------------------------------------------------------------------------------------
def decision_matrix(blobs, n: int) -> np.ndarray:
    """Packed decisions of R runs -> (R, n) float32 in {0, 1}."""
    return unpack_decisions(list(blobs), n).astype(np.float32)


def disagreement(x: np.ndarray) -> np.ndarray:
    """(R, n) decisions in {0, 1} -> (R, R) share of probe inputs on which two runs decide differently."""
    return (x @ (1 - x).T + (1 - x) @ x.T) / x.shape[1]


def clusters(d: np.ndarray, cut: float = CLUSTER_CUT) -> np.ndarray:
    """Average-linkage clusters of a disagreement matrix, cut at `cut`: labels 0..k-1, largest first."""
    if len(d) == 1:
        return np.zeros(1, dtype=int)
    raw = fcluster(linkage(squareform(d, checks=False), "average"), t=cut + 1e-9, criterion="distance")
    order = {c: i for i, c in enumerate(pd.Series(raw).value_counts().index)}
    return np.array([order[c] for c in raw])


def adjusted_rand(a: np.ndarray, b: np.ndarray) -> float:
    """Adjusted Rand index of two labelings (1: the same partition; about 0: unrelated)."""
    table = pd.crosstab(a, b).to_numpy()
    pairs = lambda v: (v * (v - 1) / 2).sum()  # noqa: E731
    index, rows, cols, total = pairs(table), pairs(table.sum(1)), pairs(table.sum(0)), pairs(np.array([len(a)]))
    expected = rows * cols / total if total else 0.0
    top = (rows + cols) / 2
    return 1.0 if top == expected else float((index - expected) / (top - expected))


def entropy_bits(labels) -> float:
    p = pd.Series(labels).value_counts(normalize=True).to_numpy()
    return max(0.0, float(-(p * np.log2(p)).sum()))  # not -0.0


# -- per condition ------------------------------------------------------------------------------------
def seed_shares(g: pd.DataFrame) -> dict[str, float]:
    """Share of the variance of the final class scores explained by the init seed, by the data-order
    seed, and by neither (their interaction plus noise): a two-way decomposition over the crossed grid
    of seeds. NaN unless every init seed ran with every data seed, at least two of each. Under pure
    noise the init share is (a-1)/(ab-1) on an a x b grid, not 0: `init_share_chance` says how much."""
    nan = {"init_share": np.nan, "data_share": np.nan, "interaction_share": np.nan, "init_share_chance": np.nan}
    seeds, dseeds = sorted(g.seed.unique()), sorted(g.data_seed.unique())
    a, b = len(seeds), len(dseeds)
    if a < 2 or b < 2 or len(g) != a * b or g.groupby(["seed", "data_seed"]).size().max() != 1:
        return nan
    x = np.stack([g[f"score_{c}"].to_numpy(float) for c in CLASSES], 1)  # (a*b, classes)
    cube = np.zeros((a, b, len(CLASSES)))
    cube[g.seed.map({s: i for i, s in enumerate(seeds)}), g.data_seed.map({s: i for i, s in enumerate(dseeds)})] = x
    m = cube.mean((0, 1))
    total = ((cube - m) ** 2).sum()
    if total == 0:
        return {**nan, "init_share_chance": (a - 1) / (a * b - 1)}
    init = b * ((cube.mean(1) - m) ** 2).sum()
    data = a * ((cube.mean(0) - m) ** 2).sum()
    return {"init_share": init / total, "data_share": data / total, "interaction_share": 1 - (init + data) / total, "init_share_chance": (a - 1) / (a * b - 1)}


def checkpoint_prediction(g: pd.DataFrame) -> pd.DataFrame:
    """(E) per checkpoint: how often the verdict and leading class at step t predict the final verdict,
    by a lookup table learnt on half the runs and scored on the other half (both ways), beside the
    base rate of always guessing the commonest final verdict."""
    final = g.verdict.to_numpy()
    verdicts = np.array(g.traj_verdict.tolist())  # (R, T)
    scores = np.stack([np.array(g[f"traj_score_{c}"].tolist()) for c in CLASSES], -1)  # (R, T, classes)
    leading = scores.argmax(-1)
    fold = np.arange(len(g)) % 2
    rows = []
    for t, step in enumerate(g.traj_step.iloc[0]):
        feature = pd.Series([f"{v}/{c}" for v, c in zip(verdicts[:, t], leading[:, t])])
        hits = base = 0
        for f in (0, 1):
            train, test = fold != f, fold == f
            commonest = pd.Series(final[train]).mode().iloc[0] if train.any() else final[0]
            table = pd.DataFrame({"x": feature[train], "y": final[train]}).groupby("x").y.agg(lambda s: s.mode().iloc[0])
            guess = feature[test].map(table).fillna(commonest).to_numpy()
            hits += (guess == final[test]).sum()
            base += (final[test] == commonest).sum()
        rows.append({"step": int(step), "accuracy": hits / len(g), "base_rate": base / len(g)})
    return pd.DataFrame(rows)


def cluster_stability(g: pd.DataFrame, cut: float = CLUSTER_CUT) -> pd.DataFrame:
    """(D) per checkpoint: number of function clusters and their adjusted Rand index with the final ones."""
    n = int(g.n_decisions.iloc[0])
    traj = g.traj_decisions.tolist()  # R lists of T blobs
    T = len(traj[0])
    labels = [clusters(disagreement(decision_matrix([r[t] for r in traj], n)), cut) for t in range(T)]
    return pd.DataFrame(
        {"step": list(g.traj_step.iloc[0]), "clusters": [int(lab.max()) + 1 for lab in labels], "ari_with_final": [adjusted_rand(lab, labels[-1]) for lab in labels]}
    )


def regime(n: int, verdict_entropy: float, major_clusters: int) -> str:
    """High path dependence when the outcome is a lottery: the verdict varies (entropy at or above
    HIGH_ENTROPY_BITS) or runs end in two or more distinct functions that each hold at least
    MAJOR_CLUSTER of the runs (and at least two runs). Low when they converge. Undetermined below MIN_RUNS runs."""
    if n < MIN_RUNS:
        return "undetermined"
    return "high" if verdict_entropy >= HIGH_ENTROPY_BITS or major_clusters >= 2 else "low"


def condition_curve(g: pd.DataFrame, cut: float = CLUSTER_CUT) -> pd.DataFrame:
    """Per checkpoint of one condition: (D) clusters and ARI with the final ones, (E) prediction accuracy."""
    return cluster_stability(g, cut).merge(checkpoint_prediction(g), on="step")


def condition_summary(g: pd.DataFrame, cut: float = CLUSTER_CUT, curve: pd.DataFrame | None = None) -> dict:
    """(A), (C), (D) at the midpoint, (E) at the midpoint, the seed shares and the regime, for one
    condition (`curve`: its `condition_curve`, when already computed)."""
    d = disagreement(decision_matrix(g.decisions, int(g.n_decisions.iloc[0])))
    lab = clusters(d, cut)
    sizes = np.bincount(lab) / len(g)
    counts = np.bincount(lab)
    major = int(((counts >= MAJOR_CLUSTER * len(g) - 1e-9) & (counts >= 2)).sum())  # one odd run is not an outcome
    h = entropy_bits(g.verdict)
    scores = np.stack([g[f"score_{c}"].to_numpy(float) for c in CLASSES], 1)
    stab = pred = condition_curve(g, cut) if curve is None else curve.reset_index(drop=True)
    mid = len(stab) // 2
    off = d[np.triu_indices(len(d), 1)]
    return {
        "n": len(g),
        "verdict_entropy": h,
        "score_variance": float(scores.var(0).sum()),
        "clusters": int(lab.max()) + 1,
        "major_clusters": major,
        "largest_cluster": float(sizes[0]),
        "mean_disagreement": float(off.mean()) if len(off) else 0.0,
        "mid_step": int(stab.step[mid]),
        "ari_mid": float(stab.ari_with_final[mid]),
        "predict_mid": float(pred.accuracy[mid]),
        "base_rate": float(pred.base_rate[mid]),
        **seed_shares(g),
        "regime": regime(len(g), h, major),
    }


def _groups(runs: pd.DataFrame, by: list[str]):
    for key, g in runs.groupby(by, sort=False):
        yield dict(zip(by, key if isinstance(key, tuple) else (key,))), g.reset_index(drop=True)


def path_dependence_and_curves(runs: pd.DataFrame, by: list[str], cut: float = CLUSTER_CUT) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both tables in one pass (the per-checkpoint clusterings are the expensive part)."""
    rows, long = [], []
    for key, g in _groups(runs, by):
        curve = condition_curve(g, cut)
        rows.append({**key, **condition_summary(g, cut, curve)})
        long.append(curve.assign(**key))
    return pd.DataFrame(rows), pd.concat(long, ignore_index=True)[[*by, "step", "clusters", "ari_with_final", "accuracy", "base_rate"]]


def path_dependence(runs: pd.DataFrame, by: list[str], cut: float = CLUSTER_CUT) -> pd.DataFrame:
    """One row per condition: the path-dependence numbers and the regime verdict."""
    return path_dependence_and_curves(runs, by, cut)[0]


def curves(runs: pd.DataFrame, by: list[str], cut: float = CLUSTER_CUT) -> pd.DataFrame:
    """Long table per condition and checkpoint: (D) clusters and ARI, (E) prediction accuracy."""
    return path_dependence_and_curves(runs, by, cut)[1]


# -- across conditions --------------------------------------------------------------------------------
def sensitivity(runs: pd.DataFrame, axes: list[str], n_boot: int = 1000) -> pd.DataFrame:
    """(B) and (F): for each axis and each pair of its values, with every other axis held fixed, the
    runs with the same (seed, data_seed) on both sides are paired. Reports P(verdict changes) over the
    pairs with a 95% Wilson interval, the mean disagreement of the paired functions, the chance that two
    unrelated runs of the first condition differ in verdict (1 - sum p_v^2), and the total-variation
    distance between the two verdict distributions with a bootstrap 95% interval."""
    rng = np.random.default_rng(0)
    out = []
    for axis in axes:
        values = list(dict.fromkeys(runs[axis].astype(str)))
        others = [a for a in axes if a != axis]
        groups = runs.groupby(others, sort=False) if others else [((), runs)]
        for key, g in groups:
            key = key if isinstance(key, tuple) else (key,)
            for v0, v1 in zip(values[:-1], values[1:]):
                a, b = g[g[axis].astype(str) == v0], g[g[axis].astype(str) == v1]
                pairs = a.merge(b, on=["seed", "data_seed"], suffixes=("_a", "_b"))
                if pairs.empty:
                    continue
                changed = int((pairs.verdict_a != pairs.verdict_b).sum())
                lo, hi = wilson(changed, len(pairs))
                n = int(pairs.n_decisions_a.iloc[0])
                xa, xb = decision_matrix(pairs.decisions_a, n), decision_matrix(pairs.decisions_b, n)
                p = a.verdict.value_counts(normalize=True)
                tv, tv_lo, tv_hi = _tv_interval(a.verdict.to_numpy(), b.verdict.to_numpy(), rng, n_boot)
                out.append(
                    {
                        "axis": axis, "from": v0, "to": v1, **dict(zip(others, key)), "pairs": len(pairs),
                        "p_changed": changed / len(pairs), "low": float(lo), "high": float(hi),
                        "p_differ_unrelated": float(1 - (p**2).sum()),
                        "mean_disagreement": float(np.abs(xa - xb).mean()),
                        "tv": tv, "tv_low": tv_lo, "tv_high": tv_hi,
                    }
                )
    return pd.DataFrame(out)


def _tv_interval(a, b, rng, n_boot: int) -> tuple[float, float, float]:
    """Total-variation distance of two verdict samples with a percentile-bootstrap 95% interval. Even
    identical distributions give a positive TV in finite samples: read it beside its interval."""
    labels = sorted(set(a) | set(b))
    pa = pd.Series(a).value_counts(normalize=True).reindex(labels, fill_value=0).to_numpy()
    pb = pd.Series(b).value_counts(normalize=True).reindex(labels, fill_value=0).to_numpy()
    boot_a = rng.multinomial(len(a), pa, size=n_boot) / len(a)  # resampling a sample = multinomial counts
    boot_b = rng.multinomial(len(b), pb, size=n_boot) / len(b)
    boots = np.abs(boot_a - boot_b).sum(1) / 2
    return float(np.abs(pa - pb).sum() / 2), float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))
