"""What the labels stage's audit loop said about each label, from the labels sidecar's ``rounds``.

Pure: sidecar dict in, one row per judged cluster out — its final judge score and what the
audit changed ("renamed from …", "kept: no better name", or nothing when it was never weak).
"""

from __future__ import annotations

import pandas as pd

AUDIT_COLUMNS = ["cluster", "judge_score", "audit"]


def audit_summary(sidecar: dict) -> pd.DataFrame:
    """cluster, judge_score (the last score the judge gave the label it kept), audit (what changed)."""
    scores: dict[str, float] = {}
    renamed: dict[str, list[str]] = {}
    tried: dict[str, int] = {}
    for record in sidecar.get("rounds") or []:
        for cluster, score in (record.get("scores") or {}).items():
            scores[str(cluster)] = float(score)
        for change in record.get("changes") or []:
            cluster = str(change.get("cluster"))
            tried[cluster] = tried.get(cluster, 0) + 1
            if change.get("applied"):
                renamed.setdefault(cluster, []).append(
                    f"renamed from “{change.get('old_label')}” ({float(change.get('old_score') or 0):.2f}"
                    f" → {float(change.get('new_score') or 0):.2f})")
                scores[cluster] = float(change.get("new_score") or 0.0)
    rows = []
    for cluster, score in scores.items():
        if cluster in renamed:
            text = "; ".join(renamed[cluster])
        elif tried.get(cluster):
            text = f"kept: {tried[cluster]} new name(s) judged no better"
        else:
            text = ""
        rows.append((cluster, round(score, 3), text))
    return pd.DataFrame(rows, columns=AUDIT_COLUMNS)


def with_audit(table: pd.DataFrame, sidecar: dict) -> pd.DataFrame:
    """``table`` (one row per cluster) plus judge_score and audit columns (NaN / "" when not judged)."""
    summary = audit_summary(sidecar).set_index("cluster")
    out = table.copy()
    out["judge_score"] = out["cluster"].map(summary["judge_score"]).astype(float)
    out["audit"] = out["cluster"].map(summary["audit"]).fillna("").astype(object)
    return out
