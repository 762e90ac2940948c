"""Reply and quote links between tweets: ``links/edges.parquet``, ``node_link_stats.parquet``, ``meta.json``.

Sources are the curator's own authored rows (tweets, replies, quotes — not retweets or
likes). A reply edge comes from ``in_reply_to_status_id``; a quote edge from each
``/status/<id>`` link in ``urls_json``. A target inside the dataset gets its ``dst_ls_index``.
Threads follow reply edges between source rows: the root is the first tweet of the chain
(outside the dataset when the chain answers someone else), depth counts hops from it.

Everything is column-wise (pandas/numpy); pointer jumping resolves thread roots in
O(N log depth).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd

from pipeline import __version__
from pipeline.core.errors import LineageError
from pipeline.core.progress import Progress, null_progress
from pipeline.core.tombstones import tombstone_mask
from pipeline.core.workspace import Dataset, atomic_files, read_json, utc_now_iso
from pipeline.serving.contracts import (
    EDGE_COLUMNS,
    LINKS_CONTRACT,
    LINKS_CONTRACT_VERSION,
    NODE_STATS_COLUMNS,
    normalize_serving_types,
    read_contract_parquet,
    to_arrow_table,
    validate_links_df,
)

STATUS_URL_PATTERN = (
    r"(?P<url>https?://(?:www\.|mobile\.)?(?:x|twitter)\.com/"
    r"(?:i/web/|#!/)?(?:[A-Za-z0-9_]{1,15}/)?status(?:es)?/(?P<tweet_id>\d{1,25}))"
)
NON_SOURCE_TYPES = ("retweet", "like")
INPUT_COLUMNS = ["id", "tweet_type", "is_retweet", "is_like", "in_reply_to_status_id", "urls_json"]
MAX_JUMPS = 64  # pointer-jumping rounds; 2**64 hops is beyond any real thread, more means a cycle

#: the id the links carry as a derived output (one set per dataset, rebuilt from the input)
LINKS_ID = "links"


def _id_strings(series: pd.Series) -> pd.Series:
    """Tweet ids as clean decimal strings ('' for missing)."""
    if pd.api.types.is_numeric_dtype(series):
        series = series.astype("Int64")
    text = series.astype("str").fillna("").str.strip()
    text = text.where(~text.isin(["nan", "None", "<NA>", "0"]), "")
    return text.str.replace(r"\.0$", "", regex=True)


def source_mask(df: pd.DataFrame) -> np.ndarray:
    """Rows whose links count: the curator's own tweets, replies and quotes."""
    mask = np.ones(len(df), dtype=bool)
    if "tweet_type" in df.columns:
        mask &= ~df["tweet_type"].astype("str").str.lower().isin(NON_SOURCE_TYPES).to_numpy()
    for flag in ("is_retweet", "is_like"):
        if flag in df.columns:
            mask &= ~df[flag].fillna(False).astype(bool).to_numpy()
    return mask


def _target_index(ids: pd.Series, sources: np.ndarray) -> pd.Series:
    """tweet id -> ls_index, preferring a source row when an id appears twice (e.g. a self-like)."""
    order = np.lexsort((np.arange(len(ids)), ~sources))  # sources first, then by ls_index
    frame = pd.DataFrame({"id": ids.to_numpy()[order], "ls_index": order})
    frame = frame[frame["id"] != ""].drop_duplicates("id", keep="first")
    return pd.Series(frame["ls_index"].to_numpy(), index=frame["id"].to_numpy())


