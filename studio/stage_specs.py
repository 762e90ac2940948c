"""What the studio knows about each pipeline stage: its config class, run function and inputs.

Stage modules are imported lazily so that a stage that is missing or broken shows a clear
message in its card instead of taking the whole studio down.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Optional

from pipeline.progress import Progress


@dataclass(frozen=True)
class StageSpec:
    """A pipeline stage as the studio drives it."""

    name: str            # "embed"
    title: str           # "Embed"
    module: str          # "pipeline.embed"
    run: str             # "run_embed"
    config: Optional[str]  # "EmbedConfig" (None: the stage has no knobs)
    kind: Optional[str]  # artifact kind it produces ("embedding"); None for links
    status_match: tuple = ()  # extra sidecar match for status, e.g. (("purpose", "display"),)
    #: run keyword -> StudioState parameter holding the chosen upstream artifact id
    inputs: tuple = ()
    description: str = ""

    def load(self) -> tuple[Callable, Optional[type]]:
        """(run function, config class); raises ImportError/AttributeError with the module name."""
        module = importlib.import_module(self.module)
        run = getattr(module, self.run)
        config_cls = getattr(module, self.config) if self.config else None
        return run, config_cls

    def available(self) -> tuple[bool, str]:
        try:
            self.load()
        except Exception as exc:  # noqa: BLE001 - shown to the curator as is
            return False, f"{self.module}.{self.run} is not available: {type(exc).__name__}: {exc}"
        return True, ""

    def status(self, dataset) -> dict:
        """``Dataset.status`` of the artifact kind this stage produces (links: its meta file)."""
        if self.kind is None:
            meta = dataset.links_dir / "meta.json"
            return {"status": "done" if meta.is_file() else "missing", "id": "links" if meta.is_file() else None,
                    "reason": "" if meta.is_file() else "no links yet"}
        return dataset.status(self.kind, **dict(self.status_match))

    def execute(self, dataset, config: Any, progress: Progress, input_ids: dict[str, Optional[str]]) -> Any:
        run, _ = self.load()
        kwargs = {k: v for k, v in input_ids.items() if v}
        if self.name == "cluster" and kwargs.get("display_umap_id"):
            # The 10-D manifold fitted together with the chosen 2-D map (same kNN graph).
            partner = dataset.sidecar(kwargs["display_umap_id"]).get("cluster_umap_id")
            if partner:
                kwargs["clustering_umap_id"] = partner
        if self.config is None:
            return run(dataset, progress=progress, **kwargs)
        return run(dataset, config, progress, **kwargs)


STAGES: tuple[StageSpec, ...] = (
    StageSpec("embed", "Embed", "pipeline.embed", "run_embed", "EmbedConfig", "embedding",
              description="Turn every tweet into a vector (local model offline, or Voyage)."),
    StageSpec("umap", "UMAP", "pipeline.umap_stage", "run_umap", "UmapConfig", "umap",
              status_match=(("purpose", "display"),), inputs=(("embedding_id", "embedding_id"),),
              description="Project the vectors to the 2-D map and a 10-D manifold for clustering."),
    StageSpec("cluster", "Cluster", "pipeline.cluster", "run_cluster", "ClusterConfig", "cluster",
              inputs=(("display_umap_id", "umap_id"),),
              description="HDBSCAN on the 10-D manifold; hulls and centroids on the map."),
    StageSpec("labels", "Labels", "pipeline.labels", "run_labels", "LabelConfig", "toponymy",
              inputs=(("cluster_id", "cluster_id"),),
              description="Name the clusters with toponymy (offline namer or an LLM)."),
    StageSpec("scope", "Scope", "pipeline.scope", "run_scope", "ScopeConfig", "scopes",
              inputs=(("embedding_id", "embedding_id"), ("display_umap_id", "umap_id"),
                      ("cluster_id", "cluster_id"), ("labels_id", "toponymy_id")),
              description="Assemble the serving files (scope JSON + parquet)."),
    StageSpec("links", "Links", "pipeline.links", "run_links", None, None,
              description="Reply and quote edges, thread statistics."),
)

STAGES_BY_NAME = {s.name: s for s in STAGES}


def stage(name: str) -> StageSpec:
    try:
        return STAGES_BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown stage '{name}' (known: {', '.join(STAGES_BY_NAME)})") from None
