"""The serving contracts (``contracts/*.schema.json``): column sets, types, normalisation, checks.

Each contract file is a JSON Schema for one row (``properties``/``required``, with an
``x-arrow-type`` per column) that also carries the column lists the TS API reads
(``version``, ``required_columns``, ``optional_columns``). Everything here is derived from
those files, so a column's type is declared once.

Checks return or raise *every* problem at once (a curator fixes them in one pass).
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.core.errors import ContractError


def _contracts_dir() -> Traversable:
    """The schemas' folder: the package ``pipeline.contracts``, which pyproject.toml maps onto
    the repo's top-level ``contracts/`` (so an installed wheel carries them). An editable
    install made before that mapping cannot import it; the checkout's folder is read then."""
    try:
        return resources.files("pipeline.contracts")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "contracts"


CONTRACTS_DIR = _contracts_dir()

#: ``x-arrow-type`` -> Arrow type. "float" is Arrow's name for float32.
ARROW_TYPES = {
    "string": pa.string(),
    "int64": pa.int64(),
    "int32": pa.int32(),
    "float": pa.float32(),
    "double": pa.float64(),
    "bool": pa.bool_(),
}
#: Arrow types a reader treats as the declared one (pyarrow/pandas may write large_string).
ARROW_EQUIVALENTS = {"string": {pa.string(), pa.large_string()}}
_NUMPY_INTS = {"int64": "int64", "int32": "int32"}
_TRUE_STRINGS = {"1", "true", "t", "yes", "y"}
_EXAMPLES = 5
ISO_UTC_PATTERN = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z"


# --------------------------------------------------------------------------- loading

@lru_cache(maxsize=None)
def _load_cached(name: str) -> str:
    path = CONTRACTS_DIR / f"{name}.schema.json"
    if not path.is_file():
        raise FileNotFoundError(f"contract {path} is missing; the contracts/ folder ships with the project")
    return path.read_text(encoding="utf-8")


def load_contract(name: str = "scope_input") -> dict:
    """The contract ``contracts/<name>.schema.json`` (a fresh copy; callers may change it)."""
    return json.loads(_load_cached(name))


def _scope_contract(contract: Optional[dict]) -> dict:
    return contract if contract is not None else load_contract("scope_input")


def _links_contract(contract: Optional[dict]) -> dict:
    return contract if contract is not None else load_contract("links")


def table_spec(contract: dict, part: Optional[str] = None) -> dict[str, dict]:
    """Column name -> spec (type, nullable, required, arrow, default, json, format, min/max, enum), in file order.

    ``part`` selects a table of a multi-table contract: ``"edges"`` or ``"node_stats"`` of links.
    """
    if part is None:
        holder, row_schema = contract, contract
    else:
        holder = contract[part]
        row_schema = contract["$defs"]["edge" if part == "edges" else "node_link_stats"]
    required = holder.get("required_columns", {})
    optional = holder.get("optional_columns", {})
    props = row_schema.get("properties", {})
    order = holder.get("columns_order") or [*required, *optional]
    spec: dict[str, dict] = {}
    for name in order:
        base = dict(required.get(name) or optional.get(name) or {})
        prop = props.get(name, {})
        spec[name] = {
            "type": base.get("type", "string"),
            "nullable": bool(base.get("nullable", True)),
            "required": name in required,
            "arrow": prop.get("x-arrow-type", "string"),
            "default": prop.get("default", base.get("default")),
            "json": prop.get("x-json") is not None or base.get("type") == "json_string",
            "format": prop.get("format"),
            "pattern": prop.get("pattern"),
            "minimum": prop.get("minimum"),
            "maximum": prop.get("maximum"),
            "enum": prop.get("enum"),
        }
    return spec


def contract_version(contract: dict) -> str:
    return str(contract.get("version", "unknown"))


def arrow_schema_for(contract: Optional[dict] = None, part: Optional[str] = None) -> pa.Schema:
    """The exact Arrow schema a contract's parquet file is written with."""
    contract = _scope_contract(contract)
    fields = []
    for name, spec in table_spec(contract, part).items():
        if spec["arrow"] not in ARROW_TYPES:
            raise ValueError(f"contract column {name!r} has unknown x-arrow-type {spec['arrow']!r}")
        fields.append(pa.field(name, ARROW_TYPES[spec["arrow"]], nullable=spec["nullable"]))
    return pa.schema(fields, metadata={"contract_version": contract_version(contract)})


