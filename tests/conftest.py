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
