"""Carry a labels table over to placed rows (pure): members added, shapes redrawn, grown clusters flagged.

Every label, description and status of the curator stays. A new tweet joins its layer-0
cluster (``0_<cluster>``) and that cluster's ancestors; each cluster that gained tweets gets
its ``count``, ``indices``, hull and centroid recomputed. A cluster that grew by at least
``growth`` of its size (and ``min_new`` tweets) is flagged for review: its status becomes
``flagged`` and the update records why, so the curator can relabel it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.stages.cluster.geometry import cluster_geometry

FLAGGED = "flagged"


@dataclass
class CarriedLabels:
    table: pd.DataFrame
    statuses: dict[str, str]
    review: dict[str, dict]   # grown clusters: before, after, added, previous_status
    edits: list[dict]         # status changes, as label edits record them
    unplaced: int             # new rows whose layer-0 cluster has no label row


def added_members(table: pd.DataFrame, rows: np.ndarray, clusters: np.ndarray) -> tuple[dict[str, list[int]], int]:
    """{label cluster id: new rows} for rows in layer-0 ``clusters``, up through every ancestor."""
    parent = dict(zip(table["cluster"], table["parent_cluster"]))
    added: dict[str, list[int]] = {}
    unplaced = 0
    for row, cluster in zip(np.asarray(rows).tolist(), np.asarray(clusters).tolist()):
        name = f"0_{cluster}"
        if name not in parent:
            unplaced += 1
            continue
        while name:
            added.setdefault(name, []).append(row)
            name = parent.get(name)
    return added, unplaced


def carry_labels(table: pd.DataFrame, statuses: dict[str, str], rows: np.ndarray, clusters: np.ndarray,
                 xy: np.ndarray, growth: float, min_new: int) -> CarriedLabels:
    """The label table with ``rows`` (placed at ``xy[rows]``, in layer-0 ``clusters``) added."""
    table = table.copy()
    statuses = dict(statuses)
    added, unplaced = added_members(table, rows, clusters)
    review, edits = {}, []
    changed = [(i, name) for i, name in enumerate(table["cluster"]) if added.get(name)]
    members = [np.sort(np.concatenate([np.asarray(table.at[i, "indices"], dtype=np.int64),
                                       np.asarray(added[name], dtype=np.int64)])) for i, name in changed]
    shapes = _shapes(np.asarray(xy, dtype=np.float64), members)
    for (i, name), rows_of, shape in zip(changed, members, shapes):
        before = len(table.at[i, "indices"])
        new = len(added[name])
        table.at[i, "indices"] = rows_of.tolist()
        table.at[i, "count"] = int(len(rows_of))
        table.at[i, "hull"], table.at[i, "centroid_x"], table.at[i, "centroid_y"] = shape
        if new >= max(1, min_new) and new >= growth * before:
            previous = statuses.get(name, "auto")
            review[name] = {"before": int(before), "after": int(len(rows_of)), "added": new,
                            "previous_status": previous}
            if previous != FLAGGED:
                statuses[name] = FLAGGED
                edits.append({"cluster": name, "field": "status", "old": previous, "new": FLAGGED,
                              "reason": f"grew by {new} tweets in an archive update"})
    return CarriedLabels(table, statuses, review, edits, unplaced)


def _shapes(xy: np.ndarray, members: list[np.ndarray]) -> list[tuple[list, float, float]]:
    """(hull, centroid x, centroid y) of each member list, by the cluster stage's own geometry rule."""
    if not members:
        return []
    points = np.vstack([xy[m] for m in members])
    labels = np.repeat(np.arange(len(members)), [len(m) for m in members])
    frame = cluster_geometry(points, labels).set_index("cluster")
    return [(frame.at[j, "hull"], float(frame.at[j, "centroid_x"]), float(frame.at[j, "centroid_y"]))
            for j in range(len(members))]
