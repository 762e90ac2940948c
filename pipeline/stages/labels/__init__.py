"""Hierarchical topic labels with toponymy (stage 5): naming, hierarchy, audit loop, curator edits.

Importing this package is cheap; toponymy (slow to import) loads when a stage function runs.
"""

import os

# litellm (imported by toponymy) otherwise fetches a price list from the network at import
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from pipeline.core.errors import NamingError  # noqa: E402
from pipeline.stages.labels.config import LabelConfig  # noqa: E402
from pipeline.stages.labels.table import COLUMNS, STATUSES, load_labels  # noqa: E402

__all__ = ["LabelConfig", "run", "run_labels", "load_labels", "label_clusters", "NamingError", "COLUMNS", "STATUSES"]


def run(dataset, config: LabelConfig, inputs: dict, progress) -> str:
    """The stage contract: label a cluster artifact -> ``toponymy-NNN`` (toponymy is imported here: it is slow)."""
    from pipeline.stages.labels.stage import run_labels

    return run_labels(dataset, config, progress, **inputs)


def __getattr__(name):
    if name in ("run_labels", "label_clusters"):
        from pipeline.stages.labels import stage

        return getattr(stage, name)
    raise AttributeError(f"module 'pipeline.stages.labels' has no attribute {name!r}")
