"""The report's detection section (docs/detection.md): AUROC per detector with its 95% interval, one panel
per set match (unmatched, matched) x kind (natural, installed), unprivileged detectors above privileged
ones; the display table; and the behaviour-only baseline's chance check, one line per set."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .figures import save as _save  # sets the Agg backend

MATCHES = ("unmatched", "matched")
KINDS = ("natural", "installed")


def plot_auroc(table: pd.DataFrame, folder: str | Path) -> list[Path]:
    """auroc.png / auroc.svg in `folder`: per panel, each detector's AUROC (a dot per set, coloured by world
    and size) with its interval; a dashed line separates the privileged detectors; chance at 0.5."""
    import matplotlib.pyplot as plt

    panels = [(m, k) for m in MATCHES for k in KINDS if ((table.match == m) & (table.kind == k)).any()]
    order = list(dict.fromkeys(table.sort_values("privileged", kind="stable").detector))
    privileged = set(table.detector[table.privileged])
    sets = list(dict.fromkeys(table.world + " d" + table.depth.astype(str) + "w" + table.width.astype(str)))
    colours = {s: f"C{i}" for i, s in enumerate(sets)}
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 0.45 * len(order) + 1.6), squeeze=False, sharey=True)
    for ax, (m, k) in zip(axes[0], panels):
        part = table[(table.match == m) & (table.kind == k)]
        groups = list(part.groupby(["world", "depth", "width"], sort=False))
        for gi, ((world, depth, width), g) in enumerate(groups):
            label = f"{world} d{depth}w{width}"
            for _, r in g.iterrows():
                y = order.index(r.detector) + (gi - (len(groups) - 1) / 2) * 0.18
                ax.errorbar(r.auroc, y, xerr=[[r.auroc - r.auroc_low], [r.auroc_high - r.auroc]], fmt="o", ms=4, color=colours[label],
                            label=label if r.detector == g.detector.iloc[0] else None)
        ax.axvline(0.5, color="grey", lw=0.8)
        n_plain = sum(d not in privileged for d in order)
        if 0 < n_plain < len(order):
            ax.axhline(n_plain - 0.5, color="black", lw=0.6, ls="--")
        ax.set(xlim=(-0.02, 1.02), title=f"{k}, {m}", xlabel="AUROC (95% bootstrap interval)")
        ax.set_yticks(range(len(order)), [d + (" (privileged)" if d in privileged else "") for d in order])
        ax.invert_yaxis()
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return _save(fig, Path(folder), "auroc")


def chance_check(table: pd.DataFrame) -> list[str]:
    """Per set, whether the behaviour-only baseline's interval holds 0.5 (the set is fair) or not."""
    lines = []
    for r in table[table.detector == "behaviour"].itertuples():
        fair = r.auroc_low <= 0.5 <= r.auroc_high
        lines.append(f"{r.set} ({r.match}): behaviour-only baseline AUROC {r.auroc:.2f} ({r.auroc_low:.2f}-{r.auroc_high:.2f}): "
                     + ("at chance, as a fair set must be" if fair else "NOT at chance: the set's classes differ in training behaviour, its other AUROCs are not evidence"))
    if not lines:
        lines.append("the behaviour-only baseline was not run: the sets' fairness is unchecked")
    return lines


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """The section's table: unmatched sets first, natural before installed, unprivileged detectors first."""
    t = table.assign(order=table.match.map({m: i for i, m in enumerate(MATCHES)}), korder=table.kind.map({k: i for i, k in enumerate(KINDS)}))
    t = t.sort_values(["order", "korder", "set", "privileged"], kind="stable")
    return pd.DataFrame({
        "set": t.set, "match": t.match, "detector": t.detector, "privileged": t.privileged.map({True: "yes", False: "no"}),
        "deceptive": t.deceptive, "aligned": t.aligned,
        "AUROC (95% CI)": [f"{a:.2f} ({lo:.2f}-{hi:.2f})" for a, lo, hi in zip(t.auroc, t.auroc_low, t.auroc_high)],
        "TPR at 1% FPR": t.tpr_at_1pct_fpr.round(2), "s/model": t.seconds_per_model.round(4),
    })
