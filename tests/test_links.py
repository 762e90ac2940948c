"""Links: edges and node stats checked against a plain-Python reading of input.parquet."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from test_scope_fakes import make_fake_dataset

from pipeline import links as links_mod
from pipeline.contracts import EDGE_COLUMNS, LINKS_CONTRACT, NODE_STATS_COLUMNS, arrow_schema_problems
from pipeline.links import load_links, run_links, thread_structure

STATUS = re.compile(r"https?://(?:www\.|mobile\.)?(?:x|twitter)\.com/(?:i/web/|#!/)?(?:[A-Za-z0-9_]{1,15}/)?"
                    r"status(?:es)?/(\d+)")


def reference_links(df):
    """Edges and thread facts the slow obvious way, to check the vectorised code against."""
    ids = [str(i) for i in df["id"]]
    source = [t not in ("retweet", "like") for t in df["tweet_type"]]
    where = {}
    for i, tid in enumerate(ids):
        if source[i] and tid not in where:
            where[tid] = i
    for i, tid in enumerate(ids):
        where.setdefault(tid, i)
    edges = set()
    parent = {}
    for i, tid in enumerate(ids):
        if not source[i]:
            continue
        reply_to = df["in_reply_to_status_id"].iat[i]
        if isinstance(reply_to, str) and reply_to:
            edges.add(("reply", tid, reply_to))
            parent[tid] = reply_to
        for url in json.loads(df["urls_json"].iat[i] or "[]"):
            m = STATUS.match(url)
            if m and m.group(1) != tid:
                edges.add(("quote", tid, m.group(1)))
    internal = {e for e in edges if e[2] in where}
    nodes = {tid for i, tid in enumerate(ids) if source[i]}

    def depth_root(tid):
        depth, seen = 0, {tid}
        while tid in parent:
            up = parent[tid]
            depth += 1
            if up not in nodes or up in seen:
                return depth, up
            seen.add(up)
            tid = up
        return depth, tid

    return edges, internal, {t: depth_root(t) for t in nodes}


def check_against_reference(ds):
    meta = run_links(ds)
    edges, nodes, meta_file = load_links(ds)
    assert meta == meta_file
    assert list(edges.columns) == EDGE_COLUMNS and list(nodes.columns) == NODE_STATS_COLUMNS
    import pyarrow.parquet as pq

    assert arrow_schema_problems(pq.read_schema(ds.links_dir / "edges.parquet"), LINKS_CONTRACT, "edges") == []
    assert arrow_schema_problems(pq.read_schema(ds.links_dir / "node_link_stats.parquet"), LINKS_CONTRACT,
                                 "node_stats") == []
    df = ds.read_input(["id", "tweet_type", "in_reply_to_status_id", "urls_json"])
    ref_edges, ref_internal, ref_threads = reference_links(df)
    got = set(zip(edges["edge_type"], edges["src_tweet_id"], edges["dst_tweet_id"]))
    assert got == ref_edges
    got_internal = {e for e, flag in zip(zip(edges["edge_type"], edges["src_tweet_id"], edges["dst_tweet_id"]),
                                         edges["internal_target"]) if flag}
    assert got_internal == ref_internal
    assert meta["edges"] == len(ref_edges) and meta["internal_edges"] == len(ref_internal)
    assert meta["edge_type_counts"]["reply"] == sum(e[0] == "reply" for e in ref_edges)
    assert meta["edge_type_counts"]["quote"] == sum(e[0] == "quote" for e in ref_edges)
    # internal edges point at the right row; external ones at none
    ids = df["id"].astype(str).tolist()
    import pandas as pd

    for dst, dst_ls, internal in zip(edges["dst_tweet_id"], edges["dst_ls_index"], edges["internal_target"]):
        assert internal == (not pd.isna(dst_ls))
        if internal:
            assert ids[int(dst_ls)] == dst
    for src, src_ls in zip(edges["src_tweet_id"], edges["src_ls_index"]):
        assert ids[int(src_ls)] == src
    # thread depth and root of every node
    assert set(nodes["tweet_id"]) == set(ref_threads)
    for tid, root, depth in zip(nodes["tweet_id"], nodes["thread_root_id"], nodes["thread_depth"]):
        assert (int(depth), root) == ref_threads[tid], tid
    sizes = nodes.groupby("thread_root_id")["tweet_id"].transform("size")
    assert (nodes["thread_size"].to_numpy() == sizes.to_numpy()).all()
    return meta, edges, nodes, ref_threads


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

    original = links_mod.write_parquet
    monkeypatch.setattr(links_mod, "write_parquet", failing)
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
    from pipeline.workspace import write_parquet

    ds = make_fake_dataset(tmp_path)
    df = ds.read_input()
    df["in_reply_to_status_id"] = None
    df["urls_json"] = "[]"
    write_parquet(df, ds.input_path)
    meta = run_links(ds)
    edges, nodes, _ = load_links(ds)
    assert meta["edges"] == 0 and len(edges) == 0 and list(edges.columns) == EDGE_COLUMNS
    assert (nodes["thread_depth"] == 0).all() and (nodes["thread_size"] == 1).all()
