"""LanceDB stage: the latest (or chosen) scope's rows and vectors as a LanceDB table, for search.

A derived output of a scope rather than an NNN artifact: its id is the scope's
``lancedb_table_id`` and its record is ``<dataset>/lancedb/exports.json``. The export itself
(indices, verification, ``_meta`` registration) is :func:`pipeline.serving.lance_export.export_lance`;
the target is ``$LANCEDB_URI`` when set, else the dataset's own ``lancedb/`` folder.
"""

from __future__ import annotations

from typing import Optional

import param

from pipeline.core.config import StageConfig
from pipeline.core.progress import Progress
from pipeline.core.workspace import Dataset
from pipeline.serving.lance_export import export_lance, read_export_records, scope_table_name


class LanceConfig(StageConfig):
    """The scope's local LanceDB table."""

    vector_index_min_rows = param.Integer(
        default=None, allow_None=True, bounds=(0, None),
        doc="build the IVF_PQ vector index only from this many rows; below it vector search is an exact "
            "scan and the export skips ~30 s of index training; none = auto, 100K rows of 256-d vectors "
            "(36 ms a search), 25K of 1024-d")


def local_table_status(dataset: Dataset) -> dict:
    """Done when the latest scope's table has been exported; missing otherwise (stale follows its scope)."""
    scope_id = dataset.latest("scopes")
    if scope_id is None:
        return {"status": "missing", "id": None, "reason": "no scope yet"}
    table = scope_table_name(dataset, scope_id)
    if any(record.get("table") == table for record in read_export_records(dataset) if isinstance(record, dict)):
        scope_state = dataset.status("scopes")
        return {"status": scope_state["status"], "id": table, "reason": scope_state["reason"]}
    return {"status": "missing", "id": None, "reason": f"{scope_id} has no LanceDB table yet"}


def run(dataset: Dataset, config: Optional[LanceConfig], inputs: dict, progress: Progress) -> str:
    """The stage contract: export the scope (default: the latest); returns its table name."""
    config = config or LanceConfig()
    scope_id = dataset.require("scopes", inputs.get("scope_id"))
    return export_lance(dataset, scope_id, None, progress,
                        vector_index_min_rows=config.vector_index_min_rows)["table"]
