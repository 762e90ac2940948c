"""The stage registry: one conformance check for every stage, and the one lineage rule set.

Every stage of ``STAGES`` is checked the same way: it has a CLI command and a studio card, it
refuses to start when cancelled and leaves nothing behind, and what it wrote on the sample
(the session chain of conftest, made by the real stages) records a fully resolved config,
its inputs and ``total_s``.
"""

from __future__ import annotations

import json

import pytest

from pipeline.cli.main import build_parser
from pipeline.core.config import StageConfig
from pipeline.core.errors import ConfigError, LineageError
from pipeline.core.progress import Cancelled, Progress
from pipeline.core.workspace import KIND_DIRS
from pipeline.serving.validate import validate_scope
from pipeline.stages import lineage
from pipeline.stages.registry import STAGE_NAMES, STAGES, get_stage
from pipeline.stages.runner import plan_pipeline
from pipeline.stages.umap import UmapConfig
from support import copy_dataset

NNN_KINDS = set(KIND_DIRS)


def _files(dataset) -> set[str]:
    return {p.relative_to(dataset.path).as_posix() for p in dataset.path.rglob("*")
            if p.is_file() and not p.relative_to(dataset.path).as_posix().startswith(".ids/")}


def test_every_stage_is_declared_once_with_a_config_inputs_and_a_command():
    assert len(set(STAGE_NAMES)) == len(STAGES)
    parser_commands = set(build_parser()._subparsers._group_actions[0].choices)
    for stage in STAGES:
        assert stage.config is None or issubclass(stage.config, StageConfig), stage.name
        assert stage.output in NNN_KINDS | {"links", "lancedb"}, stage.name
        assert all(i.kind in NNN_KINDS for i in stage.inputs), stage.name
        assert stage.cli_command is None or stage.cli_command in parser_commands, stage.name
    with pytest.raises(ConfigError, match="unknown stage 'nope'"):
        get_stage("nope")


def test_every_stage_records_what_ran(scoped_dataset):
    """On the sample every NNN artifact records resolved params, its inputs and total_s."""
    ds = scoped_dataset
    for stage in STAGES:
        if stage.output not in NNN_KINDS:
            continue
        artifact_id = stage.status(ds)["id"]
        assert artifact_id, f"{stage.name} wrote nothing on the sample"
        side = ds.sidecar(artifact_id)
        params = side["params"]
        if stage.config is not None:
            assert set(stage.config().to_dict()) <= set(params), stage.name
        assert "auto" not in params.values(), f"{stage.name} recorded an unresolved 'auto': {params}"
        assert isinstance(side["timings"].get("total_s"), float), f"{stage.name}: {side['timings']}"
        assert side["inputs"], stage.name
    display = ds.sidecar(ds.latest("umap", purpose=lineage.DISPLAY))["params"]
    assert display["n_epochs"] and display["cluster_n_epochs"] and display["parallel_fits"] in ("always", "never")
    assert ds.sidecar(ds.latest("toponymy"))["params"]["provider"] == "offline"


@pytest.mark.parametrize("name", STAGE_NAMES)
def test_a_cancelled_stage_writes_nothing(scoped_dataset, tmp_path, name):
    ds = copy_dataset(scoped_dataset, tmp_path)
    before = _files(ds)
    progress = Progress()
    progress.cancel()
    with pytest.raises(Cancelled):
        get_stage(name).execute(ds, progress=progress)
    assert _files(ds) == before


def test_stage_inputs_are_checked(scoped_dataset):
    with pytest.raises(ConfigError, match="takes no input"):
        get_stage("embed").execute(scoped_dataset, inputs={"cluster_id": "cluster-001"})
    with pytest.raises(ConfigError, match="needs a UmapConfig"):
        get_stage("umap").execute(scoped_dataset, config=get_stage("cluster").default_config())


def test_runner_plans_from_the_registry(scoped_dataset):
    plan = dict(plan_pipeline(scoped_dataset))
    assert list(plan) == ["lancedb"]  # the session chain stops before the local LanceDB table
    forced = [name for name, _ in plan_pipeline(scoped_dataset, ["cluster", "scope"], force=True)]
    assert forced == ["cluster", "scope"]
    with pytest.raises(ConfigError, match="unknown stage"):
        plan_pipeline(scoped_dataset, ["embed", "nope"])


# --------------------------------------------------------------------------- lineage

def test_umap_config_and_the_validator_agree_on_the_cluster_manifold(scoped):
    """Any cluster_dimensions UMAP's config accepts passes the deploy gate; anything else fails it."""
    low, high = lineage.CLUSTER_DIMENSIONS_RANGE
    assert UmapConfig.param.cluster_dimensions.bounds == (low, high)
    assert UmapConfig().cluster_dimensions == lineage.CLUSTER_DIMENSIONS
    ds, scope_id = scoped
    manifold = ds.sidecar(ds.sidecar("cluster-001")["clustering_umap_id"])
    for dims, ok in ((low, True), (8, True), (high, True), (low - 1, False), (high + 1, False)):
        path = ds.sidecar_path(manifold["id"])
        path.write_text(json.dumps({**manifold, "n_components": dims}))
        problems = [p for p in validate_scope(ds, scope_id) if "clustering UMAP" in p]
        assert (problems == []) == ok, (dims, problems)
        assert (lineage.cluster_manifold_problems(manifold["id"], {**manifold, "n_components": dims}) == []) == ok


def test_lineage_refuses_the_display_manifold_for_clustering(scoped):
    ds, _ = scoped
    display = ds.latest("umap", purpose=lineage.DISPLAY)
    with pytest.raises(LineageError, match="display manifold; HDBSCAN runs on the cluster manifold"):
        lineage.resolve_manifolds(ds, clustering_umap_id=display)
    # a display manifold that names no sibling is paired with the latest cluster manifold of its embedding
    assert lineage.resolve_manifolds(ds, display_umap_id=display) == (display, ds.latest("umap", purpose="cluster"))
