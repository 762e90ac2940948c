"""Tombstones: delete rows from what is served, undo, and re-apply to an existing scope in place."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from kits.cli import cli
from pipeline.core.tombstones import (
    add_tombstones,
    deleted_tweet_ids,
    load_tombstones,
    migrate_tombstones,
    remove_tombstones,
    rows_for_references,
    tombstone_mask,
    tombstones_path,
    tweet_rows,
)
from pipeline.serving.contracts import PERSONAL_COLUMNS
from pipeline.serving.validate import validate_scope
from pipeline.stages.ingest import ingest_archive
from pipeline.stages.links import load_links
from pipeline.stages.scope import apply_tombstones, run_scope


def _serving(ds, scope_id):
    return pd.read_parquet(ds.artifact_path(scope_id, "-input.parquet"))


def test_add_remove_and_bad_indices(scoped):
    ds, _ = scoped
    assert load_tombstones(ds) == set()
    assert add_tombstones(ds, [3, 6]) == {3, 6}
    assert add_tombstones(ds, [6, 7]) == {3, 6, 7}
    assert remove_tombstones(ds, [7]) == {3, 6}
    with pytest.raises(ValueError, match="999 are not rows"):
        add_tombstones(ds, [1, 999])
    assert load_tombstones(ds) == {3, 6}  # nothing changed by the failed call
    data = json.loads(tombstones_path(ds).read_text())
    ids = ds.read_input(["id"])["id"].astype(str)
    assert data["format"] == 2 and "deleted" not in data
    assert data["tweet_ids"] == sorted([ids.iat[3], ids.iat[6]], key=int)  # stored by tweet id


def test_apply_blanks_everywhere_then_undo_restores(scoped):
    ds, scope_id = scoped
    before = _serving(ds, scope_id)
    scope_before = ds.sidecar(scope_id)
    original = ds.read_input(["text", "urls_json"])
    add_tombstones(ds, [3, 6])
    result = apply_tombstones(ds, scope_id)
    assert result["deleted"] == 2 and result["links"]["deleted_sources"] == 2

    after = _serving(ds, scope_id)
    assert after["deleted"].tolist() == [i in (3, 6) for i in range(len(after))]
    for col in PERSONAL_COLUMNS:
        assert set(after.loc[[3, 6], col]) <= {"", "[]"}, col
    kept = after.drop(index=[3, 6])
    pd.testing.assert_frame_equal(kept.drop(columns=["deleted"]), before.drop(index=[3, 6]).drop(columns=["deleted"]))
    assert after["id"].tolist() == before["id"].tolist() and after["ls_index"].tolist() == before["ls_index"].tolist()
    scope_df = pd.read_parquet(ds.artifact_path(scope_id, ".parquet"))
    assert scope_df["deleted"].tolist() == after["deleted"].tolist()

    scope = ds.sidecar(scope_id)
    assert scope["scope_uid"] == scope_before["scope_uid"]
    assert scope["lancedb_table_id"] == scope_before["lancedb_table_id"] and scope["deleted_count"] == 2
    # no trace of the deleted texts in the scope JSON or the links files
    scope_text = ds.sidecar_path(scope_id).read_text()
    for i in (3, 6):
        assert original["text"].iat[i] not in scope_text
    edges, _, _ = load_links(ds)
    ids = ds.read_input(["id"])["id"]
    quote = edges[edges["src_tweet_id"] == ids.iat[6]]
    assert len(quote) == 1 and pd.isna(quote["source_url"].iat[0])  # structure kept, URL gone
    assert validate_scope(ds, scope_id) == []

    remove_tombstones(ds, [3, 6])
    apply_tombstones(ds, scope_id)
    restored = _serving(ds, scope_id)
    pd.testing.assert_frame_equal(restored, before)
    assert restored["text"].tolist() == original["text"].tolist()
    assert ds.sidecar(scope_id)["scope_uid"] == scope_before["scope_uid"]
    assert validate_scope(ds, scope_id) == []


def test_new_scope_applies_tombstones_at_creation(scoped):
    ds, _ = scoped
    add_tombstones(ds, [0])
    scope_id = run_scope(ds)
    serving = _serving(ds, scope_id)
    assert serving["deleted"].sum() == 1 and serving["text"].iat[0] == "" and serving["username"].iat[0] == ""
    assert ds.sidecar(scope_id)["deleted_count"] == 1


def test_unapplied_tombstones_fail_the_gate(scoped):
    ds, scope_id = scoped
    add_tombstones(ds, [2])
    problems = validate_scope(ds, scope_id)
    assert any("tombstoned row(s)" in p and "tombstone apply" in p for p in problems)


def test_tombstone_cli_round_trip(scoped, capsys):
    ds, scope_id = scoped
    base = ["--data-dir", str(ds.path.parent), "--dataset", ds.name]
    assert cli(["tombstone", "add", *base, "4", "5"]) == 0
    assert _serving(ds, scope_id)["deleted"].sum() == 2
    assert cli(["tombstone", "list", *base]) == 0
    assert "2 tombstoned row(s): 4 5" in capsys.readouterr().out
    assert cli(["tombstone", "remove", *base, "4", "5"]) == 0
    assert _serving(ds, scope_id)["deleted"].sum() == 0
    assert cli(["tombstone", "add", *base, "-1"]) == 1
    assert cli(["tombstone", "add", *base, "--scope", "none", "9"]) == 0
    assert _serving(ds, scope_id)["deleted"].sum() == 0
    assert cli(["tombstone", "apply", *base, "--scope", scope_id]) == 0
    assert _serving(ds, scope_id)["deleted"].sum() == 1


def test_rows_are_named_by_tweet_id_link_or_ls_index_in_cli_and_studio_alike(scoped, capsys):
    """One rule (pipeline.core.tombstones.rows_for_references) for the CLI and the studio's paste box."""
    ds, scope_id = scoped
    ids = ds.read_input(["id"])["id"].astype(str).tolist()
    rows_by_id = tweet_rows(ds)
    text = f"{ids[3]}, https://x.com/me/status/{ids[7]}?s=20 #2  nope https://x.com/a/status/1"
    assert rows_for_references(text, rows_by_id) == ([2, 3, 7], ["nope", "https://x.com/a/status/1"])
    assert rows_for_references("", rows_by_id) == ([], [])

    base = ["--data-dir", str(ds.path.parent), "--dataset", ds.name]
    assert cli(["tombstone", "add", *base, "--tweet", ids[3], "--tweet", f"https://twitter.com/me/status/{ids[7]}"]) == 0
    assert sorted(load_tombstones(ds)) == [3, 7]
    assert _serving(ds, scope_id)["deleted"].sum() == 2
    capsys.readouterr()
    assert cli(["tombstone", "add", *base, "--tweet", "https://x.com/a/status/1"]) == 1
    assert "not tweets of dataset" in capsys.readouterr().err
    assert cli(["tombstone", "add", *base]) == 1  # nothing named
    assert sorted(load_tombstones(ds)) == [3, 7]


