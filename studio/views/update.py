"""Update from a newer archive: merge it into the dataset in view, then show what it brought.

The model calls :func:`pipeline.update.run.update_dataset` as a background job (one job per
dataset at a time, like every stage); the summary is read from the record the update keeps
in ``meta.json`` (``updates``), so it is there after a restart too.
"""

from __future__ import annotations

import html
from pathlib import Path

import param

from pipeline.update.run import UpdateConfig, update_dataset
from studio.jobs import CANCELLED, DONE, FAILED


def update_summary(meta: dict) -> list[str]:
    """What the dataset's last update brought, one line each (empty before any update)."""
    updates = meta.get("updates") or []
    if not updates:
        return []
    last = updates[-1]
    lines = [f"Last update ({last.get('at', '')}, {last.get('archive', '')}): {last.get('new', 0):,} new tweets "
             f"(ls_index {last['new_rows'][0]:,} on), {last.get('changed', 0):,} changed, "
             f"{last.get('missing', 0):,} missing" + (" (deleted)" if last.get("removed_missing") else " (kept)")]
    if last.get("new"):
        lines.append("On the Map, tick “New since last update” to see them.")
    if last.get("n_embedded") is not None:
        lines.append(f"Embedded {last['n_embedded']:,} texts, reused {last['n_reused']:,} vectors.")
    grown = last.get("grown_clusters") or {}
    if grown:
        lines.append(f"{len(grown)} cluster(s) grew: " + ", ".join(
            f"{c} (+{v['added']})" for c, v in sorted(grown.items(), key=lambda kv: -kv[1]["added"])))
    flagged = last.get("flagged_labels") or {}
    if flagged:
        lines.append(f"{len(flagged)} label(s) flagged for review in {last.get('labels_id')}: "
                     + ", ".join(sorted(flagged)) + " (Labels tab: filter by status 'flagged', Relabel selected)")
    if last.get("refit"):
        lines.append("Refitted: new map, clusters and labels.")
    return lines


class UpdateModel(param.Parameterized):
    """Checks an update request and submits it as a job (no widgets: testable server-side)."""

    path = param.String(default="", doc="Path of the newer archive on this machine")
    remove_missing = param.Boolean(default=False, doc=UpdateConfig.param.remove_missing.doc)
    refit = param.Boolean(default=False, doc=UpdateConfig.param.refit.doc)
    job_id = param.String(default=None, allow_None=True)
    error = param.String(default="")
    info = param.String(default="")

    def __init__(self, state, **params):
        super().__init__(**params)
        self.state = state
        state.param.watch(lambda _event: self.follow_job(), "jobs_version")
        state.param.watch(lambda _event: self.show_last(), "dataset")

    def show_last(self) -> None:
        name = self.state.dataset
        if not self.job_id:
            self.info = " ".join(update_summary(self.state.workspace.dataset(name).meta())) if name else ""

    def submit(self):
        self.error = self.info = ""
        name = self.state.dataset
        source = Path(self.path.strip()).expanduser()
        if not name:
            self.error = "choose the dataset to update first"
            return None
        if not self.path.strip() or not source.exists():
            self.error = f"{source}: no such file or folder" if self.path.strip() else "enter the newer archive's path"
            return None
        if self.state.runner.active(dataset=name):
            self.error = f"dataset '{name}' is busy with another job; wait for it or cancel it"
            return None
        config = UpdateConfig(remove_missing=self.remove_missing, refit=self.refit)
        workspace = self.state.workspace
        job = self.state.runner.submit(name, "update", lambda progress: update_dataset(
            workspace, name, source, config, progress), title=f"update '{name}' from {source.name}")
        self.job_id = job.id
        self.info = f"Updating '{name}'…"
        return job

    def follow_job(self) -> None:
        job = self.state.runner.get(self.job_id) if self.job_id else None
        if job is None:
            return
        if job.status == FAILED:
            self.error = f"{job.error} The dataset was not changed."
            self.info, self.job_id = "", None
        elif job.status == CANCELLED:
            self.info, self.job_id = "Update cancelled; the dataset was not changed.", None
        elif job.status == DONE:
            self.job_id = None
            self.info = " ".join(update_summary(self.state.workspace.dataset(job.dataset).meta()))
        else:
            pct = f" {job.fraction:.0%}" if job.fraction is not None else ""
            self.info = f"Updating…{pct} {job.message}"


def create_update_panel(state):
    """Widgets of the update box (under "Load an archive")."""
    import panel as pn

    model = UpdateModel(state)
    path = pn.widgets.TextInput(name="Newer archive of this dataset", placeholder="/path/to/twitter-newer.zip",
                                css_classes=["ts-update-path"], sizing_mode="stretch_width")
    remove = pn.widgets.Checkbox(name="Delete tweets missing from it", css_classes=["ts-update-remove"])
    refit = pn.widgets.Checkbox(name="Refit everything", css_classes=["ts-update-refit"])
    button = pn.widgets.Button(name="Update from a newer archive", css_classes=["ts-update-btn"])
    error = pn.pane.Alert("", alert_type="danger", visible=False, css_classes=["ts-update-error"],
                          sizing_mode="stretch_width")
    info = pn.pane.HTML("", css_classes=["ts-update-info"], sizing_mode="stretch_width")

    def submit(_):
        model.param.update(path=path.value, remove_missing=remove.value, refit=refit.value)
        model.submit()

    def show(*_):
        error.object = f'<div class="ts-update-error-text">{html.escape(model.error)}</div>' if model.error else ""
        error.visible = bool(model.error)
        info.object = f'<span class="ts-update-info-text">{html.escape(model.info)}</span>' if model.info else ""

    button.on_click(submit)
    model.param.watch(show, ["error", "info"])
    model.show_last()
    show()
    return pn.Column(pn.pane.Markdown("#### Update from a newer archive"), path, pn.Row(remove, refit), button,
                     error, info, sizing_mode="stretch_width", css_classes=["ts-update"]), model
