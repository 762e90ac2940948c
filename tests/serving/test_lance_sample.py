"""LanceDB export of the real sample archive's scope (built by the real stages, offline)."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from pipeline.serving import control_plane as cp
from pipeline.serving import lance_export as lx
from support import copy_dataset

pytestmark = pytest.mark.slow


@pytest.fixture
def sample(scoped_dataset, tmp_path, monkeypatch):
    monkeypatch.delenv("LANCEDB_URI", raising=False)
    dataset = copy_dataset(scoped_dataset, tmp_path)
    scope_id = dataset.latest("scopes")
    serving = pd.read_parquet(dataset.artifact_path(scope_id, "-input.parquet"))
    return dataset, scope_id, serving


def _distinctive_word(serving: pd.DataFrame) -> tuple[str, int]:
    """A word found in exactly one live row, sharing no 5-letter prefix with any other word
    (so stemming cannot merge it with another), and that row's ls_index."""
    live = serving[~serving["deleted"]]
    words_per_row = [set(re.findall(r"[a-z]{7,}", t.lower())) for t in live["text"]]
    counts = Counter(w for words in words_per_row for w in words)
    all_words = set(re.findall(r"[a-z0-9]+", " ".join(live["text"]).lower()))
    prefixes = Counter(w[:5] for w in all_words if len(w) >= 5)
    for words, ls_index in zip(words_per_row, live["ls_index"]):
        for w in sorted(words):
            if counts[w] == 1 and prefixes[w[:5]] == 1:
                return w, int(ls_index)
    pytest.skip("no distinctive word in the sample")


def _unique_vector_row(serving: pd.DataFrame, vectors: np.ndarray, cluster_sizes: Counter) -> int:
    live = serving[~serving["deleted"] & ~serving["text"].duplicated(keep=False)]
    for ls_index, cluster in zip(live["ls_index"], live["cluster"]):
        if cluster_sizes[cluster] >= 10:
            others = np.delete(vectors, ls_index, axis=0)
            if not np.any(np.all(np.isclose(others, vectors[ls_index]), axis=1)):
                return int(ls_index)
    pytest.skip("no row with a unique vector")


def test_sample_scope_export_and_search(sample):
    from pipeline.stages.embed.stage import load_embeddings

    dataset, scope_id, serving = sample
    record = lx.export_lance(dataset, scope_id)
    live = serving[~serving["deleted"]]
    assert record["rows"] == len(live) and record["table"] == dataset.sidecar(scope_id)["lancedb_table_id"]
    assert {i["index_type"] for i in record["indices"]} == {"BTREE", "FTS"}  # 2K rows: an exact scan
    assert record["vector_index"] is False and len(live) < record["vector_index_min_rows"] == 100_000

    vectors = load_embeddings(dataset, dataset.sidecar(scope_id)["embedding_id"])
    sizes = Counter(live["cluster"])
    row = _unique_vector_row(serving, vectors, sizes)
    k = serving.loc[serving["ls_index"] == row, "cluster"].iloc[0]
    assert isinstance(k, str) and k.startswith("0_")  # toponymy layer-0 lookup id
    found = lx.search_scope(dataset, scope_id, vector=vectors[row], cluster=k, limit=10)
    assert found["ls_index"].iloc[0] == row
    assert set(found["cluster"]) == {k} and len(found) == min(10, sizes[k])

    word, word_row = _distinctive_word(serving)
    hits = lx.search_scope(dataset, scope_id, fts=word)
    assert list(hits["ls_index"]) == [word_row]

    # a semantic query through the scope's own embedder returns live rows of the scope
    text = serving.loc[serving["ls_index"] == row, "text"].iloc[0]
    semantic = lx.search_scope(dataset, scope_id, query=text, limit=5)
    assert row in set(semantic["ls_index"].iloc[:3]) and not semantic["deleted"].any()

    plane = cp.open_control_plane(dataset)
    stored = cp.find_scope(plane, scope_uid=dataset.sidecar(scope_id)["scope_uid"])
    assert stored["slug"] == scope_id and stored["rows"] == len(serving)


def test_sample_tombstoned_rows_never_come_back(sample):
    from pipeline.core.tombstones import add_tombstones
    from pipeline.stages.embed.stage import load_embeddings
    from pipeline.stages.scope import apply_tombstones

    dataset, scope_id, serving = sample
    word, row = _distinctive_word(serving)
    add_tombstones(dataset, [row])
    apply_tombstones(dataset, scope_id)
    record = lx.export_lance(dataset, scope_id)
    assert record["deleted_skipped"] >= 1

    assert lx.search_scope(dataset, scope_id, fts=word).empty
    vectors = load_embeddings(dataset, dataset.sidecar(scope_id)["embedding_id"])
    near = lx.search_scope(dataset, scope_id, vector=vectors[row], limit=20)
    assert row not in set(near["ls_index"]) and not near["deleted"].any()
    table = lx.open_scope_table(dataset, scope_id)
    assert table.count_rows(f"ls_index = {row}") == 0 and table.count_rows("deleted = true") == 0