def test_apply_refuses_a_scope_of_an_older_ingest(scoped):
    ds, scope_id = scoped
    meta = json.loads(ds.meta_path.read_text())
    meta["input_fingerprint"] = "fp-2"
    ds.meta_path.write_text(json.dumps(meta))
    add_tombstones(ds, [1])
    with pytest.raises(ValueError, match="earlier ingest"):
        apply_tombstones(ds, scope_id)


def test_apply_keeps_string_clusters_and_refuses_a_numeric_cluster_scope(scoped):
    import pyarrow as pa
    import pyarrow.parquet as pq

    ds, scope_id = scoped
    add_tombstones(ds, [2])
    apply_tombstones(ds, scope_id)
    after = _serving(ds, scope_id)
    scope_df = pd.read_parquet(ds.artifact_path(scope_id, ".parquet"))
    assert after["cluster"].str.fullmatch(r"0_\d+").all() and scope_df["cluster"].tolist() == after["cluster"].tolist()
    assert pq.read_schema(ds.artifact_path(scope_id, ".parquet")).field("raw_cluster").type == pa.string()
    # a scope written before cluster became the lookup id string cannot be patched in place
    path = ds.artifact_path(scope_id, "-input.parquet")
    table = pq.read_table(path)
    ks = pa.array([int(c.split("_")[1]) for c in table["cluster"].to_pylist()], pa.int32())
    pq.write_table(table.set_column(table.schema.get_field_index("cluster"), "cluster", ks), path)
    with pytest.raises(ValueError, match="numeric 'cluster' column"):
        apply_tombstones(ds, scope_id)


