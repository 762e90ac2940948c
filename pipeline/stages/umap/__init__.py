"""UMAP stage: one kNN graph -> the 2-D display manifold and the cluster manifold.

The stage module is imported on first use: readers of the coordinates
(``pipeline.stages.umap.artifact``) need not load the fitting code and numba.
"""

__all__ = ["UmapConfig", "load_umap", "run", "run_umap"]


def __getattr__(name: str):
    if name in __all__:
        from pipeline.stages.umap import stage

        return getattr(stage, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
