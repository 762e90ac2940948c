"""The label table: the 12 spec §6 columns, their parquet schema, and reading it back."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd

COLUMNS = ["cluster", "layer", "label", "description", "hull", "count", "parent_cluster", "children",
           "centroid_x", "centroid_y", "indices", "topic_specificity"]
STATUSES = ("auto", "edited", "approved", "flagged")


def labels_frame(rows) -> pd.DataFrame:
    """A DataFrame with the 12 columns and stable types (also used by edits)."""
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["layer"] = frame["layer"].astype("int64")
    frame["count"] = frame["count"].astype("int64")
    frame["centroid_x"] = frame["centroid_x"].astype("float64")
    frame["centroid_y"] = frame["centroid_y"].astype("float64")
    frame["topic_specificity"] = pd.array(frame["topic_specificity"], dtype="Float64")
    return frame


def arrow_table(frame: pd.DataFrame):
    """The parquet schema: strings, int64, list<list<double>> hull, list<string>, list<int64>."""
    import pyarrow as pa

    schema = pa.schema([
        ("cluster", pa.string()), ("layer", pa.int64()), ("label", pa.string()), ("description", pa.string()),
        ("hull", pa.list_(pa.list_(pa.float64()))), ("count", pa.int64()), ("parent_cluster", pa.string()),
        ("children", pa.list_(pa.string())), ("centroid_x", pa.float64()), ("centroid_y", pa.float64()),
        ("indices", pa.list_(pa.int64())), ("topic_specificity", pa.float64()),
    ])
    data = {col: frame[col].tolist() for col in COLUMNS}
    data["topic_specificity"] = [None if pd.isna(v) else float(v) for v in frame["topic_specificity"]]
    data["description"] = [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
                           for v in frame["description"]]
    data["parent_cluster"] = [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
                              for v in frame["parent_cluster"]]
    data["hull"] = [[[float(x), float(y)] for x, y in h] for h in frame["hull"]]
    data["children"] = [[str(c) for c in ch] for ch in frame["children"]]
    data["indices"] = [[int(i) for i in ix] for ix in frame["indices"]]
    return pa.Table.from_pydict(data, schema=schema)


def load_labels(dataset, toponymy_id: Optional[str] = None) -> pd.DataFrame:
    """The 12-column label table of ``toponymy_id`` (default: the latest)."""
    toponymy_id = dataset.require("toponymy", toponymy_id)
    frame = pd.read_parquet(dataset.artifact_path(toponymy_id, ".parquet"))[COLUMNS]
    for column in ("description", "parent_cluster"):  # nullable strings: None, never NaN
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame
