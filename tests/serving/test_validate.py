"""The deploy gate catches each seeded defect (on private copies) and passes a good scope."""

from __future__ import annotations

import pytest

from kits.cli import cli
from kits.defects import DEFECTS, id_as_int64, links_int_ids, wrong_table_id, x_out_of_range
from kits.scope_fakes import make_fake_dataset
from pipeline.serving.validate import validate_scope
from pipeline.stages.scope import run_scope


def test_good_scope_passes(scoped):
    ds, scope_id = scoped
    assert validate_scope(ds, scope_id) == []


@pytest.mark.parametrize("seed", DEFECTS, ids=[d.__name__ for d in DEFECTS])
def test_each_defect_is_caught(scoped, seed):
    ds, scope_id = scoped
    expected = seed(ds, scope_id)
    problems = validate_scope(ds, scope_id)
    assert any(expected in p for p in problems), problems


def test_many_defects_are_all_listed(scoped):
    ds, scope_id = scoped
    expected = [seed(ds, scope_id) for seed in (id_as_int64, x_out_of_range, wrong_table_id, links_int_ids)]
    problems = validate_scope(ds, scope_id)
    for e in expected:
        assert any(e in p for p in problems), e


def test_missing_scope_and_default_labels(tmp_path):
    ds = make_fake_dataset(tmp_path, with_toponymy=False)
    assert "does not exist" in validate_scope(ds, "scopes-001")[0]
    assert "not a scope id" in validate_scope(ds, "umap-001")[0]
    scope_id = run_scope(ds)
    assert any("no toponymy labels" in p for p in validate_scope(ds, scope_id))


def test_cli_exit_codes(scoped, capsys):
    ds, scope_id = scoped
    base = ["validate", "--data-dir", str(ds.path.parent), "--dataset", ds.name]
    assert cli([*base, "--scope", scope_id]) == 0
    assert "ok" in capsys.readouterr().out
    x_out_of_range(ds, scope_id)
    wrong_table_id(ds, scope_id)
    assert cli(base) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert any("'x' has values above 1" in line for line in lines)
    assert any("lancedb_table_id" in line for line in lines)
    assert lines[-1].endswith("not publishable")
