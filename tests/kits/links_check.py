"""Links checked against a plain-Python reading of input.parquet (the slow obvious way)."""

from __future__ import annotations

import json
import re

import pandas as pd
import pyarrow.parquet as pq

from pipeline.serving.contracts import EDGE_COLUMNS, LINKS_CONTRACT, NODE_STATS_COLUMNS, arrow_schema_problems
from pipeline.stages.links import load_links, run_links

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