def _rows_of_ids(ds, ids):
    column = ds.read_input(["id"])["id"].astype(str)
    return sorted(int(i) for i in column.index[column.isin(ids)])


def test_an_ls_index_file_of_the_old_form_is_read_and_rewritten_by_id(scoped):
    ds, scope_id = scoped
    ids = ds.read_input(["id"])["id"].astype(str)
    tombstones_path(ds).write_text(json.dumps({"dataset": ds.name, "deleted": [3, 7], "updated_at": "2025-01-01"}))
    assert load_tombstones(ds) == {3, 7}
    assert deleted_tweet_ids(ds) == {ids.iat[3], ids.iat[7]}
    assert tombstone_mask(ds, len(ids)).nonzero()[0].tolist() == [3, 7]
    apply_tombstones(ds, scope_id)
    assert _serving(ds, scope_id)["deleted"].sum() == 2 and validate_scope(ds, scope_id) == []

    assert migrate_tombstones(ds) is True and migrate_tombstones(ds) is False  # once, then already by id
    data = json.loads(tombstones_path(ds).read_text())
    assert data["tweet_ids"] == sorted([ids.iat[3], ids.iat[7]], key=int) and "deleted" not in data
    tombstones_path(ds).write_text(json.dumps({"dataset": ds.name, "deleted": [3]}))
    assert add_tombstones(ds, [5]) == {3, 5}  # a change also rewrites the old form by id
    assert json.loads(tombstones_path(ds).read_text())["tweet_ids"] == sorted([ids.iat[3], ids.iat[5]], key=int)


def test_deletions_follow_their_tweets_when_input_rows_move(scoped):
    """What an update does: input.parquet replaced in place with rows in another order."""
    import pyarrow.parquet as pq

    ds, _ = scoped
    ids = ds.read_input(["id"])["id"].astype(str)
    add_tombstones(ds, [2, 9])
    wanted = {ids.iat[2], ids.iat[9]}
    table = pq.read_table(ds.input_path)
    pq.write_table(table.take(list(range(table.num_rows - 1, 0, -1))), ds.input_path)  # reversed, row 0 gone
    assert load_tombstones(ds) == set(_rows_of_ids(ds, wanted))
    assert load_tombstones(ds) != {2, 9}
    assert deleted_tweet_ids(ds) == wanted


def test_deletions_survive_a_re_ingest_that_moves_every_row(tmp_workspace, sample_zip, capsys):
    """Re-ingesting with likes interleaves like rows by time: every tweet's ls_index changes."""
    ds = ingest_archive(sample_zip, tmp_workspace, "me")
    ids = ds.read_input(["id"])["id"].astype(str)
    add_tombstones(ds, [10, 500])
    cli(["tombstone", "add", "--data-dir", str(tmp_workspace.data_dir), "--dataset", "me",
         "--tweet", f"https://x.com/milahu104/status/{ids.iat[1500]}"])
    chosen = {ids.iat[10], ids.iat[500], ids.iat[1500]}
    assert "3 tombstoned row(s)" in capsys.readouterr().out

    again = ingest_archive(sample_zip, tmp_workspace, "me", include_likes=True, overwrite=True)
    rows = sorted(load_tombstones(again))
    assert rows == _rows_of_ids(again, chosen) and len(rows) == 3
    assert rows != [10, 500, 1500]  # the rows moved, the deletions followed the tweets
    assert again.meta()["ingest"]["tombstones_kept"] == 3
    assert deleted_tweet_ids(again) == chosen


def test_an_old_form_file_survives_a_re_ingest_too(tmp_workspace, sample_zip):
    ds = ingest_archive(sample_zip, tmp_workspace, "me")
    ids = ds.read_input(["id"])["id"].astype(str)
    tombstones_path(ds).write_text(json.dumps({"dataset": "me", "deleted": [4, 40]}))
    again = ingest_archive(sample_zip, tmp_workspace, "me", include_likes=True, overwrite=True)
    assert sorted(load_tombstones(again)) == _rows_of_ids(again, {ids.iat[4], ids.iat[40]}) != [4, 40]
    assert json.loads(tombstones_path(again).read_text())["format"] == 2