SCOPE_INPUT_CONTRACT = load_contract("scope_input")
SERVING_CONTRACT_VERSION = contract_version(SCOPE_INPUT_CONTRACT)
#: The 24 columns of ``scopes/<scope>-input.parquet`` in file order (spec §E).
SERVING_COLUMNS: list[str] = list(table_spec(SCOPE_INPUT_CONTRACT))
REQUIRED_COLUMNS: list[str] = list(SCOPE_INPUT_CONTRACT["required"])
#: Columns blanked on tombstoned rows (text and anything that identifies a person).
PERSONAL_COLUMNS: list[str] = list(SCOPE_INPUT_CONTRACT.get("personal_columns", []))

LINKS_CONTRACT = load_contract("links")
LINKS_CONTRACT_VERSION = contract_version(LINKS_CONTRACT)
EDGE_COLUMNS: list[str] = list(table_spec(LINKS_CONTRACT, "edges"))
NODE_STATS_COLUMNS: list[str] = list(table_spec(LINKS_CONTRACT, "node_stats"))


def blank_value(column: str, contract: Optional[dict] = None) -> Any:
    """What a tombstoned row holds in a personal column ("" for text, "[]" for JSON arrays)."""
    spec = table_spec(_scope_contract(contract))[column]
    return spec["default"] if spec["json"] else ""


# --------------------------------------------------------------------------- normalisation

