"""The README's flagship table against the code that prints it: its value columns are the report's first-screen
table (`report.answer.summary_table`) regenerated from a stored run, in the same order and the same number
formats, every interval holds its estimate, and the README names the commands that produce it."""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO, cli, tiny_spec_text

README = (REPO / "README.md").read_text()
SHARE = r"\d+ \(\d+-\d+\)"  # a percentage with its 95% Wilson interval, as the README writes it (no % sign)
GAP = r"[+-]\d\.\d\d"


def _flagship_table() -> tuple[list[str], list[list[str]]]:
    start = README.index("| cue copies |")
    lines = README[start:].split("\n\n")[0].strip().splitlines()
    split = lambda line: [c.strip() for c in line.strip().strip("|").split("|")]  # noqa: E731
    return split(lines[0]), [split(line) for line in lines[2:]]


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    root = tmp_path_factory.mktemp("readme")
    (root / "tiny.toml").write_text(tiny_spec_text(seeds=3, steps=60))
    res = cli("run", root / "tiny.toml", "--out", root / "r", "--no-show")
    assert res.returncode == 0, res.stderr
    return root / "r"


def test_readme_flagship_table_has_the_shape_the_code_prints(stored):
    import deceptionlab as dl
    from deceptionlab.report.answer import summary_table

    head, rows = _flagship_table()
    assert head[:3] == ["cue copies", "overseer head", "pretraining"]  # the flagship's axes (situational awareness fixed on, as the text says)
    values = head[3:]
    runs = dl.load(stored)
    table = summary_table(runs, ["situational_awareness"])
    printed = [c for c in table.columns if c in values]
    assert printed == values, (values, list(table.columns))  # every README column is printed by the code, in its order
    assert len(rows) == 12 and all(len(r) == len(head) for r in rows)  # 3 copies x (off: none, own goal, control; on: own goal)
    formats = {c: (GAP if c == "median gap" else SHARE) for c in values}
    for c in values:  # the code's cells, without the % signs the README leaves out, have the README's format
        assert all(re.fullmatch(formats[c], str(v).replace("%", "")) for v in table[c]), (c, list(table[c]))
    for r in rows:
        cells = dict(zip(head, r))
        for c in values:
            assert re.fullmatch(formats[c], cells[c]), (c, cells[c])
            if formats[c] is SHARE:
                p, lo, hi = map(int, re.findall(r"\d+", cells[c]))
                assert lo <= p <= hi
        assert 99 <= sum(int(cells[v].split()[0]) for v in ("deceptive", "mixed", "internal")) <= 101  # every flagship run fits: no proxy, unfit


def test_readme_numbers_name_their_commands():
    table = README.index("| cue copies |")
    before = README[README.rindex("\n\n", 0, table - 2) : table]  # the paragraph above the table
    assert "deceptionlab run experiments/flagship.toml" in before and "make demo" in before
    quick = next(line for line in README.splitlines() if "run experiments/quick.toml" in line and "runs" in line)
    assert "128 runs" in quick and re.search(r"\d+ s", quick) and "~20 s" not in quick
