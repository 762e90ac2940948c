"""The one list of stages: name, config class, run function, inputs, output and status rule.

The runner (``tweetscope run`` and the studio's "run all"), the CLI (one generated command per
stage, flags from its config) and the studio (one card per stage) all read :data:`STAGES`.
Every ``run`` has the same shape::

    run(dataset, config, inputs, progress) -> artifact id

``inputs`` maps an :class:`Input` name to a chosen artifact id; a missing one is filled in
from the lineage (:mod:`pipeline.stages.lineage`), else the latest. Ingest is not listed: it
makes the dataset from an archive rather than an artifact from artifacts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from pipeline.core.config import StageConfig
from pipeline.core.errors import ConfigError
from pipeline.core.progress import Progress, null_progress
from pipeline.core.workspace import Dataset
from pipeline.stages import cluster, embed, labels, lineage, links, scope, umap
from pipeline.stages.lancedb import LanceConfig, local_table_status
from pipeline.stages.lancedb import run as run_lancedb
from pipeline.stages.links import links_status


@dataclass(frozen=True)
class Input:
    """An upstream artifact a stage reads: the ``inputs`` key, its kind, and how the CLI spells it."""

    name: str                 # "embedding_id"
    kind: str                 # artifact kind, "embedding"
    match: tuple = ()         # sidecar match, e.g. (("purpose", "display"),)
    flag: str = ""            # CLI flag (default: from the name)
    help: str = ""

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class Stage:
    """One stage as the runner, the CLI and the studio see it."""

    name: str
    title: str
    description: str
    config: Optional[type[StageConfig]]
    run: Callable[[Dataset, Any, dict, Progress], str]
    inputs: tuple[Input, ...]
    output: str                       # artifact kind written ("links"/"lancedb": derived outputs)
    status: Callable[[Dataset], dict]  # {"status": missing|done|stale, "id": ..., "reason": ...}
    summary: Callable[[Dataset, str], str]  # one line about an artifact this stage wrote
    command: Optional[str] = ""        # CLI command ("": the name; None: no generated command)
    command_help: str = ""

    @property
    def cli_command(self) -> Optional[str]:
        return self.name if self.command == "" else self.command

    def default_config(self) -> Optional[StageConfig]:
        return self.config() if self.config is not None else None

    def execute(self, dataset: Dataset, config: Optional[StageConfig] = None,
                inputs: Optional[dict] = None, progress: Optional[Progress] = None) -> str:
        """Run the stage: default config when None, unset inputs left to the lineage."""
        chosen = {k: v for k, v in (inputs or {}).items() if v}
        unknown = set(chosen) - {i.name for i in self.inputs}
        if unknown:
            raise ConfigError(f"stage {self.name} takes no input(s) {', '.join(sorted(unknown))}; "
                              f"its inputs are {', '.join(i.name for i in self.inputs) or 'none'}")
        if config is None:
            config = self.default_config()
        elif self.config is None:
            raise ConfigError(f"stage {self.name} has no settings; got a {type(config).__name__}")
        elif not isinstance(config, self.config):
            raise ConfigError(f"stage {self.name} needs a {self.config.__name__}, got a {type(config).__name__}")
        return self.run(dataset, config, chosen, progress or null_progress(self.name))

    def needs_run(self, dataset: Dataset) -> Optional[str]:
        """Why the stage should run (missing or stale), or None when its output is current."""
        state = self.status(dataset)
        return None if state["status"] == "done" else state["reason"] or state["status"]


def artifact_status(kind: str, **match) -> Callable[[Dataset], dict]:
    """The status rule of an NNN artifact: the latest of ``kind`` (matching ``match``) and its staleness."""
    def status(dataset: Dataset) -> dict:
        return dataset.status(kind, **match)

    return status


def _umap_summary(dataset: Dataset, display_id: str) -> str:
    side = dataset.sidecar(display_id)
    return f"{display_id} (display)\n{side['cluster_umap_id']} (cluster)"


def _cluster_summary(dataset: Dataset, cluster_id: str) -> str:
    side = dataset.sidecar(cluster_id)
    return f"{cluster_id}: {side['n_clusters']} clusters, {side['n_noise']} noise points reassigned"


def _labels_summary(dataset: Dataset, labels_id: str) -> str:
    side = dataset.sidecar(labels_id)
    return (f"{labels_id}: {side['rows']} labels in {side['num_layers']} layers {side['layer_sizes']} "
            f"({side['provider']} {side['model']}, {side['llm_calls']} calls, "
            f"{len(side['rounds'])} audit rounds) from {side['cluster_id']}")


def _scope_summary(dataset: Dataset, scope_id: str) -> str:
    side = dataset.sidecar(scope_id)
    return (f"{scope_id}: {side['rows']:,} rows, {side['cluster_id']} labelled by {side['cluster_labels_id']}, "
            f"lancedb table {side['lancedb_table_id']}")


def _links_summary(dataset: Dataset, _id: str) -> str:
    meta = links.load_links_meta(dataset)
    counts = meta["edge_type_counts"]
    return (f"links: {meta['edges']:,} edges ({counts['reply']:,} reply, {counts['quote']:,} quote; "
            f"{meta['internal_edges']:,} internal), {meta['nodes']:,} nodes")


def _lancedb_summary(dataset: Dataset, table: str) -> str:
    return f"{table}: local LanceDB table in {dataset.lancedb_dir}"


_DISPLAY = (("purpose", lineage.DISPLAY),)
_CLUSTER = (("purpose", lineage.CLUSTER),)

STAGES: tuple[Stage, ...] = (
    Stage("embed", "Embed", "Turn every tweet into a vector (local model offline, or Voyage).",
          embed.EmbedConfig, embed.run, (), "embedding", artifact_status("embedding"), lambda ds, i: i,
          command_help="embed tweet texts (local offline model or Voyage)"),
    Stage("umap", "UMAP", "Project the vectors to the 2-D map and a 10-D manifold for clustering.",
          umap.UmapConfig, umap.run,
          (Input("embedding_id", "embedding", help="embedding to map (default: the latest)"),),
          "umap", artifact_status("umap", purpose=lineage.DISPLAY), _umap_summary,
          command_help="2-D display map + 10-D cluster manifold from one kNN graph"),
    Stage("cluster", "Cluster", "HDBSCAN on the 10-D manifold; hulls and centroids on the map.",
          cluster.ClusterConfig, cluster.run,
          (Input("display_umap_id", "umap", _DISPLAY, flag="--umap-id",
                 help="display manifold (default: the cluster manifold's sibling)"),
           Input("clustering_umap_id", "umap", _CLUSTER,
                 help="cluster manifold (default: the display manifold's sibling, else the latest)")),
          "cluster", artifact_status("cluster"), _cluster_summary,
          command_help="HDBSCAN on the cluster manifold, hulls on the display map"),
    Stage("labels", "Labels", "Name the clusters with toponymy (offline namer or an LLM).",
          labels.LabelConfig, labels.run,
          (Input("cluster_id", "cluster", help="cluster artifact to label (default: the latest)"),),
          "toponymy", artifact_status("toponymy"), _labels_summary, command="label",
          command_help="name the clusters with toponymy (hierarchical labels)"),
    Stage("scope", "Scope", "Assemble the serving files (scope JSON + parquet).",
          scope.ScopeConfig, scope.run,
          (Input("embedding_id", "embedding", help="embedding-NNN (default: the display UMAP's)"),
           Input("display_umap_id", "umap", _DISPLAY, help="display umap-NNN (default: the cluster's)"),
           Input("cluster_id", "cluster", help="cluster-NNN (default: the labels', else the latest)"),
           Input("labels_id", "toponymy",
                 help="toponymy-NNN or 'default' (default: the cluster's latest toponymy labels)")),
          "scopes", artifact_status("scopes"), _scope_summary,
          command_help="assemble a scope (scope JSON + parquet + -input.parquet) from the latest or given artifacts"),
    Stage("links", "Links", "Reply and quote edges, thread statistics.",
          None, links.run, (), "links", links_status, _links_summary,
          command_help="build reply/quote edges and node stats (links/*)"),
    Stage("lancedb", "LanceDB", "The scope's rows and vectors as a local LanceDB table (search).",
          LanceConfig, run_lancedb, (Input("scope_id", "scopes", help="scope to export (default: the latest)"),),
          "lancedb", local_table_status, _lancedb_summary,
          command=None),  # `tweetscope lance` exports a scope to any target (pipeline.cli.lance)
)

STAGE_NAMES = tuple(s.name for s in STAGES)
_BY_NAME = {s.name: s for s in STAGES}


def get_stage(name: str) -> Stage:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ConfigError(f"unknown stage '{name}' (stages: {', '.join(STAGE_NAMES)})") from None
