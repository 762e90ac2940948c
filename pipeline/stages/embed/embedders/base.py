"""The embedder interface every provider implements, and the normalisation they share."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from pipeline.core.errors import EmbedderError  # noqa: F401  (providers raise it)


class Embedder:
    """Base class: ``embed(texts) -> float32 (N×d)`` rows L2-normalised, in input order."""

    provider: str = ""
    model_id: str = ""
    dimensions: int = 0
    #: texts per call that keep progress responsive (run_embed chunks by this)
    chunk_size: int = 2048
    #: finished chunks are kept on disk so a crashed run resumes (paid APIs)
    resumable: bool = False

    def embed(self, texts: Sequence[str], progress=None) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def plan_chunks(self, texts: Sequence[str]) -> list[tuple[int, int]]:
        """``[start, end)`` ranges run_embed embeds one at a time (progress, cancel, resume points)."""
        n = len(texts)
        return [(s, min(s + self.chunk_size, n)) for s in range(0, n, self.chunk_size)]

    def encode(self, texts: Sequence[str], show_progress_bar: bool = False, **_ignored) -> np.ndarray:
        """sentence-transformers-style alias, so toponymy can use the same embedder."""
        return self.embed(list(texts))

    def describe(self) -> dict:
        return {"provider": self.provider, "model_id": self.model_id, "dimensions": self.dimensions}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model_id!r}, {self.dimensions}-d)"


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (vectors / norms).astype(np.float32, copy=False)
