"""Offline static embedder: WordLlama token vectors, mean-pooled.

WordLlama (MIT) ships its ``l2_supercat`` 256-d token-embedding table and tokenizer
inside the PyPI wheel, so nothing is fetched at run time. A text's vector is the mean of
its tokens' rows — one sparse matrix product for a whole chunk, no padding, no model
forward pass — which is why it embeds thousands of tweets a second on two cores where
a transformer manages tens (README "Local embedding models").
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from pipeline.stages.embed.embedders.base import Embedder, EmbedderError, l2_normalise


def _import_wordllama():
    """Import wordllama without letting it reconfigure the root logger (it calls basicConfig)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        import wordllama
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise EmbedderError("the local embedder needs the 'wordllama' package (pip install wordllama)") from exc
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return wordllama


class WordLlamaEmbedder(Embedder):
    """Mean of WordLlama token embeddings, L2-normalised (an empty text gives a zero vector)."""

    provider = "local"
    resumable = False
    chunk_size = 8192  # ~1 s of work on 2 cores

    def __init__(self, model_id: str, config: str = "l2_supercat", dim: int = 256, **_ignored):
        self.model_id = model_id
        self.config = config
        self._dimensions = int(dim)
        self._table: Optional[np.ndarray] = None
        self._tokenizer = None
        self._lock = threading.Lock()

    @property
    def dimensions(self) -> int:  # type: ignore[override]
        return self._dimensions

    def _load(self):
        with self._lock:
            if self._table is None:
                wordllama = _import_wordllama()
                package_dir = Path(wordllama.__file__).parent
                # cache_dir = the package: the wheel's own weights, never a download
                try:
                    model = wordllama.WordLlama.load(config=self.config, dim=self._dimensions,
                                                     cache_dir=package_dir, disable_download=True)
                except Exception as exc:
                    raise EmbedderError(
                        f"local embedder {self.model_id}: the weights bundled with wordllama "
                        f"could not be loaded from {package_dir} ({exc})") from exc
                tokenizer = model.tokenizer
                tokenizer.no_padding()
                tokenizer.no_truncation()
                self._tokenizer = tokenizer
                self._table = np.ascontiguousarray(model.embedding, dtype=np.float32)
        return self._table, self._tokenizer

    def embed(self, texts: Sequence[str], progress=None) -> np.ndarray:
        from scipy.sparse import csr_matrix

        table, tokenizer = self._load()
        texts = [t if isinstance(t, str) else "" for t in texts]
        if not texts:
            return np.zeros((0, self._dimensions), dtype=np.float32)
        encodings = tokenizer.encode_batch(texts, add_special_tokens=False)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        indptr = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        ids = np.fromiter((i for e in encodings for i in e.ids), dtype=np.int64, count=int(indptr[-1]))
        np.clip(ids, 0, table.shape[0] - 1, out=ids)
        counts = csr_matrix((np.ones(len(ids), dtype=np.float32), ids, indptr),
                            shape=(len(texts), table.shape[0]))
        sums = np.asarray(counts @ table, dtype=np.float32)
        if progress is not None:
            progress.check()
        # the mean's divisor cancels under L2 normalisation; kept for readable intermediate values
        return l2_normalise(sums / np.maximum(lengths, 1)[:, None].astype(np.float32))
