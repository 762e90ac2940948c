"""``tweetscope update``: a dataset built from an older download of the sample, updated with the full archive."""

from __future__ import annotations

import hashlib
import json
import zipfile

import numpy as np
import pyarrow as pa
import pytest

from kits.archive_split import older_archive
from pipeline.core.errors import IngestError
from pipeline.core.tombstones import deleted_tweet_ids
from pipeline.core.workspace import Workspace
from pipeline.update.merge import merge_inputs
from pipeline.update.placement import nearest_old, place, vote
from support import copy_dataset


# The datasets are session fixtures (tests/conftest.py): the studio's map tests use them too.
@pytest.fixture(scope="module")
def older(older_sample):
    """(older archive, tweets in it, tweets in the full sample)."""
    return older_sample


@pytest.fixture(scope="module")
def curated(curated_older):
    """The older download through every stage, then curated: one tweet deleted, one label edited."""
    return curated_older


@pytest.fixture(scope="module")
def updated(updated_sample):
    """(dataset after the update, the update record, rows before) on a copy of ``curated``."""
    return updated_sample


def _digest(folder) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_new_tweets_are_appended_and_old_rows_keep_their_ls_index(updated, older):
    ds, record, before = updated
    ids = ds.read_input(["id"])["id"].tolist()
    assert len(ids) == older[2] and len(before) == older[1]
    assert ids[:len(before)] == before
    assert record["new"] == older[2] - older[1] and record["new_rows"] == [older[1], older[2]]
    assert record["missing"] == 0 and ds.meta()["updates"][-1]["new"] == record["new"]
    assert ds.meta()["length"] == len(ids)


def test_only_new_tweets_are_embedded(updated):
    ds, record, before = updated
    side = ds.sidecar(record["artifacts"]["embedding"])
    assert (side["n_reused"], side["n_embedded"]) == (len(before), record["new"])
    assert record["texts_to_embed"] == record["new"] and record["tokens_estimate"] > 0
    from pipeline.stages.embed.reuse import estimate_tokens
    from pipeline.stages.embed.stage import EmbedConfig, load_embeddings, texts_to_embed

    # the estimate counts exactly the strings the embed stage sent for the new rows
    config = EmbedConfig.from_dict({k: v for k, v in (side.get("params") or {}).items() if k in EmbedConfig.param})
    assert record["tokens_estimate"] == estimate_tokens(texts_to_embed(ds, config)[len(before):])

    old = load_embeddings(ds, side["reused_from"])
    assert np.array_equal(load_embeddings(ds, side["id"])[:len(before)], old)


def test_new_points_are_placed_and_assigned_to_existing_clusters(updated):
    from pipeline.stages.cluster.stage import load_clusters
    from pipeline.stages.umap.stage import load_umap

    ds, record, before = updated
    n_old = len(before)
    xy = load_umap(ds, record["artifacts"]["umap"])[["x", "y"]].to_numpy()
    base_xy = load_umap(ds, record["base"]["umap_id"])[["x", "y"]].to_numpy()
    assert np.array_equal(xy[:n_old], base_xy) and np.isfinite(xy).all()
    assert (np.abs(xy[n_old:]) <= 1).all()
    clusters = load_clusters(ds, record["artifacts"]["cluster"])["cluster"].to_numpy()
    base = load_clusters(ds, record["base"]["cluster_id"])["cluster"].to_numpy()
    assert np.array_equal(clusters[:n_old], base)
    assert set(clusters[n_old:]) <= set(base) and len(clusters) == len(xy)


def test_deletions_and_label_edits_are_kept_and_grown_clusters_flagged(updated, curated):
    from pipeline.stages.labels.table import load_labels
    from pipeline.stages.scope import load_scope_input

    ds, record, before = updated
    assert deleted_tweet_ids(ds) == {before[5]}
    served = load_scope_input(ds, record["artifacts"]["scope"], ["id", "deleted", "text"])
    assert served["deleted"].sum() == 1 and served.loc[5, "deleted"] and not served.loc[5, "text"]
    labels = load_labels(ds, record["artifacts"]["labels"])
    assert labels.set_index("cluster").at["0_0", "label"] == "A curated label"
    layer0 = labels[labels["layer"] == 0]
    assert sorted(np.concatenate(layer0["indices"].tolist()).tolist()) == list(range(len(served)))
    side = ds.sidecar(record["artifacts"]["labels"])
    assert record["flagged_labels"] and set(side["needs_review"]) == set(record["flagged_labels"])
    assert all(side["statuses"][c] == "flagged" for c in side["needs_review"])
    assert side["needs_review"].get("0_0", {}).get("previous_status", "edited") == "edited"
    from pipeline.serving.validate import validate_scope

    assert validate_scope(ds, record["artifacts"]["scope"]) == []


