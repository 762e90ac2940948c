"""The labels stage end to end on the sample archive (offline namer), plus curator edits and CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline.stages.labels import COLUMNS, load_labels


@pytest.fixture(scope="module")
def labels(labelled_dataset):
    ds = labelled_dataset
    toponymy_id = ds.latest("toponymy")
    return ds, toponymy_id, load_labels(ds, toponymy_id), ds.sidecar(toponymy_id)


def test_parquet_has_exactly_the_spec_columns(labels):
    ds, toponymy_id, table, _ = labels
    schema = pq.read_schema(ds.artifact_path(toponymy_id, ".parquet"))
    assert schema.names == COLUMNS
    types = {f.name: str(f.type) for f in schema}
    assert types["cluster"] == "string" and types["layer"] == "int64" and types["count"] == "int64"
    assert types["hull"] == "list<element: list<element: double>>"
    assert types["children"] == "list<element: string>" and types["indices"] == "list<element: int64>"
    assert types["topic_specificity"] == "double"
    assert table["cluster"].str.fullmatch(r"\d+_\d+").all()
    assert (table["cluster"].str.split("_").str[0].astype(int) == table["layer"]).all()


def test_layer_zero_is_the_cluster_artifact(labels):
    from pipeline.stages.cluster.stage import load_clusters

    ds, _, table, side = labels
    assigned = load_clusters(ds, side["cluster_id"])["cluster"].to_numpy()
    layer0 = table[table["layer"] == 0]
    assert sorted(layer0["cluster"]) == sorted(f"0_{k}" for k in np.unique(assigned))
    for row in layer0.itertuples():
        k = int(row.cluster.split("_")[1])
        assert np.array_equal(np.asarray(row.indices), np.flatnonzero(assigned == k))
        assert row.count == len(row.indices)


def test_every_layer_partitions_all_points_and_nests(labels):
    ds, _, table, side = labels
    n = len(ds.read_input(["id"]))
    by_id = table.set_index("cluster")
    assert side["num_layers"] == table["layer"].nunique()
    assert side["layer_sizes"] == table.groupby("layer").size().tolist()
    for layer, rows in table.groupby("layer"):
        members = np.concatenate([np.asarray(i) for i in rows["indices"]])
        assert len(members) == n and len(np.unique(members)) == n  # each point exactly once
        assert rows["count"].sum() == n
    top = table["layer"].max()
    for row in table.itertuples():
        if row.layer == top:
            assert row.parent_cluster is None
        else:
            parent = by_id.loc[row.parent_cluster]
            assert parent["layer"] == row.layer + 1 and row.cluster in list(parent["children"])
            assert set(row.indices) <= set(parent["indices"])
        if row.layer == 0:
            assert len(row.children) == 0
        else:
            kids = by_id.loc[list(row.children)]
            assert (kids["parent_cluster"] == row.cluster).all()
            assert kids["count"].sum() == row.count


def test_labels_descriptions_geometry_and_specificity(labels):
    _, _, table, _ = labels
    assert table["label"].str.strip().str.len().gt(0).all()
    assert table["description"].notna().all()
    assert table["topic_specificity"].between(0, 1).all()
    for row in table.itertuples():
        hull = np.vstack(row.hull)
        assert hull.ndim == 2 and hull.shape[1] == 2 and len(hull) >= 1
        assert np.abs(hull).max() <= 1.0 + 1e-6
        assert -1 <= row.centroid_x <= 1 and -1 <= row.centroid_y <= 1


def test_sidecar_records_lineage_audit_and_usage(labels):
    ds, toponymy_id, table, side = labels
    cluster_side = ds.sidecar(side["cluster_id"])
    assert side["embedding_id"] == cluster_side["embedding_id"] and side["umap_id"] == cluster_side["umap_id"]
    assert side["inputs"]["cluster_id"] == side["cluster_id"] and side["edited_from"] is None
    assert side["provider"] == "offline" and side["model"]
    assert side["params"]["provider"] == "offline"
    assert side["statuses"] == {cid: "auto" for cid in table["cluster"]}
    assert side["usage"]["by_kind"]["name"]["calls"] >= side["layer_sizes"][0]  # layer 0 is always asked
    assert 1 <= len(side["rounds"]) <= side["params"]["audit_rounds"]
    first = side["rounds"][0]
    assert set(first["scores"]) <= set(table["cluster"]) and first["judged"] == len(first["scores"])
    assert all(0 <= s <= 1 for s in first["scores"].values())
    assert set(first["below_threshold"]) == {c for c, s in first["scores"].items() if s < side["audit"]["threshold"]}
    for change in first["changes"]:
        assert change["cluster"] in first["below_threshold"]
        if change["applied"]:
            assert change["new_score"] > change["old_score"]
    assert side["timings"]["total_s"] > 0 and side["rows"] == len(table)


def test_edits_make_new_artifacts_and_diff(labelled_dataset, tmp_path):
    from pipeline.stages.labels.edits import diff_labels, edit_labels, set_status, statuses_of
    from support import copy_dataset

    ds = copy_dataset(labelled_dataset, tmp_path)
    base = ds.latest("toponymy")
    base_bytes = ds.artifact_path(base, ".parquet").read_bytes()
    first, second = load_labels(ds, base)["cluster"].iloc[:2]
    edited = edit_labels(ds, base, {first: {"label": "Curated name", "description": "What it is."}}, note="fix")
    approved = set_status(ds, edited, [second], "approved")
    assert ds.artifact_path(base, ".parquet").read_bytes() == base_bytes  # nothing overwritten
    table = load_labels(ds, approved)
    assert table.set_index("cluster").loc[first, "label"] == "Curated name"
    assert statuses_of(ds, approved)[first] == "edited" and statuses_of(ds, approved)[second] == "approved"
    side = ds.sidecar(approved)
    assert side["edited_from"] == edited and side["inputs"]["toponymy_id"] == edited
    assert side["cluster_id"] == ds.sidecar(base)["cluster_id"] and side["num_layers"] == ds.sidecar(base)["num_layers"]
    assert ds.sidecar(edited)["edits"][0] == {"cluster": first, "field": "label",
                                              "old": load_labels(ds, base).set_index("cluster").loc[first, "label"],
                                              "new": "Curated name"}
    assert ds.status("toponymy") == {"status": "done", "id": approved, "reason": ""}
    diff = diff_labels(ds, base, approved)
    assert diff["cluster"].tolist() == [first, second]
    assert diff.set_index("cluster").loc[second, "status_b"] == "approved"
    assert diff_labels(ds, approved, approved).empty
    with pytest.raises(ValueError, match="unknown cluster"):
        edit_labels(ds, approved, {"9_99": {"label": "x"}})
    with pytest.raises(ValueError, match="status"):
        set_status(ds, approved, [first], "great")
    with pytest.raises(ValueError, match="nothing changed"):
        set_status(ds, approved, [second], "approved")
    assert ds.latest("toponymy") == approved  # failed edits wrote nothing


def test_relabel_asks_the_namer_again(labelled_dataset, tmp_path):
    from pipeline.stages.labels.config import LabelConfig
    from pipeline.stages.labels.edits import relabel, statuses_of
    from support import copy_dataset

    ds = copy_dataset(labelled_dataset, tmp_path)
    base = ds.latest("toponymy")
    table = load_labels(ds, base)
    target = table[table["layer"] == 0].sort_values("count").iloc[-1]["cluster"]
    new_id = relabel(ds, base, [target], LabelConfig(provider="offline", keyphrase_max_features=3000))
    side = ds.sidecar(new_id)
    assert side["edited_from"] == base and side["relabel"]["usage"]["calls"] >= 1
    fields = {e["field"] for e in side["edits"] if e["cluster"] == target}
    assert {"label", "description", "topic_specificity"} <= fields
    assert statuses_of(ds, new_id)[target] == "auto"
    new_row = load_labels(ds, new_id).set_index("cluster").loc[target]
    assert new_row["label"] and new_row["count"] == table.set_index("cluster").loc[target, "count"]


def test_cli_label_edit_and_diff(labelled_dataset, tmp_path, capsys):
    from pipeline.cli.main import main
    from support import copy_dataset

    ds = copy_dataset(labelled_dataset, tmp_path)
    base = ds.latest("toponymy")
    cluster = load_labels(ds, base)["cluster"].iloc[0]
    args = ["--data-dir", str(ds.path.parent), "--dataset", ds.name]
    assert main(["label-edit", *args, "--labels", base, "--cluster", cluster, "--label", "From the CLI",
                 "--status", "approved"]) == 0
    new_id = ds.latest("toponymy")
    assert new_id != base and load_labels(ds, new_id).set_index("cluster").loc[cluster, "label"] == "From the CLI"
    capsys.readouterr()
    assert main(["label-diff", *args, base, new_id]) == 0
    out = capsys.readouterr().out
    assert cluster in out and "From the CLI" in out and "approved" in out
    assert main(["label-edit", *args, "--cluster", "7_77", "--label", "x"]) == 1
    assert "unknown cluster" in capsys.readouterr().err
    assert ds.latest("toponymy") == new_id


def test_missing_or_bad_inputs_give_clear_errors(mapped_dataset, tmp_path):
    from pipeline.core.workspace import WorkspaceError
    from pipeline.stages.labels import LabelConfig, run_labels
    from support import copy_dataset

    with pytest.raises(WorkspaceError, match="cluster-999"):
        run_labels(mapped_dataset, LabelConfig(provider="offline"), cluster_id="cluster-999")
    ds = copy_dataset(mapped_dataset, tmp_path)
    cluster_id = ds.latest("cluster")
    path = ds.artifact_path(cluster_id, ".parquet")
    frame = pd.read_parquet(path)
    frame.loc[0, "cluster"] = -1
    frame.to_parquet(path)
    with pytest.raises(ValueError, match="noise"):
        run_labels(ds, LabelConfig(provider="offline"))
    assert ds.list_ids("toponymy") == mapped_dataset.list_ids("toponymy")


def test_every_sample_label_is_readable(labels):
    """Issue 19's rules on every label of the sample: no bare handle, number, URL or date, nor a name
    split into words; no term of only weak words; parents named from their children; siblings named
    apart; written in the cluster's dominant language; the normalisation recorded."""
    from pipeline.core import textnorm
    from pipeline.stages.labels.keyterms import (
        NameGuard,
        archive_handles,
        content_word_count,
        content_words,
        label_problem,
        language_of,
    )
    from pipeline.stages.labels.stage import dataset_handles

    ds, toponymy_id, table, side = labels
    served = ds.read_input(["text"])["text"].fillna("").tolist()
    handles = archive_handles(served)
    assert len(handles) > 300  # the sample is mostly replies: the rule has something to catch
    problems = {row.label: label_problem(row.label, handles) for row in table.itertuples()}
    assert {label: why for label, why in problems.items() if why} == {}
    for term in (row.label for row in table.itertuples()):
        assert not any(w.lower().lstrip("@") in handles for w in term.replace(",", " ").split()), term
    # no handle in disguise: no run of a label's words spells an account or site name ("Sama hoole"
    # of @SamaHoole, "Milahu" of @milahu104 and milahu.github.io), and the rule has teeth here
    guard = NameGuard(dataset_handles(ds))
    assert guard.spells_name("Sama hoole") and guard.spells_name("Milahu") and not guard.spells_name("hate speech")
    disguised = [row.label for row in table.itertuples()
                 if any(guard.spells_name(term) for term in row.label.split(","))]
    assert disguised == []
    # every term names something: not only stop words, verbs or expletives ("Scheisse, sagt")
    weak = [row.label for row in table.itertuples() if any(content_word_count(t) == 0 for t in row.label.split(","))]
    assert weak == []
    # a parent of several clusters is named from its children's names (the top layer reads as topics)
    by_id = table.set_index("cluster")
    parents = table[table["children"].map(len) > 1]
    assert len(parents)
    for row in parents.itertuples():
        kids = " , ".join(by_id.loc[list(row.children), "label"]).lower()
        assert all(t.strip().lower() in kids for t in row.label.split(",")), (row.label, kids)
    for parent, group in table.groupby(table["parent_cluster"].fillna("top")):
        names = group["label"].str.lower().tolist()
        assert len(names) == len(set(names)), f"siblings under {parent} share a name: {names}"
    assert side["text_normalisation"]["name"] == textnorm.NAME
    assert side["text_normalisation"]["version"] == textnorm.VERSION
    # each label word comes from the cluster's tweets in its dominant language
    meaning = [textnorm.normalise(t) for t in served]
    mixed = 0
    for row in table[table["layer"] == 0].itertuples():
        texts = [meaning[i] for i in row.indices]
        langs = [language_of(t) for t in texts]
        major = max({"de", "en"}, key=langs.count)
        # "open-source" in a tweet is one word, in a label "open source" two: both spellings count
        native = set().union(*(content_words(t) + content_words(t.replace("-", " "))
                               for t, lang in zip(texts, langs) if lang == major))
        words = content_words(row.label)
        assert words, row.label
        if not all(w in native for w in words):
            mixed += 1
    assert mixed <= 1, f"{mixed} layer-0 labels use words not found in the cluster's dominant-language tweets"