def build_edges(df: pd.DataFrame, deleted: Optional[np.ndarray] = None) -> pd.DataFrame:
    """Reply and quote edges of an input frame (row i = ls_index i), contract column order."""
    n = len(df)
    ids = _id_strings(df["id"]) if n else pd.Series([], dtype="str")
    sources = source_mask(df)
    targets = _target_index(ids, sources)
    src_idx = np.flatnonzero(sources)

    parts = []
    if "in_reply_to_status_id" in df.columns and len(src_idx):
        parent = _id_strings(df["in_reply_to_status_id"]).to_numpy()[src_idx]
        has = parent != ""
        parts.append(pd.DataFrame({
            "edge_type": "reply",
            "src_ls_index": src_idx[has],
            "dst_tweet_id": parent[has],
            "source_url": None,
        }))
    if "urls_json" in df.columns and len(src_idx):
        urls = df["urls_json"].astype("str").fillna("").to_numpy()[src_idx]
        urls = pd.Series(urls, index=src_idx).str.replace("\\/", "/", regex=False)
        hits = urls[urls.str.contains("status", regex=False)].str.extractall(STATUS_URL_PATTERN)
        if len(hits):
            src = hits.index.get_level_values(0).to_numpy()
            url = hits["url"].str.replace(r"^http://", "https://", regex=True)
            url = url.str.replace(r"://(?:www\.|mobile\.)", "://", regex=True)
            parts.append(pd.DataFrame({
                "edge_type": "quote",
                "src_ls_index": src,
                "dst_tweet_id": hits["tweet_id"].to_numpy(),
                "source_url": url.to_numpy(),
            }))
    parts = [part for part in parts if len(part)]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in EDGE_COLUMNS})
    # pandas deprecates concatenating all-NA columns (replies carry no URL): join that column apart
    source_url = np.concatenate([part.pop("source_url").to_numpy(dtype=object) for part in parts])
    edges = pd.concat(parts, ignore_index=True)
    edges["source_url"] = source_url
    edges["src_tweet_id"] = ids.to_numpy()[edges["src_ls_index"].to_numpy()]
    edges = edges[(edges["src_tweet_id"] != "") & (edges["dst_tweet_id"] != edges["src_tweet_id"])]
    edges = edges.drop_duplicates(["edge_type", "src_tweet_id", "dst_tweet_id"], keep="first")
    dst = targets.reindex(edges["dst_tweet_id"].to_numpy())
    edges["dst_ls_index"] = pd.array(dst.to_numpy(), dtype="Int64")
    edges["internal_target"] = dst.notna().to_numpy()
    if deleted is not None and deleted.any():
        # a tombstoned tweet keeps its edges (structure) but not the URL text it carried
        gone = deleted[edges["src_ls_index"].to_numpy()]
        edges.loc[gone, "source_url"] = None
    edges = edges.sort_values(["src_ls_index", "edge_type", "dst_tweet_id"], kind="stable")
    return edges[EDGE_COLUMNS].reset_index(drop=True)


