"""Embed stage: tweet texts -> ``embeddings/embedding-NNN.h5`` (providers in ``embedders/``)."""

from pipeline.stages.embed.stage import EmbedConfig, embedder_for, load_embeddings, run, run_embed

__all__ = ["EmbedConfig", "embedder_for", "load_embeddings", "run", "run_embed"]
