"""Reading a UMAP artifact's coordinates: kept apart from the stage so readers (cluster, labels,
studio) need not import the fitting code and its compiled kernels."""

from __future__ import annotations

from typing import Optional

import pandas as pd

from pipeline.core.workspace import Dataset, WorkspaceError


def load_umap(dataset: Dataset, umap_id: Optional[str] = None, purpose: str = "display") -> pd.DataFrame:
    """The coordinates of ``umap_id`` (latest of ``purpose`` when None): x,y or dim_0..dim_k."""
    umap_id = dataset.require("umap", umap_id, purpose=purpose)
    path = dataset.artifact_path(umap_id, ".parquet")
    if not path.is_file():
        raise WorkspaceError(f"{umap_id} of dataset '{dataset.name}' has no {path.name}; run umap again")
    return pd.read_parquet(path)