def thread_structure(parent_pos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For a forest given by parent positions (-1 = none): (root position, depth, cycle mask).

    Pointer jumping: each round every node jumps to its pointer's pointer, adding its depth,
    so ``log2(max depth)`` rounds resolve every chain. Nodes still moving after
    ``MAX_JUMPS`` rounds sit on a cycle (bad data) and become their own roots.
    """
    n = len(parent_pos)
    positions = np.arange(n)
    pointer = np.where(parent_pos >= 0, parent_pos, positions)
    depth = (parent_pos >= 0).astype(np.int64)
    for _ in range(MAX_JUMPS):
        nxt = pointer[pointer]
        if np.array_equal(nxt, pointer):
            break
        depth = depth + depth[pointer]
        pointer = nxt
    cycle = pointer[pointer] != pointer
    if cycle.any():
        pointer = np.where(cycle, positions, pointer)
        depth = np.where(cycle, 0, depth)
    return pointer, depth, cycle


def build_node_stats(df: pd.DataFrame, edges: pd.DataFrame) -> pd.DataFrame:
    """Per source tweet: reply/quote in/out counts and thread root, depth and size."""
    ids = _id_strings(df["id"])
    sources = source_mask(df) & (ids != "").to_numpy()
    node_ls = np.flatnonzero(sources)
    node_ids = ids.to_numpy()[node_ls]
    nodes = pd.DataFrame({"tweet_id": node_ids, "ls_index": node_ls})
    nodes = nodes.drop_duplicates("tweet_id", keep="first").reset_index(drop=True)

    node_index = pd.Index(nodes["tweet_id"])

    def counts(kind: str, column: str) -> np.ndarray:
        where = node_index.get_indexer(edges.loc[edges["edge_type"] == kind, column])
        return np.bincount(where[where >= 0], minlength=len(nodes)).astype(np.int64)

    nodes["reply_out_count"] = counts("reply", "src_tweet_id")
    nodes["reply_in_count"] = counts("reply", "dst_tweet_id")
    nodes["quote_out_count"] = counts("quote", "src_tweet_id")
    nodes["quote_in_count"] = counts("quote", "dst_tweet_id")

    replies = edges[edges["edge_type"] == "reply"]
    parent_id = pd.Series(replies["dst_tweet_id"].to_numpy(), index=replies["src_tweet_id"].to_numpy())
    parent_id = parent_id[~parent_id.index.duplicated(keep="first")].reindex(nodes["tweet_id"])
    parent_pos = node_index.get_indexer(parent_id.astype(object).fillna("").to_numpy()).astype(np.int64)
    root_pos, depth, _ = thread_structure(parent_pos)

    # a chain whose top answers a tweet outside the dataset is rooted at that outside tweet
    top_parent = parent_id.astype(object).fillna("").astype("str").to_numpy()[root_pos]
    outside = (top_parent != "") & (parent_pos[root_pos] < 0)
    root_id = np.where(outside, top_parent, nodes["tweet_id"].to_numpy()[root_pos])
    nodes["thread_root_id"] = root_id.astype(object)
    nodes["thread_depth"] = (depth + outside.astype(np.int64)).astype(np.int64)
    sizes = pd.Series(root_id).value_counts()
    nodes["thread_size"] = sizes.reindex(root_id).to_numpy().astype(np.int64)
    nodes["reply_child_count"] = np.bincount(parent_pos[parent_pos >= 0], minlength=len(nodes)).astype(np.int64)
    return nodes[NODE_STATS_COLUMNS]


def links_meta(dataset: Dataset, edges: pd.DataFrame, nodes: pd.DataFrame, deleted_sources: int) -> dict:
    by_type = edges["edge_type"].value_counts()
    internal = edges[edges["internal_target"].astype(bool)]["edge_type"].value_counts()
    return {
        "schema_version": LINKS_CONTRACT_VERSION,
        "dataset": dataset.name,
        "created_at": utc_now_iso(),
        "ls_version": __version__,
        "input_fingerprint": dataset.input_fingerprint(),
        "nodes": int(len(nodes)),
        "edges": int(len(edges)),
        "edge_type_counts": {t: int(by_type.get(t, 0)) for t in ("reply", "quote")},
        "internal_edge_type_counts": {t: int(internal.get(t, 0)) for t in ("reply", "quote")},
        "internal_edges": int(internal.sum()),
        "deleted_sources": int(deleted_sources),
    }


def run_links(dataset: Dataset, progress: Optional[Progress] = None) -> dict:
    """Build and write the three links files (validated, renamed in together); returns links/meta.json."""
    progress = progress or null_progress("links")
    progress.update(0, 4, "reading input")
    available = set(dataset.input_columns())
    if "id" not in available:
        raise LineageError(f"dataset '{dataset.name}' input.parquet has no 'id' column; ingest it again")
    df = dataset.read_input([c for c in INPUT_COLUMNS if c in available])
    deleted = tombstone_mask(dataset, len(df))
    progress.update(1, 4, "edges")
    edges = normalize_serving_types(build_edges(df, deleted), LINKS_CONTRACT, "edges")
    progress.update(2, 4, "threads")
    nodes = normalize_serving_types(build_node_stats(df, edges), LINKS_CONTRACT, "node_stats")
    meta = links_meta(dataset, edges, nodes, int((deleted & source_mask(df)).sum()))
    validate_links_df(edges, nodes, meta, LINKS_CONTRACT, n_rows=len(df))
    progress.update(3, 4, "writing")
    _write_links_set(dataset, edges, nodes, meta)
    progress.update(4, 4, f"{meta['edges']} edges")
    return meta



def _write_links_set(dataset: Dataset, edges: pd.DataFrame, nodes: pd.DataFrame, meta: dict) -> None:
    """Write all three files to temp names, then rename them in (meta.json last)."""
    with atomic_files("links") as files:
        files.write_parquet(dataset.links_edges_path, to_arrow_table(edges, LINKS_CONTRACT, "edges"))
        files.write_parquet(dataset.links_node_stats_path, to_arrow_table(nodes, LINKS_CONTRACT, "node_stats"))
        files.write_json(dataset.links_meta_path, meta)


def load_links(dataset: Dataset) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(edges, node stats, meta) as written by :func:`run_links`."""
    return (read_contract_parquet(dataset.links_edges_path), read_contract_parquet(dataset.links_node_stats_path),
            load_links_meta(dataset))


def load_links_meta(dataset: Dataset) -> dict:
    """``links/meta.json`` (counts, schema version, the input it was built from)."""
    return read_json(dataset.links_meta_path)


def links_status(dataset: Dataset) -> dict:
    """The links' status, by the rule of every artifact: missing, stale (the input changed) or done."""
    if not dataset.links_meta_path.is_file():
        return {"status": "missing", "id": None, "reason": "no links yet"}
    recorded = load_links_meta(dataset).get("input_fingerprint")
    if recorded and recorded != dataset.input_fingerprint():
        return {"status": "stale", "id": LINKS_ID, "reason": "the dataset was ingested again"}
    return {"status": "done", "id": LINKS_ID, "reason": ""}


def run(dataset: Dataset, config: None, inputs: dict, progress: Progress) -> str:
    """The stage contract: write the links of the dataset's input; returns ``"links"`` (a derived output)."""
    run_links(dataset, progress)
    return LINKS_ID
