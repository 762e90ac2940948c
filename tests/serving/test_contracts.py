"""The serving contracts: the JSON documents themselves, normalisation and the frame checks."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pipeline.serving import (
    contracts as C,  # The downstream contract: what the TypeScript API / React front end read (MaskyS/tweetscope
)

# contracts/scope_input.schema.json, version "scope-input-v1"), copied here by hand so that a
# change on our side that would break them fails this test. Column -> (type word, nullable).
UPSTREAM_VERSION = "scope-input-v1"
UPSTREAM_REQUIRED = {
    "id": ("string", False), "ls_index": ("int", False), "x": ("float", False), "y": ("float", False),
    "cluster": ("string", False), "label": ("string", False), "deleted": ("bool", False),
    "text": ("string", False),
}
UPSTREAM_OPTIONAL = {
    "raw_cluster": ("string", True), "tile_index_64": ("int", True), "tile_index_128": ("int", True),
    "created_at": ("string", True), "username": ("string", True), "display_name": ("string", True),
    "tweet_type": ("string", True), "favorites": ("int", True), "retweets": ("int", True),
    "replies": ("int", True), "is_reply": ("bool", True), "is_retweet": ("bool", True),
    "is_like": ("bool", True), "urls_json": ("json_string", True), "media_urls_json": ("json_string", True),
    "archive_source": ("string", True),
}
UPSTREAM_DEFAULTS = {"urls_json": "[]", "media_urls_json": "[]"}
#: Arrow types the TS API's readers accept for each upstream type word
UPSTREAM_ARROW = {"string": {pa.string(), pa.large_string()}, "json_string": {pa.string(), pa.large_string()},
                  "int": {pa.int32(), pa.int64()}, "float": {pa.float32(), pa.float64()}, "bool": {pa.bool_()}}


def good_frame(n: int = 6) -> pd.DataFrame:
    return pd.DataFrame({
        "id": [str(1_700_000_000_000_000_000 + i) for i in range(n)],
        "ls_index": np.arange(n),
        "x": np.linspace(-1, 1, n), "y": np.linspace(1, -1, n),
        "cluster": [f"0_{i % 2}" for i in range(n)], "raw_cluster": (np.arange(n) % 3) - 1,
        "label": ["a", "b"] * (n // 2),
        "deleted": [False] * n,
        "tile_index_64": 0, "tile_index_128": 0,
        "text": [f"text {i}" for i in range(n)],
        "created_at": pd.date_range("2021-01-01", periods=n, freq="D", tz="UTC"),
        "username": "me", "display_name": "Me", "tweet_type": "tweet",
        "favorites": [1, None, 3, 4, 5, 6][:n], "retweets": 0, "replies": 0,
        "is_reply": ["true", "false", None, 1, 0, True][:n], "is_retweet": False, "is_like": False,
        "urls_json": [None, "[]", '["https://a.b"]', ["https://c.d"], "[]", "[]"][:n],
        "media_urls_json": None,
        "archive_source": "x_archive",
    })


def test_contract_documents_are_valid_json_schemas_and_agree():
    for name in ("scope_input", "links"):
        doc = C.load_contract(name)
        jsonschema.Draft202012Validator.check_schema(doc)
        assert doc["version"].endswith("-v1")
    scope = C.load_contract("scope_input")
    assert len(C.SERVING_COLUMNS) == 24 and len(set(C.SERVING_COLUMNS)) == 24
    assert set(scope["properties"]) == set(C.SERVING_COLUMNS)
    assert set(scope["required_columns"]) == set(scope["required"]) == {
        "id", "ls_index", "x", "y", "cluster", "label", "deleted", "text"}
    assert set(scope["required_columns"]) | set(scope["optional_columns"]) == set(C.SERVING_COLUMNS)
    # the TS API reads required/optional columns with a type each
    for spec in {**scope["required_columns"], **scope["optional_columns"]}.values():
        assert spec["type"] in {"string", "int", "float", "bool", "json_string"}
    links = C.load_contract("links")
    assert len(C.EDGE_COLUMNS) == 7 and len(C.NODE_STATS_COLUMNS) == 10
    assert set(links["$defs"]["edge"]["properties"]) == set(C.EDGE_COLUMNS)
    assert set(links["$defs"]["node_link_stats"]["properties"]) == set(C.NODE_STATS_COLUMNS)


def test_our_contract_matches_the_downstream_ts_contract():
    doc = C.load_contract("scope_input")
    assert doc["version"] == UPSTREAM_VERSION == C.SERVING_CONTRACT_VERSION
    # same column names in the same sections, same type words
    assert {c: s["type"] for c, s in doc["required_columns"].items()} == {c: t for c, (t, _) in UPSTREAM_REQUIRED.items()}
    assert {c: s["type"] for c, s in doc["optional_columns"].items()} == {c: t for c, (t, _) in UPSTREAM_OPTIONAL.items()}
    for column, default in UPSTREAM_DEFAULTS.items():
        assert doc["optional_columns"][column]["default"] == default
    # we may be stricter (never-null where the reader tolerates null), never looser
    for column, (_, nullable) in {**UPSTREAM_REQUIRED, **UPSTREAM_OPTIONAL}.items():
        ours = {**doc["required_columns"], **doc["optional_columns"]}[column]["nullable"]
        assert nullable or not ours, column
    # the exact Arrow types we write are ones the TS API reads as that type word
    schema = C.arrow_schema_for()
    for column, (word, _) in {**UPSTREAM_REQUIRED, **UPSTREAM_OPTIONAL}.items():
        assert schema.field(column).type in UPSTREAM_ARROW[word], column


def test_cluster_columns_are_strings():
    schema = C.arrow_schema_for()
    assert schema.field("cluster").type == pa.string() and schema.field("raw_cluster").type == pa.string()
    out = C.normalize_serving_types(good_frame())
    assert out["cluster"].tolist() == ["0_0", "0_1"] * 3
    assert out["raw_cluster"].tolist() == ["-1", "0", "1", "-1", "0", "1"]  # HDBSCAN labels as text
    numeric = out.assign(cluster=np.arange(len(out)) % 2)
    assert any("'cluster' must be string" in p for p in C.scope_input_problems(numeric))
    odd = out.assign(cluster=["0_0", "zero", "0_1", "unknown", "3", "1_2"])
    problems = [p for p in C.scope_input_problems(odd) if "'cluster'" in p]
    assert len(problems) == 1 and "1 row(s), e.g. 1" in problems[0]  # only "zero"


def test_arrow_schema_for_matches_contract_types():
    schema = C.arrow_schema_for()
    assert schema.names == C.SERVING_COLUMNS
    assert schema.field("id").type == pa.string()
    assert schema.field("ls_index").type == pa.int64()
    assert schema.field("x").type == pa.float32()
    assert schema.field("deleted").type == pa.bool_()
    assert schema.field("favorites").type == pa.int64()
    assert not schema.field("text").nullable and schema.field("username").nullable
    edges = C.arrow_schema_for(C.LINKS_CONTRACT, "edges")
    assert edges.field("src_tweet_id").type == pa.string() and edges.field("dst_ls_index").nullable


def test_normalize_then_validate_passes_and_rows_match_json_schema():
    out = C.normalize_serving_types(good_frame())
    C.validate_scope_input_df(out)
    assert list(out.columns) == C.SERVING_COLUMNS
    assert out["x"].dtype == np.float32 and out["ls_index"].dtype == np.int64
    assert out["favorites"].tolist() == [1, 0, 3, 4, 5, 6]
    assert out["is_reply"].tolist() == [True, False, False, True, False, True]
    assert out["urls_json"].tolist()[:4] == ["[]", "[]", '["https://a.b"]', '["https://c.d"]']
    assert set(out["media_urls_json"]) == {"[]"}
    assert out["created_at"].iloc[0] == "2021-01-01T00:00:00Z"
    validator = C.row_validator()
    for row in C.to_arrow_table(out).to_pylist():
        assert not list(validator.iter_errors(row)), row


def test_ids_become_exact_decimal_strings():
    frame = good_frame()
    big = 1_700_000_000_000_000_123
    frame["id"] = [big + i for i in range(len(frame))]  # int64, beyond 2^53
    out = C.normalize_serving_types(frame)
    assert out["id"].iloc[0] == str(big)
    assert C.normalize_serving_types(pd.DataFrame({"id": ["12.0", "13"]}))["id"].tolist() == ["12", "13"]


def test_validation_lists_every_problem():
    bad = C.normalize_serving_types(good_frame())
    bad["id"] = bad["id"].astype("int64")             # id as int
    bad = bad.drop(columns=["label"])                  # missing required
    bad["x"] = bad["x"].astype(np.float32) * 3         # out of range
    bad.loc[2, "ls_index"] = 1                         # duplicate ls_index
    bad["tweet_type"] = "boast"                        # outside the enum
    bad["urls_json"] = "not json"
    bad["surprise"] = 1                                # foreign column
    bad.loc[0, "deleted"] = True                       # tombstone with text
    with pytest.raises(ValueError) as err:
        C.validate_scope_input_df(bad)
    problems = err.value.problems
    text = "\n".join(problems)
    for needle in ("missing required column(s): label", "'id' must be string", "'x' has values above 1",
                   "'ls_index' has duplicate", "'tweet_type' has values outside", "'urls_json' must hold JSON",
                   "not in the contract", "deleted (tombstoned) rows still carry 'text'"):
        assert needle in text, needle
    assert len(problems) >= 8


def test_duplicate_columns_and_nulls_are_reported():
    frame = C.normalize_serving_types(good_frame())
    frame.loc[1, "text"] = None
    dup = pd.concat([frame, frame[["text"]]], axis=1)
    problems = C.scope_input_problems(dup)
    assert any("duplicate column name(s): text" in p for p in problems)
    problems = C.scope_input_problems(frame)
    assert any("'text' has nulls" in p for p in problems)
    frame["id"] = frame["id"].astype(object)
    frame.loc[3, "id"] = ""
    assert any("null or empty ids" in p for p in C.scope_input_problems(frame))


def test_arrow_schema_problems_catch_wrong_file_types():
    good = C.arrow_schema_for()
    assert C.arrow_schema_problems(good) == []
    fields = [pa.field("id", pa.int64()) if f.name == "id" else f for f in good if f.name != "text"]
    problems = C.arrow_schema_problems(pa.schema(fields))
    assert any("'id' must be Arrow string, got int64" in p for p in problems)
    assert any("missing required column(s): text" in p for p in problems)
    large = pa.schema([pa.field(f.name, pa.large_string()) if f.type == pa.string() else f for f in good])
    assert C.arrow_schema_problems(large) == []


def test_links_validation():
    edges = pd.DataFrame({
        "edge_type": ["reply", "quote", "boost"], "src_tweet_id": ["1", "2", "3"], "dst_tweet_id": ["9", "1", "2"],
        "src_ls_index": [0, 1, 2], "dst_ls_index": pd.array([None, 0, 5], dtype="Int64"),
        "internal_target": [False, True, True], "source_url": [None, "https://x.com/a/status/1", None],
    })
    problems = C.links_problems(edges=edges)
    assert any("'edge_type' has values outside" in p for p in problems)
    edges = edges.iloc[:2]
    C.validate_links_df(edges=edges, n_rows=3)
    with pytest.raises(ValueError, match="beyond the dataset"):
        C.validate_links_df(edges=edges, n_rows=1)
    wrong = edges.assign(src_tweet_id=[1, 2])
    with pytest.raises(ValueError, match="'src_tweet_id' must be string"):
        C.validate_links_df(edges=wrong)
    meta = {"schema_version": "links-v1", "dataset": "d", "created_at": "now", "nodes": 0, "edges": 2,
            "edge_type_counts": {"reply": 1, "quote": 1}, "internal_edges": 1}
    C.validate_links_df(edges=edges, meta=meta)
    with pytest.raises(ValueError, match="schema_version"):
        C.validate_links_df(meta={**meta, "schema_version": "links-v0"})


def test_contract_files_are_plain_json_for_the_ts_api():
    doc = json.loads((C.CONTRACTS_DIR / "scope_input.schema.json").read_text())
    assert doc["version"] == C.SERVING_CONTRACT_VERSION
    assert list(doc["required_columns"]) == C.REQUIRED_COLUMNS
