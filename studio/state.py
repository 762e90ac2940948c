"""Per-session studio state shared by every view (dataset, chosen artifacts, selection, ...).

Views read and write these parameters and ``param.depends`` on them; they never reach into
each other. The job runner is process-wide; the state only holds a reference to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import param

from pipeline.core.workspace import Dataset, Workspace, WorkspaceError
from pipeline.stages.lineage import DISPLAY
from studio.jobs import DONE, JobRunner, get_runner

#: StudioState parameter -> (artifact kind, sidecar match) used to list its choices
ARTIFACT_CHOICES = {
    "embedding_id": ("embedding", {}),
    "umap_id": ("umap", {"purpose": DISPLAY}),
    "cluster_id": ("cluster", {}),
    "toponymy_id": ("toponymy", {}),
    "scope_id": ("scopes", {}),
}


def state_param_for(kind: str, match: dict) -> Optional[str]:
    """The StudioState parameter that holds the chosen artifact of ``kind`` (None: the studio offers no choice)."""
    return next((name for name, (k, m) in ARTIFACT_CHOICES.items() if k == kind and m == match), None)


class StudioState(param.Parameterized):
    """What the curator is looking at; one instance per browser session."""

    data_dir = param.Path(default=None, check_exists=False, constant=True, doc="The data directory.")
    dataset = param.Selector(default=None, objects=[], allow_None=True, doc="The dataset in view.")

    embedding_id = param.Selector(default=None, objects=[], allow_None=True, doc="Chosen embedding.")
    umap_id = param.Selector(default=None, objects=[], allow_None=True, doc="Chosen display UMAP.")
    cluster_id = param.Selector(default=None, objects=[], allow_None=True, doc="Chosen clustering.")
    toponymy_id = param.Selector(default=None, objects=[], allow_None=True, doc="Chosen labels.")
    scope_id = param.Selector(default=None, objects=[], allow_None=True, doc="Chosen scope.")

    selection = param.List(default=[], item_type=int, doc="ls_index of the tweets selected on the map.")
    highlighted_cluster = param.String(default=None, allow_None=True,
                                       doc='Cluster to highlight on the map, e.g. "0_12" (layer_cluster).')
    label_layer = param.Integer(default=0, bounds=(0, None), doc="Hierarchy layer shown on the map.")
    search = param.String(default="", doc="Text search highlighted on the map.")
    active_view = param.String(default="stages", doc="Name of the view in the main area.")

    artifacts_version = param.Integer(default=0, doc="Bumped whenever artifacts on disk may have changed.")
    jobs_version = param.Integer(default=0, doc="Bumped whenever a job changed (polled from the runner).")

    def __init__(self, data_dir, runner: Optional[JobRunner] = None, **params):
        super().__init__(data_dir=str(Path(data_dir).resolve()), **params)
        self.workspace = Workspace(self.data_dir)
        self.runner = runner or get_runner(Path(self.data_dir))
        self._seen_finished = {j.id for j in self.runner.jobs() if not j.is_active}
        self.refresh()

    # ---- datasets and artifacts
    def current_dataset(self) -> Optional[Dataset]:
        if not self.dataset:
            return None
        try:
            return self.workspace.dataset(self.dataset)
        except WorkspaceError:
            return None

    def refresh(self) -> None:
        """Re-scan the data dir: dataset list and each artifact choice (keeping valid picks)."""
        names = self.workspace.dataset_names()
        self.param.dataset.objects = names
        with param.parameterized.batch_call_watchers(self):
            if self.dataset not in names:
                self.dataset = names[0] if names else None
            self._refresh_artifacts()
            self.artifacts_version += 1

    @param.depends("dataset", watch=True)
    def _on_dataset(self) -> None:
        with param.parameterized.batch_call_watchers(self):  # views rebuild once, not per id
            for name in ARTIFACT_CHOICES:
                setattr(self, name, None)
            self.selection = []
            self.highlighted_cluster = None
            self.search = ""
            self._refresh_artifacts()
            self.artifacts_version += 1

    def _refresh_artifacts(self) -> None:
        ds = self.current_dataset()
        for name, (kind, match) in ARTIFACT_CHOICES.items():
            ids = ds.list_ids(kind, **match) if ds is not None else []
            current = getattr(self, name)
            self.param[name].objects = ids
            if current not in ids or current is None:
                # The newest artifact is the default; a newer one replaces an auto-chosen pick.
                setattr(self, name, ids[-1] if ids else None)

    def follow_latest(self, name: str) -> None:
        """After a stage wrote a new artifact, select it (the curator expects to see it)."""
        ds = self.current_dataset()
        if ds is None:
            return
        kind, match = ARTIFACT_CHOICES[name]
        ids = ds.list_ids(kind, **match)
        self.param[name].objects = ids
        if ids:
            setattr(self, name, ids[-1])

    def input_ids(self) -> dict[str, Optional[str]]:
        return {name: getattr(self, name) for name in ARTIFACT_CHOICES}

    # ---- jobs
    def poll_jobs(self) -> None:
        """Called from a session's periodic callback: propagate runner changes into the session."""
        if self.runner.version == self.jobs_version:
            return
        newly_done = [j for j in self.runner.jobs()
                      if not j.is_active and j.id not in self._seen_finished]
        for job in newly_done:
            self._seen_finished.add(job.id)
        self.jobs_version = self.runner.version
        if newly_done:
            names_before = set(self.param.dataset.objects)
            self.refresh()
            for job in newly_done:
                if job.status == DONE and job.dataset == self.dataset:
                    for name, kind in _RESULT_KINDS.items():
                        if _produced(job.result, kind):
                            self.follow_latest(name)
                if job.status == DONE and job.stage == "ingest" and job.dataset not in names_before:
                    if job.dataset in self.param.dataset.objects:
                        self.dataset = job.dataset
            self.artifacts_version += 1


_RESULT_KINDS = {
    "embedding_id": "embedding-", "umap_id": "umap-", "cluster_id": "cluster-",
    "toponymy_id": "toponymy-", "scope_id": "scopes-",
}


def _produced(result, prefix: str) -> bool:
    if isinstance(result, str):
        return result.startswith(prefix)
    if isinstance(result, (list, tuple)):
        return any(_produced(r, prefix) for r in result)
    return False