def _is_text_dtype(series: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(series) and not pd.api.types.is_object_dtype(series)


def _as_text(series: pd.Series) -> pd.Series:
    """Any column as pandas text (missing stays missing); vectorised except for odd object cells."""
    if _is_text_dtype(series):
        return series
    if pd.api.types.is_float_dtype(series):
        series = series.astype("Int64")  # ids read as float must not print as 1.2e+18
    if pd.api.types.is_object_dtype(series):
        series = series.where(series.notna(), None)
    return series.astype("str")


def _as_id_string(series: pd.Series) -> pd.Series:
    """Tweet ids as decimal strings, whatever they arrived as (int, float, '123.0')."""
    text = _as_text(series)
    return text.str.replace(r"^(\d+)\.0$", r"\1", regex=True)


def _to_strings(series: pd.Series, nullable: bool, default: Any, is_id: bool = False) -> pd.Series:
    values = _as_id_string(series) if is_id else _as_text(series)
    if not nullable:
        values = values.fillna("" if default is None else default)
    return values


def _to_iso_utc(series: pd.Series) -> pd.Series:
    """Any timestamp or date text -> 'YYYY-MM-DDTHH:MM:SSZ' (missing where unparseable)."""
    if not pd.api.types.is_datetime64_any_dtype(series):
        text = _as_text(series)
        if text.dropna().str.fullmatch(ISO_UTC_PATTERN).all():
            return text  # already in contract form
        series = pd.to_datetime(text, utc=True, errors="coerce", format="mixed")
    elif series.dt.tz is not None:
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    seconds = series.to_numpy(dtype="datetime64[ns]").astype("datetime64[s]")
    text = pd.Series(np.datetime_as_string(seconds, unit="s"), index=series.index).astype("str") + "Z"
    return text.where(~np.isnat(seconds), None)


def _to_json_array_text(series: pd.Series, default: str) -> pd.Series:
    """JSON-array columns as text: lists are dumped, blanks and missing become ``default``."""
    if pd.api.types.is_object_dtype(series):
        is_list = series.map(lambda v: isinstance(v, (list, tuple, np.ndarray)))
        if is_list.any():
            series = series.copy()
            series[is_list] = series[is_list].map(
                lambda value: json.dumps([v.tolist() if hasattr(v, "tolist") else v for v in value],
                                         ensure_ascii=False))
    text = _as_text(series).str.strip()
    return text.where(text.notna() & (text != ""), default)


def _to_bool(series: pd.Series, default: Any) -> pd.Series:
    if pd.api.types.is_bool_dtype(series) and not series.isna().any():
        return series.astype(bool)

    def convert(v):
        if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
            return None
        if isinstance(v, str):
            return v.strip().lower() in _TRUE_STRINGS
        return bool(v)

    out = series.map(convert)
    if default is not None:
        return out.fillna(bool(default)).astype(bool)
    return out.astype(bool) if not out.isna().any() else out.astype("boolean")


def _to_ints(series: pd.Series, arrow: str, default: Any) -> pd.Series:
    numbers = pd.to_numeric(series, errors="coerce")
    if default is not None:
        numbers = numbers.fillna(default)
    if numbers.isna().any():
        return numbers.astype("Int64")  # keeps the nulls visible to validation
    return numbers.astype(_NUMPY_INTS.get(arrow, "int64"))


def normalize_serving_types(df: pd.DataFrame, contract: Optional[dict] = None, part: Optional[str] = None) -> pd.DataFrame:
    """A copy of ``df`` with each contract column cast to its contract type, in contract order.

    ids become strings, bools bools, ints int64/int32 (missing counts -> their default 0),
    floats float32, JSON-array columns text with ``"[]"`` for missing, ``created_at`` ISO-8601
    UTC text. Columns outside the contract are kept (after the contract ones) so that
    validation can name them.
    """
    contract = _scope_contract(contract)
    spec = table_spec(contract, part)
    out = df.copy()
    for name, col in spec.items():
        if name not in out.columns or isinstance(out[name], pd.DataFrame):
            continue  # missing, or duplicated (validation reports both)
        s = out[name]
        kind = col["type"]
        if col["format"] == "date-time":
            out[name] = _to_iso_utc(s)
        elif col["json"]:
            default = col["default"] if col["default"] is not None else "[]"
            out[name] = _to_json_array_text(s, default)
        elif kind == "string":
            out[name] = _to_strings(s, col["nullable"], col["default"], is_id=name == "id" or name.endswith("_id"))
        elif kind == "int":
            out[name] = _to_ints(s, col["arrow"], col["default"])
        elif kind == "float":
            out[name] = pd.to_numeric(s, errors="coerce").astype(
                np.float32 if col["arrow"] == "float" else np.float64)
        elif kind == "bool":
            out[name] = _to_bool(s, col["default"])
    ordered = [c for c in spec if c in out.columns]
    rest = [c for c in out.columns if c not in spec]
    return out[ordered + rest] if len(set(out.columns)) == len(out.columns) else out


def to_arrow_table(df: pd.DataFrame, contract: Optional[dict] = None, part: Optional[str] = None) -> pa.Table:
    """A normalised, validated frame as an Arrow table with exactly the contract's schema (present columns)."""
    schema = arrow_schema_for(_scope_contract(contract), part)
    fields = [schema.field(c) for c in df.columns if c in schema.names]
    table = pa.Table.from_pandas(df[[f.name for f in fields]], schema=pa.schema(fields), preserve_index=False)
    return table.replace_schema_metadata(schema.metadata)  # no pandas blob: readers are not pandas


def read_contract_parquet(path, columns: Optional[list[str]] = None) -> pd.DataFrame:
    """A parquet file as pandas with integer columns kept integer even when they hold nulls (Int64)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=columns)
    ints = {pa.int8(), pa.int16(), pa.int32(), pa.int64()}
    mapper = {t: pd.Int64Dtype() for t in ints}
    return table.to_pandas(types_mapper=lambda t: mapper.get(t) if t in ints and _has_nulls(table, t) else None)


def _has_nulls(table: pa.Table, arrow_type: pa.DataType) -> bool:
    return any(col.null_count for col in table.columns if col.type == arrow_type)


# --------------------------------------------------------------------------- checks

def _where(mask: np.ndarray, positions: Optional[np.ndarray] = None) -> str:
    idx = np.flatnonzero(mask)
    if positions is not None:
        idx = np.asarray(positions)[idx]
    shown = ", ".join(str(int(i)) for i in idx[:_EXAMPLES])
    more = f" (+{len(idx) - _EXAMPLES} more)" if len(idx) > _EXAMPLES else ""
    return f"{len(idx)} row(s), e.g. {shown}{more}"


def _kind_ok(series: pd.Series, kind: str) -> bool:
    if kind in ("string", "json_string"):
        if pd.api.types.is_string_dtype(series) and not pd.api.types.is_object_dtype(series):
            return True
        if pd.api.types.is_object_dtype(series):
            return bool(series.map(lambda v: v is None or isinstance(v, str)).all())
        return False
    if kind == "int":
        return pd.api.types.is_integer_dtype(series) and not pd.api.types.is_bool_dtype(series)
    if kind == "float":
        return pd.api.types.is_float_dtype(series)
    if kind == "bool":
        return pd.api.types.is_bool_dtype(series)
    return True


def _column_set_problems(columns: list[str], spec: dict, contract: dict, what: str) -> tuple[list[str], list[str]]:
    """Duplicate, missing-required and unknown column names; returns (problems, duplicates)."""
    problems: list[str] = []
    dupes = sorted({c for c in columns if columns.count(c) > 1})
    if dupes:
        problems.append(f"{what}: duplicate column name(s): {', '.join(dupes)}")
    missing = [c for c, s in spec.items() if s["required"] and c not in columns]
    if missing:
        problems.append(f"{what}: missing required column(s): {', '.join(missing)}")
    extra = [c for c in dict.fromkeys(columns) if c not in spec]
    if extra:
        problems.append(f"{what}: column(s) not in the contract {contract_version(contract)}: {', '.join(extra)}")
    return problems, dupes


def frame_problems(
    df: pd.DataFrame,
    contract: dict,
    part: Optional[str] = None,
    what: str = "frame",
    row_label: Optional[np.ndarray] = None,
) -> list[str]:
    """Every way ``df`` breaks the contract table: columns, types, nulls, ranges, enums, patterns, JSON."""
    spec = table_spec(contract, part)
    columns = list(map(str, df.columns))
    problems, dupes = _column_set_problems(columns, spec, contract, what)
    labels = row_label if row_label is not None else np.arange(len(df))

    for name, col in spec.items():
        if name not in columns or name in dupes:
            continue
        s = df[name]
        if not _kind_ok(s, col["type"]):
            problems.append(f"{what}: column '{name}' must be {col['type']} ({col['arrow']}), got {s.dtype}")
            continue
        null = s.isna().to_numpy()
        if null.any() and not col["nullable"]:
            problems.append(f"{what}: column '{name}' has nulls but is not nullable: {_where(null, labels)}")
        present = ~null
        if col["type"] in ("int", "float") and present.any():
            values = s.to_numpy(dtype="float64", na_value=np.nan)
            if col["type"] == "float":
                bad = present & ~np.isfinite(values)
                if bad.any():
                    problems.append(f"{what}: column '{name}' has NaN/inf values: {_where(bad, labels)}")
            lo, hi = col["minimum"], col["maximum"]
            with np.errstate(invalid="ignore"):
                if lo is not None:
                    bad = present & (values < lo)
                    if bad.any():
                        problems.append(f"{what}: column '{name}' has values below {lo}: {_where(bad, labels)}")
                if hi is not None:
                    bad = present & (values > hi)
                    if bad.any():
                        problems.append(f"{what}: column '{name}' has values above {hi}: {_where(bad, labels)}")
        if col["type"] in ("string", "json_string") and present.any():
            text = s.astype(object)
            if col["enum"] is not None:
                allowed = {v for v in col["enum"] if v is not None}
                bad = present & ~text.isin(allowed).to_numpy()
                if bad.any():
                    found = sorted(set(text[bad].astype(str)))[:_EXAMPLES]
                    problems.append(f"{what}: column '{name}' has values outside {sorted(allowed)}: {found} in {_where(bad, labels)}")
            if col["pattern"]:
                ok = text.where(present, "").astype(str).str.fullmatch(col["pattern"]).to_numpy()
                bad = present & ~ok
                if bad.any():
                    problems.append(f"{what}: column '{name}' has values not matching {col['pattern']}: {_where(bad, labels)}")
            if col["json"]:
                candidates = pd.unique(text[present & (text != "[]").to_numpy()])
                invalid = [v for v in candidates if not _is_json_array(v)]  # each distinct value parsed once
                bad = present & text.isin(invalid).to_numpy()
                if bad.any():
                    problems.append(f"{what}: column '{name}' must hold JSON arrays as text: {_where(bad, labels)}")
    return problems


def _is_json_array(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    if value == "[]":
        return True
    try:
        return isinstance(json.loads(value), list)
    except ValueError:
        return False


def scope_input_problems(df: pd.DataFrame, contract: Optional[dict] = None) -> list[str]:
    """Every contract violation of a scope-input frame (empty list = valid)."""
    contract = _scope_contract(contract)
    labels = None
    if "ls_index" in df.columns and not isinstance(df["ls_index"], pd.DataFrame) \
            and pd.api.types.is_integer_dtype(df["ls_index"]) and not df["ls_index"].isna().any():
        labels = df["ls_index"].to_numpy()
    what = "scope input"
    problems = frame_problems(df, contract, what=what, row_label=labels)
    cols = set(df.columns)
    if "id" in cols and not isinstance(df["id"], pd.DataFrame) and _kind_ok(df["id"], "string"):
        ids = df["id"]
        empty = ids.isna().to_numpy() | (ids.astype(object) == "").to_numpy()
        if empty.any():
            problems.append(f"{what}: column 'id' has null or empty ids: {_where(empty, labels)}")
        dup = ids.duplicated(keep=False).to_numpy() & ~empty
        if dup.any():
            problems.append(f"{what}: column 'id' has duplicate ids: {_where(dup, labels)}")
    if labels is not None:
        dup = df["ls_index"].duplicated(keep=False).to_numpy()
        if dup.any():
            problems.append(f"{what}: column 'ls_index' has duplicate values: {_where(dup, labels)}")
    if "deleted" in cols and not isinstance(df["deleted"], pd.DataFrame) and _kind_ok(df["deleted"], "bool"):
        deleted = df["deleted"].fillna(False).to_numpy(dtype=bool)
        if deleted.any():
            for name in PERSONAL_COLUMNS:
                if name not in cols or isinstance(df[name], pd.DataFrame):
                    continue
                blank = {"", blank_value(name, contract)}
                values = df[name].astype(object)
                carrying = deleted & ~(values.isna().to_numpy() | values.isin(blank).to_numpy())
                if carrying.any():
                    problems.append(
                        f"{what}: deleted (tombstoned) rows still carry '{name}': {_where(carrying, labels)}"
                    )
    return problems


def validate_scope_input_df(df: pd.DataFrame, contract: Optional[dict] = None) -> None:
    """Raise :class:`ContractError` (a ValueError) listing every violation of the scope-input contract."""
    contract = _scope_contract(contract)
    problems = scope_input_problems(df, contract)
    if problems:
        raise ContractError(f"scope-input contract {contract_version(contract)} violated", problems)


def arrow_schema_problems(schema: pa.Schema, contract: Optional[dict] = None, part: Optional[str] = None,
                          what: str = "parquet") -> list[str]:
    """Problems of a written file's Arrow schema: missing required columns, unexpected ones, wrong types."""
    contract = _scope_contract(contract)
    spec = table_spec(contract, part)
    names = list(schema.names)
    problems, dupes = _column_set_problems(names, spec, contract, what)
    for name in dict.fromkeys(names):
        if name not in spec or name in dupes:
            continue
        expected = ARROW_TYPES[spec[name]["arrow"]]
        actual = schema.field(name).type
        if actual != expected and actual not in ARROW_EQUIVALENTS.get(spec[name]["arrow"], ()):
            problems.append(f"{what}: column '{name}' must be Arrow {expected}, got {actual}")
    return problems


def row_validator(contract: Optional[dict] = None, part: Optional[str] = None):
    """A ``jsonschema`` validator for one row (dict) of the contract's table."""
    import jsonschema

    contract = _scope_contract(contract)
    if part is None:
        schema = copy.deepcopy(contract)
    else:
        schema = copy.deepcopy(contract["$defs"]["edge" if part == "edges" else "node_link_stats"])
    return jsonschema.Draft202012Validator(schema)


# --------------------------------------------------------------------------- links

def links_problems(
    edges: Optional[pd.DataFrame] = None,
    node_stats: Optional[pd.DataFrame] = None,
    meta: Optional[dict] = None,
    contract: Optional[dict] = None,
    n_rows: Optional[int] = None,
) -> list[str]:
    """Every violation of the links contract by the given edges, node stats and/or meta.

    With ``n_rows`` (the dataset's row count) ls_index values must also lie in 0..n_rows-1.
    """
    contract = _links_contract(contract)
    problems: list[str] = []
    if edges is not None:
        problems += frame_problems(edges, contract, "edges", what="edges")
        if not problems and len(edges):
            internal = edges["internal_target"].to_numpy(dtype=bool)
            has_dst = edges["dst_ls_index"].notna().to_numpy()
            bad = internal != has_dst
            if bad.any():
                problems.append(f"edges: internal_target must be true exactly when dst_ls_index is set: {_where(bad)}")
            dup = edges.duplicated(["edge_type", "src_tweet_id", "dst_tweet_id"], keep=False).to_numpy()
            if dup.any():
                problems.append(f"edges: duplicate (edge_type, src_tweet_id, dst_tweet_id): {_where(dup)}")
            if n_rows is not None:
                for col in ("src_ls_index", "dst_ls_index"):
                    v = edges[col].to_numpy(dtype="float64", na_value=np.nan)
                    bad = ~np.isnan(v) & (v >= n_rows)
                    if bad.any():
                        problems.append(f"edges: {col} beyond the dataset's {n_rows} rows: {_where(bad)}")
    if node_stats is not None:
        node_problems = frame_problems(node_stats, contract, "node_stats", what="node_link_stats")
        problems += node_problems
        if not node_problems and len(node_stats):
            dup = node_stats["tweet_id"].duplicated(keep=False).to_numpy()
            if dup.any():
                problems.append(f"node_link_stats: duplicate tweet_id: {_where(dup)}")
            if n_rows is not None:
                bad = node_stats["ls_index"].to_numpy() >= n_rows
                if bad.any():
                    problems.append(f"node_link_stats: ls_index beyond the dataset's {n_rows} rows: {_where(bad)}")
    if meta is not None:
        import jsonschema

        schema = {k: v for k, v in contract.items() if k not in ("edges", "node_stats")}
        validator = jsonschema.Draft202012Validator(schema)
        for err in sorted(validator.iter_errors(meta), key=lambda e: list(e.path)):
            where = "/".join(map(str, err.path)) or "(top)"
            problems.append(f"links meta.json: {where}: {err.message}")
        if edges is not None and isinstance(meta.get("edges"), int) and meta["edges"] != len(edges):
            problems.append(f"links meta.json: says {meta['edges']} edges but edges.parquet has {len(edges)}")
        if node_stats is not None and isinstance(meta.get("nodes"), int) and meta["nodes"] != len(node_stats):
            problems.append(f"links meta.json: says {meta['nodes']} nodes but node_link_stats.parquet has {len(node_stats)}")
    return problems


def validate_links_df(
    edges: Optional[pd.DataFrame] = None,
    node_stats: Optional[pd.DataFrame] = None,
    meta: Optional[dict] = None,
    contract: Optional[dict] = None,
    n_rows: Optional[int] = None,
) -> None:
    """Raise :class:`ContractError` listing every violation of the links contract."""
    contract = _links_contract(contract)
    problems = links_problems(edges, node_stats, meta, contract, n_rows)
    if problems:
        raise ContractError(f"links contract {contract_version(contract)} violated", problems)


def blank_personal(df: pd.DataFrame, deleted: np.ndarray) -> pd.DataFrame:
    """``df`` (SERVING_COLUMNS, row i = mask i) with personal columns blanked where ``deleted``."""
    out = df.copy()
    out["deleted"] = deleted.astype(bool)
    if deleted.any():
        for name in PERSONAL_COLUMNS:
            if name in out.columns:
                out.loc[deleted, name] = blank_value(name)
    return out
