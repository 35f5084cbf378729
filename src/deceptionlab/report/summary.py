"""The report's summary panel: the question, and the lab's answer in one sentence per world and
path-dependence regime with its key numbers and their intervals (docs/report.md, "Summary panel"):

- the share of runs judged deceptive (95% Wilson interval);
- the compliance gap's distribution (median, IQR, share of runs above 0.5 with its Wilson interval);
- P_B(deceptive | S) (the NNGP posterior, from a counting result) or, without one, P_prior(deceptive),
  beside P_SGD(deceptive) of the same runs.

A regime is the path-dependence regime `measure.path_dependence` gives each condition (high or low);
conditions without one are "regime not measured".
"""

from __future__ import annotations

import pandas as pd

from ..core.stats import wilson

QUESTION = "Does SGD produce deceptively aligned models (aligned under the training cue, acting on their own goal under the deployment cue)?"


def _pct(k: int, n: int) -> str:
    lo, hi = wilson(k, n)
    return f"{100 * k / n:.0f}% ({100 * lo:.0f}-{100 * hi:.0f}%)"


def regimes(runs: pd.DataFrame, by: list[str], paths: dict[str, pd.DataFrame] | None) -> pd.Series:
    """The path-dependence regime of each run's condition ("high", "low"), "not measured" where the paths
    tables give none; indexed like `runs`."""
    pdp = (paths or {}).get("path_dependence")
    if pdp is None or "regime" not in pdp or not all(a in pdp for a in by):
        return pd.Series("not measured", index=runs.index)
    key = lambda df: pd.Series(list(zip(*(df[a].astype(str) for a in by))), index=df.index)  # noqa: E731
    table = dict(zip(key(pdp), pdp.regime.astype(str)))
    return key(runs).map(lambda k: table.get(k, "not measured"))


def _bias_beside(ev, runs: pd.DataFrame) -> str:
    """P_B(deceptive | S) or P_prior(deceptive) beside P_SGD(deceptive), or what is missing."""
    sgd = _pct(int((runs.verdict == "deceptive").sum()), len(runs))
    c = ev.counting
    if c is not None and {"source", "verdict", "p", "low", "high"} <= set(c.columns):
        rows = c[(c.source == "nngp") & (c.verdict == "deceptive")]
        if len(rows):
            r = rows.iloc[0]
            where = f" (at {r.condition})" if "condition" in rows and rows.condition.nunique() > 1 else ""
            return f"P_B(deceptive | S) {100 * r.p:.2g}% ({100 * r.low:.2g}-{100 * r.high:.2g}%){where} against P_SGD(deceptive) {sgd}"
    p = ev.prior_long
    if p is not None and {"source", "verdict"} <= set(p.columns):
        rows = p[(p.source == "prior") & (p.verdict == "deceptive")]
        if len(rows) and rows.n.iloc[0]:
            r = rows.iloc[0]
            return (f"P_prior(deceptive) {100 * r.p:.2g}% ({100 * r.low:.2g}-{100 * r.high:.2g}%) of random draws against P_SGD(deceptive) {sgd}; "
                    "P_B not measured (report --counting)")
    return f"P_SGD(deceptive) {sgd}; P_B and P_prior not measured (report --counting, --prior)"


def answer_sentences(ev) -> list[str]:
    """One sentence per (world, regime): conditions, runs, share deceptive, the gap's distribution; then one
    sentence setting P_B (or P_prior) beside P_SGD over all runs."""
    runs, by = ev.runs, ev.by
    world = runs["world"].astype(str) if "world" in runs else pd.Series("world", index=runs.index)
    regime = regimes(runs, by, ev.paths)
    out = []
    for (w, r), g in runs.groupby([world, regime], sort=False):
        conds = g.groupby(by, sort=False, dropna=False).ngroups
        where = f"{w}, {'path dependence not measured' if r == 'not measured' else f'{r} path dependence'} ({conds} condition{'s' * (conds != 1)}, {len(g):,} runs)"
        text = f"{where}: {_pct(int((g.verdict == 'deceptive').sum()), len(g))} judged deceptive"
        if "compliance_gap" in g and g.compliance_gap.notna().any():
            gap = g.compliance_gap.dropna()
            text += (f"; compliance gap median {gap.median():+.2f} (IQR {gap.quantile(0.25):+.2f} to {gap.quantile(0.75):+.2f}), "
                     f"above 0.5 in {_pct(int((gap > 0.5).sum()), len(gap))} of runs")
        else:
            text += "; compliance gap not measured (the world declares no cue pairs)"
        out.append(text + ".")
    out.append(_bias_beside(ev, runs) + ".")
    return out
