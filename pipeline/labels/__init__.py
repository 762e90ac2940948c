"""Hierarchical topic labels with toponymy (stage 5): naming, hierarchy, audit loop, curator edits.

Importing this package is cheap; toponymy (slow to import) loads when a stage function runs.
"""

import os

# litellm (imported by toponymy) otherwise fetches a price list from the network at import
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from pipeline.labels.config import LabelConfig  # noqa: E402
from pipeline.labels.errors import NamingError  # noqa: E402
from pipeline.labels.table import COLUMNS, STATUSES, load_labels  # noqa: E402

__all__ = ["LabelConfig", "run_labels", "load_labels", "label_clusters", "NamingError", "COLUMNS", "STATUSES"]


def __getattr__(name):
    if name in ("run_labels", "label_clusters"):
        from pipeline.labels import stage

        return getattr(stage, name)
    raise AttributeError(f"module 'pipeline.labels' has no attribute {name!r}")
