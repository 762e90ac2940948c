"""Links: edges and node stats checked against a plain-Python reading of input.parquet."""

from __future__ import annotations

import numpy as np
import pytest

from kits.links_check import check_against_reference
from kits.scope_fakes import make_fake_dataset
from pipeline.core import workspace as workspace_mod
from pipeline.serving.contracts import EDGE_COLUMNS
from pipeline.stages import links as links_mod
from pipeline.stages.links import load_links, run_links, thread_structure


def test_links_on_synthetic_chain(tmp_path):
    ds = make_fake_dataset(tmp_path)
    meta, edges, nodes, threads = check_against_reference(ds)
    ids = ds.read_input(["id"])["id"].tolist()
    # the known thread: rows 1..4 reply down a chain rooted at row 0
    row4 = nodes[nodes["tweet_id"] == ids[4]].iloc[0]
    assert (row4["thread_root_id"], row4["thread_depth"], row4["thread_size"]) == (ids[0], 4, 5)
    row0 = nodes[nodes["tweet_id"] == ids[0]].iloc[0]
    assert (row0["reply_child_count"], row0["reply_in_count"], row0["quote_in_count"]) == (1, 1, 1)
    row5 = nodes[nodes["tweet_id"] == ids[5]].iloc[0]
    assert (row5["thread_root_id"], row5["thread_depth"]) == ("42", 1)  # replies outside the dataset
    # retweets and likes are not sources
    assert ids[8] not in set(edges["src_tweet_id"]) and ids[9] not in set(nodes["tweet_id"])
    quote = edges[(edges["edge_type"] == "quote") & (edges["dst_tweet_id"] == "99")].iloc[0]
    assert quote["source_url"] == "https://x.com/other/status/99" and not quote["internal_target"]
    assert meta["schema_version"] == "links-v1" and meta["dataset"] == ds.name


def test_thread_structure_handles_cycles_and_long_chains():
    root, depth, cycle = thread_structure(np.array([1, 2, 0, -1, 3]))
    assert cycle.tolist() == [True, True, True, False, False]
    assert root.tolist() == [0, 1, 2, 3, 3] and depth.tolist() == [0, 0, 0, 0, 1]
    n = 5000
    chain = np.arange(-1, n - 1)  # node i replies to i-1
    root, depth, cycle = thread_structure(chain)
    assert not cycle.any() and (root == 0).all() and depth.tolist() == list(range(n))


def test_links_write_all_or_nothing(tmp_path, monkeypatch):
    ds = make_fake_dataset(tmp_path)
    calls = []

    def failing(table, path, **kw):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        return original(table, path, **kw)

    original = workspace_mod.write_parquet  # the FileSet's parquet writer
    monkeypatch.setattr(workspace_mod, "write_parquet", failing)
    with pytest.raises(OSError):
        run_links(ds)
    assert not ds.links_dir.exists() or list(ds.links_dir.iterdir()) == []


def test_links_refuse_invalid_output(tmp_path, monkeypatch):
    ds = make_fake_dataset(tmp_path)
    monkeypatch.setattr(links_mod, "build_edges", lambda df, deleted=None: _bad_edges())
    with pytest.raises(ValueError, match="links contract"):
        run_links(ds)
    assert not (ds.links_dir / "meta.json").exists()


def _bad_edges():
    import pandas as pd

    return pd.DataFrame({"edge_type": ["mention"], "src_tweet_id": ["1"], "dst_tweet_id": ["2"], "src_ls_index": [0],
                         "dst_ls_index": pd.array([None], dtype="Int64"), "internal_target": [False],
                         "source_url": [None]})


@pytest.mark.slow
def test_links_on_the_sample_archive(sample_dataset, tmp_path):
    from support import copy_dataset

    ds = copy_dataset(sample_dataset, tmp_path)
    meta, edges, nodes, threads = check_against_reference(ds)
    assert meta["edge_type_counts"]["reply"] > 0 and meta["nodes"] > 0
    # the deepest thread of the archive, recomputed from input.parquet by the reference
    deepest = max(threads, key=lambda t: threads[t][0])
    got = nodes[nodes["tweet_id"] == deepest].iloc[0]
    assert (int(got["thread_depth"]), got["thread_root_id"]) == threads[deepest]


def test_no_links_still_writes_valid_files(tmp_path):
    from pipeline.core.workspace import write_parquet

    ds = make_fake_dataset(tmp_path)
    df = ds.read_input()
    df["in_reply_to_status_id"] = None
    df["urls_json"] = "[]"
    write_parquet(df, ds.input_path)
    meta = run_links(ds)
    edges, nodes, _ = load_links(ds)
    assert meta["edges"] == 0 and len(edges) == 0 and list(edges.columns) == EDGE_COLUMNS
    assert (nodes["thread_depth"] == 0).all() and (nodes["thread_size"] == 1).all()
