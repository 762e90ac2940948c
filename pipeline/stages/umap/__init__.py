"""UMAP stage: one kNN graph -> the 2-D display manifold and the cluster manifold."""

from pipeline.stages.umap.stage import UmapConfig, load_umap, run, run_umap

__all__ = ["UmapConfig", "load_umap", "run", "run_umap"]
