"""LanceDB export to a local folder, on a hand-made scope (known clusters, >= 256 rows for IVF_PQ).

The hand-made scope is far below the automatic ``vector_index_min_rows``: a test that needs the
IVF_PQ index asks for it with ``vector_index_min_rows=0``.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from kits.lance_kit import make_scope, use_vectors
from pipeline.serving import lance_export as lx


@pytest.fixture
def handmade(tmp_path, monkeypatch):
    monkeypatch.delenv("LANCEDB_URI", raising=False)
    dataset, vectors, df = make_scope(tmp_path)
    use_vectors(monkeypatch, vectors)
    return dataset, vectors, df


def test_export_builds_table_indices_and_record(handmade):
    dataset, vectors, df = handmade
    record = lx.export_lance(dataset, "scopes-001", vector_index_min_rows=0)

    live = df[~df["deleted"]]
    assert record["table"] == dataset.sidecar("scopes-001")["lancedb_table_id"]
    assert record["uri"] == str(dataset.lancedb_dir)
    assert record["rows"] == len(live)
    assert record["deleted_skipped"] == int(df["deleted"].sum()) > 0
    assert record["dimensions"] == vectors.shape[1]
    built = {(i["index_type"], i["column"]) for i in record["indices"]}
    assert built == {("IVF_PQ", "vector"), ("BTREE", "cluster"), ("FTS", "text")}
    pq_index = next(i for i in record["indices"] if i["index_type"] == "IVF_PQ")
    assert pq_index["params"] == {"distance_type": "cosine", "num_partitions": int(np.sqrt(len(live))),
                                  "partitions_trained": min(int(np.sqrt(len(live))), len(live) // 256),
                                  "max_iterations": lx.IVF_MAX_ITERATIONS, "sample_rate": lx.IVF_SAMPLE_RATE}
    assert record["skipped_indices"] == []
    assert record["vector_index"] is True and record["vector_index_min_rows"] == 0

    table = lx.open_scope_table(dataset, "scopes-001")
    assert table.count_rows() == len(live)
    schema = table.schema
    assert schema.field("vector").type == pa.list_(pa.float32(), vectors.shape[1])
    assert schema.field("id").type == pa.string()
    assert schema.field("cluster").type == pa.string() and schema.field("raw_cluster").type == pa.string()
    from pipeline.serving.contracts import SERVING_COLUMNS
    assert schema.names == [*SERVING_COLUMNS, "vector"]
    kinds = {tuple(i.columns): i.index_type for i in table.list_indices()}
    assert kinds == {("vector",): "IvfPq", ("cluster",): "BTree", ("text",): "FTS"}
    assert table.index_stats("vector_idx").num_indexed_rows == len(live)
    # the stored vectors are the embedding rows of each ls_index
    got = table.search().where("ls_index = 7").limit(1).to_arrow()
    np.testing.assert_allclose(np.asarray(got["vector"][0].as_py(), dtype=np.float32), vectors[7])

    saved = json.loads((dataset.lancedb_dir / "exports.json").read_text())["exports"]
    assert saved[-1]["table"] == record["table"] and saved[-1]["rows"] == record["rows"]


@pytest.mark.parametrize("min_rows", [0, None], ids=["ivf_pq", "exact_scan"])
def test_vector_search_with_cluster_filter(handmade, min_rows):
    dataset, vectors, df = handmade
    record = lx.export_lance(dataset, "scopes-001", register=False, vector_index_min_rows=min_rows)
    assert record["vector_index"] is (min_rows == 0)
    for row in (7, 13, 599):
        k = df.loc[row, "cluster"]
        assert k == f"0_{row % 6}"  # the string lookup id, as the TS API reads it
        found = lx.search_scope(dataset, "scopes-001", vector=vectors[row], cluster=k, limit=10)
        assert found["ls_index"].iloc[0] == row
        assert len(found) == 10 and set(found["cluster"]) == {k}
        # without the filter, the nearest rows are still that cluster's (the clusters are well apart);
        # 20 rows (200 candidates re-ranked exactly): with PQ codes trained on this tiny table, the
        # top 50 by PQ distance missed the row itself about once in tens of runs
        free = lx.search_scope(dataset, "scopes-001", vector=vectors[row], limit=20)
        assert free["ls_index"].iloc[0] == row and set(free["cluster"]) == {k}


def test_full_text_search_finds_a_tweet_by_a_distinctive_word(handmade):
    dataset, _, df = handmade
    lx.export_lance(dataset, "scopes-001", register=False)
    found = lx.search_scope(dataset, "scopes-001", fts="uniqueword123")
    assert list(found["ls_index"]) == [123]
    assert found["text"].iloc[0] == df.loc[123, "text"]
    glacier = lx.search_scope(dataset, "scopes-001", fts="glacier", limit=1000)
    assert set(glacier["cluster"]) == {"0_3"}
    assert set(glacier["ls_index"]) == set(df.index[(df["cluster"] == "0_3") & ~df["deleted"]])


def test_tombstoned_rows_are_never_returned(handmade):
    dataset, vectors, df = handmade
    lx.export_lance(dataset, "scopes-001", register=False)
    tombstones = [int(i) for i in df.index[df["deleted"]]]
    table = lx.open_scope_table(dataset, "scopes-001")
    assert table.count_rows("deleted = true") == 0
    assert table.count_rows(f"ls_index IN ({', '.join(map(str, tombstones))})") == 0
    for row in tombstones[:3]:
        # the tombstone's own (old) vector finds only live rows; its unique word finds nothing
        near = lx.search_scope(dataset, "scopes-001", vector=vectors[row], limit=50)
        assert row not in set(near["ls_index"]) and not near["deleted"].any()
        assert lx.search_scope(dataset, "scopes-001", fts=f"uniqueword{row}").empty
    everything = table.search().limit(None).to_pandas()
    assert not everything["deleted"].any() and (everything["text"] != "").all()


def test_small_scope_skips_ivf_pq_with_a_note(tmp_path, monkeypatch):
    monkeypatch.delenv("LANCEDB_URI", raising=False)
    dataset, vectors, df = make_scope(tmp_path, n=120, deleted_every=0)
    use_vectors(monkeypatch, vectors)
    record = lx.export_lance(dataset, "scopes-001", register=False)
    assert record["rows"] == 120
    assert [s["index_type"] for s in record["skipped_indices"]] == ["IVF_PQ"]
    assert str(lx.MIN_ROWS_FOR_PQ) in record["skipped_indices"][0]["reason"]
    assert {i["index_type"] for i in record["indices"]} == {"BTREE", "FTS"}
    found = lx.search_scope(dataset, "scopes-001", vector=vectors[5], cluster=df.loc[5, "cluster"])
    assert found["ls_index"].iloc[0] == 5  # exact scan without a vector index


def test_index_plan_threshold():
    plans, skipped = lx.index_plan(lx.MIN_ROWS_FOR_PQ - 1, vector_index_min_rows=0)
    assert skipped and all(p.index_type != "IVF_PQ" for p in plans)  # PQ cannot train on fewer rows
    local, voyage = lx.auto_vector_index_min_rows(256), lx.auto_vector_index_min_rows(1024)
    assert (local, voyage) == (100_000, 25_000)
    plans, skipped = lx.index_plan(212_000, local)
    pq = next(p for p in plans if p.index_type == "IVF_PQ")
    assert pq.params["num_partitions"] == 460 and not skipped
    plans, skipped = lx.index_plan(local - 1, local)
    assert [p.index_type for p in plans] == ["BTREE", "FTS"]
    assert "vector_index_min_rows=100000" in skipped[0]["reason"]
    assert any(p.index_type == "IVF_PQ" for p in lx.index_plan(voyage, voyage)[0])


def test_default_export_below_the_threshold_is_an_exact_scan(handmade):
    """No vector index below the automatic threshold: the record says so and search still finds each row first."""
    dataset, vectors, df = handmade
    record = lx.export_lance(dataset, "scopes-001", register=False)
    assert record["vector_index"] is False
    assert record["vector_index_min_rows"] == lx.auto_vector_index_min_rows(vectors.shape[1]) > len(df)
    assert [s["index_type"] for s in record["skipped_indices"]] == ["IVF_PQ"]
    assert "exact scan" in record["skipped_indices"][0]["reason"]
    table = lx.open_scope_table(dataset, "scopes-001")
    assert {i.index_type for i in table.list_indices()} == {"BTree", "FTS"}
    live = df.index[~df["deleted"]]
    for row in live[::97]:
        found = lx.search_scope(dataset, "scopes-001", vector=vectors[row], limit=3)
        assert found["ls_index"].iloc[0] == row and found["_distance"].iloc[0] < 1e-5
    saved = json.loads((dataset.lancedb_dir / "exports.json").read_text())["exports"][-1]
    assert saved["vector_index"] is False


def test_reexport_replaces_the_table(handmade):
    dataset, _, df = handmade
    first = lx.export_lance(dataset, "scopes-001", register=False)
    second = lx.export_lance(dataset, "scopes-001", register=False)
    assert second["rows"] == first["rows"]
    import lancedb
    conn = lancedb.connect(str(dataset.lancedb_dir))
    assert conn.list_tables().tables == [first["table"]]
    assert conn.open_table(first["table"]).count_rows() == first["rows"]
    assert len(lx.read_export_records(dataset)) == 2


def test_row_count_mismatch_is_an_error_and_not_recorded(handmade, monkeypatch):
    dataset, _, _ = handmade
    from lancedb.table import LanceTable

    monkeypatch.setattr(LanceTable, "count_rows", lambda self, filter=None: 3)
    with pytest.raises(lx.LanceExportError, match="holds 3 rows"):
        lx.export_lance(dataset, "scopes-001", register=False)
    assert lx.read_export_records(dataset) == []


def test_scope_without_table_id_is_refused(handmade):
    dataset, _, _ = handmade
    dataset.update_sidecar("scopes-001", lancedb_table_id=None)
    with pytest.raises(lx.LanceExportError, match="lancedb_table_id"):
        lx.export_lance(dataset, "scopes-001")
    assert not (dataset.lancedb_dir / "exports.json").exists()


def test_vectors_must_cover_the_scope(handmade, monkeypatch):
    dataset, vectors, _ = handmade
    use_vectors(monkeypatch, vectors[:100])
    with pytest.raises(lx.LanceExportError, match="embedding has 100 rows"):
        lx.export_lance(dataset, "scopes-001")


def test_env_uri_and_secret_free_record(handmade, tmp_path, monkeypatch):
    dataset, _, _ = handmade
    target_dir = tmp_path / "elsewhere"
    monkeypatch.setenv("LANCEDB_URI", str(target_dir))
    monkeypatch.setenv("LANCEDB_API_KEY", "sk-never-written")
    record = lx.export_lance(dataset, "scopes-001", register=False)
    assert record["uri"] == str(target_dir) and (target_dir / f"{record['table']}.lance").is_dir()
    assert "sk-never-written" not in (dataset.lancedb_dir / "exports.json").read_text()


def test_redact_uri():
    assert lx.redact_uri("s3://key:secret@bucket/prefix?token=x") == "s3://bucket/prefix"
    assert lx.redact_uri("db://tweetscope") == "db://tweetscope"
    assert lx.redact_uri("/tmp/x/lancedb") == "/tmp/x/lancedb"
    with pytest.raises(lx.LanceExportError, match="unsupported"):
        lx.resolve_target(None, "ftp://host/x")
    with pytest.raises(lx.LanceExportError, match="API key"):
        lx.resolve_target(None, "db://x").connect()


def _run_cli(argv: list[str]) -> int:
    """Our sub-commands through the real argparse wiring (only this module's, so other
    command families being rebuilt in parallel cannot break this test)."""
    import argparse

    from pipeline.cli.common import UserError
    from pipeline.cli.lance import add_commands

    parser = argparse.ArgumentParser(prog="tweetscope")
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (UserError, ValueError):
        return 1


def test_cli_lance_and_search(handmade, capsys):
    main = _run_cli
    dataset, _, _ = handmade
    args = ["--data-dir", str(dataset.path.parent), "--dataset", dataset.name, "--scope", "scopes-001"]
    assert main(["lance", *args]) == 0
    out = capsys.readouterr().out
    assert "588 rows" in out and "IVF_PQ(vector)" in out
    assert main(["search", *args, "--fts", "uniqueword321"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "uniqueword321" in out[0] and "\t321\t" in out[0]
    assert main(["search", *args]) == 1  # neither --query nor --fts
    capsys.readouterr()
    assert main(["search", *args, "--fts", "glacier", "--cluster", "0_3", "--limit", "1000"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines and all("\t0_3\t" in line for line in lines)
    assert main(["search", *args, "--fts", "glacier", "--cluster", "0_1"]) == 0  # glacier rows are all 0_3
    assert capsys.readouterr().out.strip() == "no matches"


def test_cluster_filter_takes_the_string_id_only(handmade):
    dataset, vectors, df = handmade
    lx.export_lance(dataset, "scopes-001", register=False)
    with pytest.raises(lx.LanceExportError, match="cluster id string"):
        lx.search_scope(dataset, "scopes-001", vector=vectors[7], cluster=1)
    # a hostile id is quoted, not interpreted: it matches nothing and drops no filter
    found = lx.search_scope(dataset, "scopes-001", vector=vectors[7], cluster="0_1' OR deleted = true OR '1")
    assert found.empty


def test_cancel_while_writing_keeps_the_previous_table(tmp_path, monkeypatch):
    from pipeline.core.progress import Cancelled, Progress

    monkeypatch.delenv("LANCEDB_URI", raising=False)
    monkeypatch.setattr(lx, "WRITE_BATCH_ROWS", 100)
    dataset, vectors, _ = make_scope(tmp_path, n=400, dim=16, deleted_every=0)
    use_vectors(monkeypatch, vectors)
    first = lx.export_lance(dataset, "scopes-001", register=False)

    progress = Progress(None, "lance")
    progress.callback = lambda event: progress.cancel() if event.stage == "lance: write" and event.done >= 200 else None
    with pytest.raises(Cancelled):
        lx.export_lance(dataset, "scopes-001", progress=progress, register=False)
    assert lx.open_scope_table(dataset, "scopes-001").count_rows() == first["rows"]
    assert len(lx.read_export_records(dataset)) == 1
