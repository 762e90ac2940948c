"""Shared fixtures: the bundled sample archive and datasets built from it by the real stages.

Session-scoped datasets are built once and shared; a test that changes a dataset must work
on a copy (``copy_dataset``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support import copy_dataset  # noqa: F401  (re-exported for older imports)

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / "assets" / "sample"

os.environ.setdefault("TWEETSCOPE_QUIET", "1")
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".numba-cache"))
# The suite never talks to real providers, whatever the developer's shell exports.
for _key in ("VOYAGE_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "LANCEDB_API_KEY"):
    os.environ.pop(_key, None)


@pytest.fixture(scope="session")
def sample_zip() -> Path:
    return SAMPLE_DIR / "twitter-archive.zip"


@pytest.fixture(scope="session")
def sample_json() -> Path:
    return SAMPLE_DIR / "community-archive.json"


@pytest.fixture
def tmp_workspace(tmp_path):
    from pipeline.core.workspace import Workspace

    return Workspace(tmp_path / "data")


@pytest.fixture
def scoped(tmp_path):
    """(dataset, scope_id): the small hand-made dataset of kits/scope_fakes, with a scope and links."""
    from kits.scope_fakes import make_fake_dataset
    from pipeline.stages.links import run_links
    from pipeline.stages.scope import run_scope

    ds = make_fake_dataset(tmp_path)
    scope_id = run_scope(ds)
    run_links(ds)
    return ds, scope_id


@pytest.fixture(scope="session")
def session_workspace(tmp_path_factory):
    from pipeline.core.workspace import Workspace

    return Workspace(tmp_path_factory.mktemp("session") / "data")


@pytest.fixture(scope="session")
def sample_dataset(session_workspace, sample_zip):
    from pipeline.stages.ingest import ingest_archive

    return ingest_archive(sample_zip, session_workspace, "sample")


@pytest.fixture(scope="session")
def mapped_dataset(sample_dataset):
    from pipeline.stages.cluster.stage import run_cluster
    from pipeline.stages.embed.stage import EmbedConfig, run_embed
    from pipeline.stages.umap.stage import run_umap

    run_embed(sample_dataset, EmbedConfig(provider="local"))
    run_umap(sample_dataset)
    run_cluster(sample_dataset)
    return sample_dataset


@pytest.fixture(scope="session")
def labelled_dataset(mapped_dataset):
    from pipeline.stages.labels import LabelConfig, run_labels

    run_labels(mapped_dataset, LabelConfig(provider="offline"))
    return mapped_dataset


@pytest.fixture(scope="session")
def scoped_dataset(labelled_dataset):
    from pipeline.stages.links import run_links
    from pipeline.stages.scope import run_scope

    run_scope(labelled_dataset)
    run_links(labelled_dataset)
    return labelled_dataset


@pytest.fixture(scope="session")
def older_sample(sample_zip, tmp_path_factory):
    """(older download of the sample: its oldest 80 % of tweets, tweets in it, tweets in the full sample)."""
    from kits.archive_split import older_archive

    return older_archive(sample_zip, tmp_path_factory.mktemp("older") / "older.zip", keep=0.8)


@pytest.fixture(scope="session")
def curated_older(older_sample, tmp_path_factory):
    """The older download through every stage, then curated: one tweet deleted, one label edited."""
    from pipeline.core.tombstones import add_tombstones
    from pipeline.core.workspace import Workspace
    from pipeline.stages.cluster.stage import run_cluster
    from pipeline.stages.embed.stage import EmbedConfig, run_embed
    from pipeline.stages.ingest import ingest_archive
    from pipeline.stages.labels import LabelConfig, run_labels
    from pipeline.stages.labels.edits import edit_labels
    from pipeline.stages.links import run_links
    from pipeline.stages.scope import run_scope
    from pipeline.stages.umap.stage import run_umap

    ws = Workspace(tmp_path_factory.mktemp("update") / "data")
    ds = ingest_archive(older_sample[0], ws, "older")
    run_embed(ds, EmbedConfig(provider="local"))
    run_umap(ds)
    run_cluster(ds)
    labels_id = run_labels(ds, LabelConfig(provider="offline"))
    run_scope(ds)
    run_links(ds)
    add_tombstones(ds, [5])
    edit_labels(ds, labels_id, {"0_0": {"label": "A curated label"}})
    return ds


@pytest.fixture(scope="session")
def updated_sample(curated_older, sample_zip, tmp_path_factory):
    """(dataset after updating a copy of ``curated_older`` with the full sample, the update record, ids before)."""
    from pipeline.core.workspace import Workspace
    from pipeline.update.run import update_dataset

    ds = copy_dataset(curated_older, tmp_path_factory.mktemp("updated"))
    before = ds.read_input(["id"])["id"].tolist()
    record = update_dataset(Workspace(ds.path.parent), ds.name, sample_zip)
    return Workspace(ds.path.parent).dataset(ds.name), record, before