def test_missing_tweets_are_reported_and_removed_only_on_request(curated, sample_zip, tmp_path):
    from pipeline.update.run import UpdateConfig, update_dataset

    fewer, kept, _ = older_archive(sample_zip, tmp_path / "fewer.zip", keep=0.7)
    ds = copy_dataset(curated, tmp_path / "a")
    n_old = len(ds.read_input(["id"]))
    record = update_dataset(Workspace(ds.path.parent), ds.name, fewer)
    assert record["missing"] == n_old - kept and record["new"] == 0
    assert record["missing_rows"] == list(range(kept, n_old))
    assert len(ds.read_input(["id"])) == n_old and len(deleted_tweet_ids(ds)) == 1

    ds = copy_dataset(curated, tmp_path / "b")
    update_dataset(Workspace(ds.path.parent), ds.name, fewer, UpdateConfig(remove_missing=True))
    assert len(deleted_tweet_ids(ds)) == 1 + n_old - kept


def test_a_bad_archive_changes_nothing(curated, tmp_path):
    from pipeline.update.run import update_dataset

    ds = copy_dataset(curated, tmp_path)
    before = _digest(ds.path)
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("data/tweets.js", "window.YTD.tweets.part0 = [{not json")
    with pytest.raises(IngestError):
        update_dataset(Workspace(ds.path.parent), ds.name, bad)
    assert _digest(ds.path) == before
    assert [p.name for p in ds.path.parent.iterdir()] == [ds.name]  # no temp folder left behind


def test_merge_updates_changed_rows_in_place():
    old = pa.table({"id": ["1", "2", "3"], "text": ["a", "b", "c"]})
    new = pa.table({"id": ["2", "4", "1"], "text": ["b edited", "d", "a"]})
    merged = merge_inputs(old, new)
    assert merged.table["id"].to_pylist() == ["1", "2", "3", "4"]
    assert merged.table["text"].to_pylist() == ["a", "b edited", "c", "d"]
    assert merged.changed.tolist() == [1] and merged.missing.tolist() == [2] and merged.appended == 1


def test_placement_follows_the_nearest_neighbours():
    rng = np.random.default_rng(0)
    old = rng.normal(size=(200, 8)).astype(np.float32)
    old /= np.linalg.norm(old, axis=1, keepdims=True)
    new = old[:20] + 0.01 * rng.normal(size=(20, 8)).astype(np.float32)
    idx, sim = nearest_old(old, new, k=5)
    assert (idx[:, 0] == np.arange(20)).all() and (np.diff(sim, axis=1) <= 1e-6).all()
    coords = rng.uniform(-1, 1, size=(200, 2))
    assert np.abs(place(coords, idx, sim) - coords[:20]).max() < 0.5
    labels = np.arange(200) % 4
    assert (vote(labels, idx) == labels[:20]).all()


def test_cell_search_finds_the_exact_neighbours_of_clustered_vectors():
    rng = np.random.default_rng(1)
    topics = rng.normal(size=(40, 32))
    vectors = topics[rng.integers(0, 40, 6_000)] + 0.6 * rng.normal(size=(6_000, 32))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    old, new = vectors[:5_500], vectors[5_500:]
    _, exact_sim = nearest_old(old, new, k=10)
    idx, sim = nearest_old(old, new, k=10, exact_cells=0)
    assert np.array_equal(idx, nearest_old(old, new, k=10, exact_cells=0)[0])  # seeded
    assert (np.diff(sim, axis=1) <= 1e-6).all()
    assert np.allclose(sim, (new[:, None, :] * old[idx]).sum(axis=2), atol=1e-5)  # sims belong to the rows
    assert (sim >= exact_sim[:, -1:] - 1e-6).mean() > 0.97
    narrow_idx, narrow_sim = nearest_old(old, new, k=10, exact_cells=0, n_probe=2)
    narrow = (narrow_sim >= exact_sim[:, -1:] - 1e-6).mean()
    assert 0.5 < narrow < 0.99  # two cells of ~150 miss some: the cells really were searched
    # a probe of a single cell can see fewer than k rows: those rows fall back to the exact search
    few_idx, few_sim = nearest_old(old[:300], new[:50], k=10, exact_cells=0, n_probe=1)
    assert np.isfinite(few_sim).all() and (few_idx < 300).all()


def test_update_record_is_json(updated):
    ds, record, _ = updated
    assert json.loads(json.dumps(record))["artifacts"] == ds.meta()["updates"][-1]["artifacts"]


def test_the_studio_runs_an_update_and_shows_what_it_brought(curated, sample_zip, tmp_path):
    from studio.jobs import JobRunner
    from studio.state import StudioState
    from studio.views.update import UpdateModel

    ds = copy_dataset(curated, tmp_path)
    state = StudioState(ds.path.parent, runner=JobRunner())
    state.dataset = ds.name
    model = UpdateModel(state, path=str(tmp_path / "nowhere.zip"))
    assert model.submit() is None and "no such file" in model.error
    model.path = str(sample_zip)
    job = model.submit()
    state.runner.wait(job, timeout=300)
    model.follow_job()
    record = ds.meta()["updates"][-1]
    assert f"{record['new']:,} new tweets" in model.info and "flagged for review" in model.info
    assert all(c in model.info for c in record["flagged_labels"])
