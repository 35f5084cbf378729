"""The results schema (core.schema) is the one description of the stored columns: the writer stores no
column it lacks, the loader's help lists every column, and docs/results.md shows it as it is."""

from __future__ import annotations

from pathlib import Path

import pytest

import deceptionlab as dl
from deceptionlab.core import schema
from tests.conftest import tiny_spec_text

DOCS = Path(__file__).resolve().parents[2] / "docs" / "results.md"


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("schema")
    spec = root / "tiny.toml"
    spec.write_text(tiny_spec_text(seeds=2, steps=40))
    return dl.run(spec, root / "out"), dl.Store(root / "out").axes()


def test_every_stored_column_is_in_the_schema(tiny_runs):
    runs, axes = tiny_runs
    assert schema.unknown_columns(runs.columns, tuple(axes)) == []
    assert schema.column("situational_awareness", tuple(axes)).name == "{axis}"
    assert schema.column("traj_decode_situation").name == "traj_decode_{decodable}"
    assert schema.column("score_training_internal").name == "score_{half}_{half_class}"


def test_the_schema_refuses_what_it_does_not_describe():
    assert schema.unknown_columns(["verdict", "verdikt", "score_"]) == ["verdikt", "score_"]


def test_every_schema_entry_is_stored_by_some_run(tiny_runs):
    """No dead entry: each column the schema names (bar the families' own) appears in a bitworld run."""
    runs, axes = tiny_runs
    covered = {schema.column(c, tuple(axes)).name for c in runs.columns}
    missing = [c.name for c in schema.COLUMNS if c.name not in covered and c.group != "family"]
    assert missing == []


def test_load_documents_every_column():
    doc = dl.load.__doc__
    for c in schema.COLUMNS:
        assert c.name in doc, c.name


def test_docs_page_shows_the_schema():
    text = DOCS.read_text()
    assert schema.markdown() in text, "docs/results.md is out of date: paste core.schema.markdown() into it"
