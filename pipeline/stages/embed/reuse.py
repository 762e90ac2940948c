"""Embedding reuse: a row whose tweet id and embedded string are unchanged keeps its vector.

Every embedding artifact records, per row, the tweet ``id`` and a hash of the exact string
sent to the embedder (``embedding-NNN-keys.parquet``). A later run with the same provider,
model and dimensions copies the vector of every row whose (id, hash) it finds there, so an
archive downloaded again costs only its new or edited tweets (what saves a Voyage bill).
The embed stage calls :func:`plan_reuse` before embedding and :meth:`Reuse.write` while
writing; the sidecar gets ``n_reused``, ``n_embedded`` and ``reused_from``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np
import pandas as pd

from pipeline.core.workspace import Dataset, atomic_write_parquet
from pipeline.stages.embed.embedders.voyage import estimate_tokens as _text_tokens

KEYS_SUFFIX = "-keys.parquet"


def text_hash(text: str) -> str:
    """16-byte BLAKE2b of the string as UTF-8 (lone surrogates kept, so no two strings collide)."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def row_keys(ids: Sequence[str], texts: Sequence[str]) -> pd.DataFrame:
    """``id, text_hash`` per row, in row order."""
    if len(ids) != len(texts):
        raise ValueError(f"row_keys: {len(ids)} ids but {len(texts)} texts")
    return pd.DataFrame({"id": [str(i) for i in ids], "text_hash": [text_hash(t) for t in texts]})


def keys_path(dataset: Dataset, embedding_id: str):
    return dataset.artifact_path(embedding_id, KEYS_SUFFIX)


def load_keys(dataset: Dataset, embedding_id: str) -> Optional[pd.DataFrame]:
    path = keys_path(dataset, embedding_id)
    return pd.read_parquet(path) if path.is_file() else None


def same_space(sidecar: dict, provider: str, model_id: str, dimensions: int) -> bool:
    """Whether an embedding artifact's vectors live in the space this embedder produces."""
    return (sidecar.get("provider") == provider and sidecar.get("model_id") == model_id
            and int(sidecar.get("dimensions") or 0) == int(dimensions))


def reusable_source(dataset: Dataset, provider: str, model_id: str, dimensions: int) -> Optional[str]:
    """The newest embedding in the same space that recorded its row keys (None when there is none)."""
    for embedding_id in reversed(dataset.list_ids("embedding")):
        if same_space(dataset.sidecar(embedding_id), provider, model_id, dimensions) \
                and keys_path(dataset, embedding_id).is_file():
            return embedding_id
    return None


def dataset_row_keys(dataset: Dataset, texts: Sequence[str]) -> pd.DataFrame:
    """:func:`row_keys` of the dataset's rows (tweet ids from ``input.parquet``) and ``texts``."""
    return row_keys(dataset.read_input(["id"])["id"].astype(str).tolist(), texts)


def match_rows(old: pd.DataFrame, new: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(new rows, old rows) whose (id, text_hash) agree: the vectors that can be copied."""
    old_pos = pd.Series(np.arange(len(old)), index=pd.MultiIndex.from_frame(old[["id", "text_hash"]]))
    old_pos = old_pos[~old_pos.index.duplicated()]
    found = old_pos.reindex(pd.MultiIndex.from_frame(new[["id", "text_hash"]]))
    hit = found.notna().to_numpy()
    return np.flatnonzero(hit), found.to_numpy()[hit].astype(np.int64)


@dataclass
class Reuse:
    """The rows (in row order) whose vectors come from ``source`` rather than the embedder."""

    keys: pd.DataFrame
    source: Optional[str] = None
    rows: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    vectors: Optional[np.ndarray] = None

    @property
    def n_reused(self) -> int:
        return int(len(self.rows))

    def fill(self, out: np.ndarray, order: np.ndarray) -> np.ndarray:
        """Copy the reused vectors into ``out`` (rows in ``order``); returns the mask of filled positions."""
        covered = np.zeros(len(out), dtype=bool)
        if self.n_reused:
            position = np.empty(len(order), dtype=np.int64)
            position[order] = np.arange(len(order))
            out[position[self.rows]] = self.vectors
            covered[position[self.rows]] = True
        self.vectors = None  # copied: do not hold a second matrix
        return covered

    def sidecar_fields(self, n_rows: int) -> dict:
        return {"n_reused": self.n_reused, "n_embedded": int(n_rows) - self.n_reused, "reused_from": self.source}

    def write(self, art) -> None:
        """Record the row keys with the artifact (so the next run can reuse it)."""
        art.write_parquet(self.keys, KEYS_SUFFIX)


def plan_reuse(dataset: Dataset, provider: str, model_id: str, dimensions: int, texts: Sequence[str],
               load: Callable[[Dataset, str], np.ndarray]) -> Reuse:
    """Which rows of ``texts`` (the final strings, in row order) already have a vector, and those vectors.

    ``load`` reads an embedding matrix (the embed stage's ``load_embeddings``).
    """
    keys = dataset_row_keys(dataset, texts)
    source = reusable_source(dataset, provider, model_id, dimensions)
    if source is None:
        return Reuse(keys)
    new_rows, old_rows = match_rows(load_keys(dataset, source), keys)
    if not len(new_rows):
        return Reuse(keys, source)
    return Reuse(keys, source, new_rows, load(dataset, source)[old_rows])


def backfill_keys(dataset: Dataset, embedding_id: str, texts: Sequence[str]) -> bool:
    """Write the row keys of an embedding made before keys were recorded; False when it cannot be done.

    Only valid while ``input.parquet`` is the one the embedding was made from (its input
    fingerprint) and ``texts`` are the strings that were embedded.
    """
    side = dataset.sidecar(embedding_id)
    if keys_path(dataset, embedding_id).is_file():
        return True
    if (side.get("inputs") or {}).get("input") != dataset.input_fingerprint() or side.get("rows") != len(texts):
        return False
    keys = dataset_row_keys(dataset, texts)
    atomic_write_parquet(keys, keys_path(dataset, embedding_id))
    return True


def estimate_tokens(texts: Sequence[str]) -> int:
    """Voyage's generous token estimate for these texts (what the batching plans with)."""
    return int(sum(_text_tokens(t) for t in texts))
