"""Labels view: review and fix the cluster labels, then save, relabel, diff and rebuild the scope.

``LabelsModel`` is the widget-free part (testable without a browser): it loads a labels
artifact, keeps a working copy with an undo stack of the curator's unsaved edits (label,
description, approve/flag), saves them as a new labels artifact through
``pipeline.stages.labels.edits``, and submits the slow work (LLM relabel, scope rebuild) as jobs of
the studio's runner. ``LabelsView`` renders it: a Tabulator of clusters, sample tweets of
the selected cluster (highlighted on the map through the shared state), the pending
changes, and a diff against an earlier version.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import pandas as pd
import param

from pipeline.core.errors import LabelEditError
from pipeline.stages.labels import edits, load_labels
from pipeline.stages.labels.config import LabelConfig
from pipeline.stages.labels.edits import clean_text
from pipeline.stages.labels.table import STATUSES
from pipeline.stages.scope import run_scope
from studio.label_audit import with_audit

TABLE_COLUMNS = ["cluster", "layer", "label", "description", "count", "topic_specificity", "parent_cluster",
                 "status", "judge_score", "audit"]
EDITABLE = ("label", "description")
SAMPLE_SIZE = 12
SAME_NAMER = "as before"  # relabel with the namer settings the labels artifact was made with


@dataclass(frozen=True)
class Change:
    cluster: str
    field: str  # label | description | status
    old: Any
    new: Any


# --------------------------------------------------------------------------- pipeline calls

class LabelBackend:
    """The labels pipeline calls of this view (``pipeline.stages.labels`` and ``pipeline.stages.labels.edits``)."""

    def load(self, dataset, toponymy_id: str) -> tuple[pd.DataFrame, dict, dict]:
        """(12-column labels frame, {cluster: status}, sidecar)."""
        frame = load_labels(dataset, toponymy_id)
        sidecar = dataset.sidecar(toponymy_id)
        statuses = dict(sidecar.get("statuses") or {})
        return frame, statuses, sidecar

    def save(self, dataset, base_id: str, changes: dict[str, dict], note: str = "") -> str:
        """A new labels artifact from ``base_id`` with ``{cluster: {label?, description?, status?}}`` -> its id."""
        return edits.edit_labels(dataset, base_id, changes, note=note)

    def relabel(self, dataset, toponymy_id: str, clusters: list[str], config=None, progress=None) -> str:
        """New labels from the namer for ``clusters`` -> the id of the new artifact."""
        return edits.relabel(dataset, toponymy_id, clusters, config=config, progress=progress)

    def diff(self, dataset, a: str, b: str) -> pd.DataFrame:
        return pd.DataFrame(edits.diff_labels(dataset, a, b))


# --------------------------------------------------------------------------- model

class LabelsModel(param.Parameterized):
    """The labels of one artifact with the curator's unsaved edits (an undo stack)."""

    base_id = param.String(default=None, allow_None=True, doc="The labels artifact being edited.")
    layer_filter = param.Selector(default="all", objects=["all"], doc="Show one hierarchy layer or all.")
    text_filter = param.String(default="", doc="Show clusters whose label or description contains this.")
    status_filter = param.Selector(default="all", objects=["all", *STATUSES])
    weakest_first = param.Boolean(default=False, doc="Sort by the audit judge's score, weakest label first.")
    selected = param.List(default=[], item_type=str, doc="Cluster ids ticked in the table.")
    version = param.Integer(default=0, doc="Bumped whenever the working copy changed.")
    message = param.String(default="")
    error = param.String(default="")

    def __init__(self, state, backend: Optional[LabelBackend] = None, **params):
        super().__init__(**params)
        self.state = state
        self.backend = backend or LabelBackend()
        self.original: pd.DataFrame = pd.DataFrame(columns=TABLE_COLUMNS)
        self.working: pd.DataFrame = self.original.copy()
        self.full: pd.DataFrame = pd.DataFrame()  # the 12 columns (indices, hull, ...) of base_id
        self.sidecar: dict = {}
        self.undo_stack: list[list[Change]] = []
        # unsaved work per labels artifact, so switching artifacts never loses edits
        self._parked: dict[tuple, tuple[pd.DataFrame, list]] = {}
        self._tweets: Optional[pd.DataFrame] = None
        self._tweets_key = None
        self.last_job = None
        state.param.watch(self._on_state, ["dataset", "toponymy_id"])
        self.load()

    # ---- loading
    def _key(self, base_id=None) -> tuple:
        return (self.state.dataset, base_id if base_id is not None else self.base_id)

    def _on_state(self, *_events) -> None:
        self.load()

    def load(self) -> None:
        """(Re)load the state's labels artifact; unsaved edits of the previous one are parked."""
        if self.base_id is not None and self.undo_stack:
            self._parked[self._key()] = (self.working.copy(), list(self.undo_stack))
        ds = self.state.current_dataset()
        toponymy_id = self.state.toponymy_id
        self.error = ""
        self.selected = []
        if ds is None or not toponymy_id:
            self.base_id = None
            self.full = pd.DataFrame()
            self.original = pd.DataFrame(columns=TABLE_COLUMNS)
            self.working = self.original.copy()
            self.undo_stack = []
            self.sidecar = {}
            self.version += 1
            return
        try:
            frame, statuses, sidecar = self.backend.load(ds, toponymy_id)
        except Exception as exc:  # noqa: BLE001 - shown in the view
            self.base_id = None
            self.error = f"Could not load {toponymy_id}: {type(exc).__name__}: {exc}"
            self.version += 1
            return
        self.full = frame.reset_index(drop=True)
        self.sidecar = sidecar
        self.original = with_audit(table_frame(self.full, statuses), sidecar)
        self.base_id = toponymy_id
        parked = self._parked.pop(self._key(), None)
        if parked is not None:
            self.working, self.undo_stack = parked[0].copy(), list(parked[1])
            self.message = f"Restored {len(self.undo_stack)} unsaved edit(s) of {toponymy_id}."
        else:
            self.working = self.original.copy()
            self.undo_stack = []
        layers = sorted({int(v) for v in self.original["layer"]})
        self.param.layer_filter.objects = ["all", *[str(v) for v in layers]]
        if self.layer_filter not in self.param.layer_filter.objects:
            self.layer_filter = "all"
        self.version += 1

    # ---- reads
    @property
    def dirty(self) -> bool:
        return bool(len(self.changes()))

    def _row(self, cluster: str) -> int:
        hits = np.flatnonzero(self.working["cluster"].to_numpy() == cluster)
        if not len(hits):
            raise LabelEditError(f"unknown cluster '{cluster}' in {self.base_id}")
        return int(hits[0])

    def value(self, cluster: str, field: str):
        return self.working.at[self._row(cluster), field]

    def view_frame(self) -> pd.DataFrame:
        """The rows the table shows (filters applied), in cluster order."""
        frame = self.working
        if self.layer_filter != "all":
            frame = frame[frame["layer"] == int(self.layer_filter)]
        if self.status_filter != "all":
            frame = frame[frame["status"] == self.status_filter]
        query = self.text_filter.strip().lower()
        if query:
            text = (frame["label"].astype(str) + " " + frame["description"].astype(str)).str.lower()
            frame = frame[text.str.contains(query, regex=False).to_numpy(dtype=bool)]
        if self.weakest_first and "judge_score" in frame.columns:
            frame = frame.sort_values("judge_score", kind="stable", na_position="last")
        return frame.reset_index(drop=True)

    def changes(self) -> pd.DataFrame:
        """Unsaved changes: one row per (cluster, field) that differs from the saved artifact."""
        rows = []
        if len(self.working):
            for field in (*EDITABLE, "status"):
                before = self.original[field].astype(str).to_numpy()
                after = self.working[field].astype(str).to_numpy()
                for i in np.flatnonzero(before != after):
                    rows.append({"cluster": self.working.at[i, "cluster"], "field": field,
                                 "before": self.original.at[i, field], "after": self.working.at[i, field]})
        return pd.DataFrame(rows, columns=["cluster", "field", "before", "after"])

    def statuses(self) -> dict[str, str]:
        return dict(zip(self.working["cluster"], self.working["status"]))

    def status_counts(self) -> dict[str, int]:
        counts = self.working["status"].value_counts().to_dict() if len(self.working) else {}
        return {s: int(counts.get(s, 0)) for s in STATUSES}

    # ---- edits (each is one undo step)
    def _apply(self, changes: list[Change]) -> None:
        changes = [c for c in changes if str(c.old) != str(c.new)]
        if not changes:
            return
        for c in changes:
            self.working.at[self._row(c.cluster), c.field] = c.new
        self.undo_stack.append(changes)
        self.error = ""
        self.version += 1

    def edit(self, cluster: str, field: str, value: Any) -> None:
        """Change a label or description; an edited cluster's status becomes ``edited``."""
        if field not in EDITABLE:
            raise LabelEditError(f"'{field}' cannot be edited (editable: {', '.join(EDITABLE)})")
        if self.base_id is None:
            raise LabelEditError("no labels loaded")
        text = clean_text(cluster, field, value)
        row = self._row(cluster)
        old = self.working.at[row, field]
        if str(old) == text:
            return
        changes = [Change(cluster, field, old, text)]
        status = self.working.at[row, "status"]
        if status != "edited":
            changes.append(Change(cluster, "status", status, "edited"))
        self._apply(changes)

    def set_status(self, clusters: list[str], status: str) -> int:
        """Approve / flag / reset several clusters at once (one undo step); returns how many changed."""
        if status not in STATUSES:
            raise LabelEditError(f"unknown status '{status}' (one of {', '.join(STATUSES)})")
        if not clusters:
            raise LabelEditError("tick one or more clusters in the table first")
        changes = [Change(c, "status", self.value(c, "status"), status) for c in clusters]
        changes = [c for c in changes if c.old != c.new]
        self._apply(changes)
        return len(changes)

    def undo(self) -> bool:
        """Revert the most recent unsaved edit; False when there is nothing to undo."""
        if not self.undo_stack:
            self.message = "Nothing to undo."
            return False
        for c in reversed(self.undo_stack.pop()):
            self.working.at[self._row(c.cluster), c.field] = c.old
        self.error = ""
        self.message = f"Undone; {len(self.undo_stack)} edit(s) left to undo."
        self.version += 1
        return True

    def discard(self) -> None:
        self.working = self.original.copy()
        self.undo_stack = []
        self.version += 1

    # ---- save / jobs
    def pending_edits(self) -> dict[str, dict]:
        """{cluster: {field: new value}} of every unsaved change (what the save sends)."""
        out: dict[str, dict] = {}
        for row in self.changes().itertuples(index=False):
            out.setdefault(row.cluster, {})[row.field] = row.after
        return out

    def save(self) -> Optional[str]:
        """Write the edits as a new labels artifact, select it, and return its id."""
        ds = self.state.current_dataset()
        if ds is None or self.base_id is None:
            self.error = "No labels to save."
            return None
        if not self.dirty:
            self.message = "No unsaved edits."
            return None
        base = self.base_id
        try:
            edits = self.pending_edits()
            new_id = self.backend.save(ds, base, edits, note=f"studio: {len(edits)} cluster(s) reviewed")
        except Exception as exc:  # noqa: BLE001 - the curator sees why; the working copy is kept
            self.error = f"Save failed, nothing was written: {type(exc).__name__}: {exc}"
            return None
        self.undo_stack = []
        self._parked.pop(self._key(base), None)
        self.state.follow_latest("toponymy_id")
        if self.state.toponymy_id != new_id:
            self.state.toponymy_id = new_id
        self.state.artifacts_version += 1
        self.message = f"Saved as {new_id} (edited from {base})."
        return new_id

    def relabel_config(self, provider: str = SAME_NAMER):
        """The labels artifact's own settings, with another namer when the curator picked one."""

        params = {k: v for k, v in (self.sidecar.get("params") or {}).items() if k in LabelConfig.param and k != "name"}
        if provider != SAME_NAMER and provider != params.get("provider"):
            params.update(provider=provider, model="")  # a model name belongs to its provider
        return LabelConfig.from_dict(params)

    def relabel(self, clusters: list[str], config=None):
        """Submit the LLM audit/relabel of ``clusters`` as a job; its result is a new labels artifact."""
        ds = self.state.current_dataset()
        if ds is None or self.base_id is None:
            raise LabelEditError("no labels loaded")
        if not clusters:
            raise LabelEditError("tick the clusters to relabel first")
        if self.dirty:
            raise LabelEditError("save or undo your edits first: relabelling writes a new labels artifact "
                                 f"from the saved {self.base_id}")
        base, backend, chosen = self.base_id, self.backend, list(clusters)
        job = self.state.runner.submit(
            ds.name, "labels", lambda progress: backend.relabel(ds, base, chosen, config=config, progress=progress),
            title=f"relabel {len(chosen)} cluster(s) of {base}")
        job.params = {"toponymy_id": base, "clusters": chosen,
                      **({"config": config.to_dict()} if hasattr(config, "to_dict") else {})}
        self.last_job = job
        self.message = f"Relabelling {len(chosen)} cluster(s)… ({job.id}); the result opens here when done."
        return job

    def rebuild_scope(self, labels_id: Optional[str] = None):
        """Submit ``run_scope(dataset, labels_id=...)`` as a job (default: the saved labels in view)."""
        ds = self.state.current_dataset()
        labels_id = labels_id or self.base_id
        if ds is None or not labels_id:
            raise LabelEditError("no labels to build a scope from")
        if self.dirty:
            raise LabelEditError("save your edits first: the scope is built from saved labels")

        job = self.state.runner.submit(ds.name, "scope", lambda progress: run_scope(ds, None, progress,
                                                                                    labels_id=labels_id),
                                       title=f"Scope (labels_id={labels_id})")
        job.params = {"labels_id": labels_id}
        self.last_job = job
        self.message = f"Rebuilding the scope from {labels_id}… ({job.id})"
        return job

    def scope_note(self) -> str:
        """Which labels the chosen scope was built from, when that is not the artifact in view."""
        ds, scope_id = self.state.current_dataset(), self.state.scope_id
        if ds is None or not scope_id or not self.base_id or not ds.exists(scope_id):
            return "" if self.base_id is None or scope_id else "No scope yet: Rebuild scope makes one from these labels."
        used = ds.sidecar(scope_id).get("labels_id")
        if used == self.base_id:
            return f"{scope_id} is built from these labels."
        return (f"{scope_id} is built from {used or 'the default labels'}, not {self.base_id}: "
                "Rebuild scope to publish these labels.")

    # ---- diff
    def previous_id(self) -> Optional[str]:
        """What to diff against by default: the artifact this one was edited from, else the one before."""
        if self.base_id is None:
            return None
        edited_from = self.sidecar.get("edited_from")
        if edited_from:
            return edited_from
        ds = self.state.current_dataset()
        ids = ds.list_ids("toponymy") if ds is not None else []
        if self.base_id in ids and ids.index(self.base_id) > 0:
            return ids[ids.index(self.base_id) - 1]
        return None

    def diff(self, other_id: Optional[str]) -> pd.DataFrame:
        ds = self.state.current_dataset()
        if ds is None or not other_id or not self.base_id:
            return pd.DataFrame()
        return self.backend.diff(ds, other_id, self.base_id)

    # ---- sample tweets
    def tweets(self) -> pd.DataFrame:
        ds = self.state.current_dataset()
        key = (str(ds.path), ds.input_fingerprint()) if ds is not None else None
        if self._tweets is None or self._tweets_key != key:
            self._tweets = ds.read_input(["text", "created_at", "favorites"]) if ds is not None else pd.DataFrame(
                columns=["text", "created_at", "favorites"])
            self._tweets_key = key
        return self._tweets

    def members(self, cluster: str) -> np.ndarray:
        if not len(self.full):
            return np.array([], dtype=np.int64)
        hits = self.full[self.full["cluster"] == cluster]
        if not len(hits):
            return np.array([], dtype=np.int64)
        return np.asarray(list(hits.iloc[0]["indices"]), dtype=np.int64)

    def sample_tweets(self, cluster: str, n: int = SAMPLE_SIZE, seed: int = 0) -> pd.DataFrame:
        """Up to ``n`` tweets of the cluster (a seeded sample: the same each time it is shown)."""
        members = self.members(cluster)
        tweets = self.tweets()
        members = members[(members >= 0) & (members < len(tweets))]
        if len(members) > n:
            members = np.sort(np.random.default_rng(seed).choice(members, n, replace=False))
        sub = tweets.iloc[members]
        return pd.DataFrame({"ls_index": members, "created_at": pd.to_datetime(
            sub["created_at"], errors="coerce", utc=True).dt.strftime("%Y-%m-%d").to_numpy() if len(members) else [],
            "favorites": sub["favorites"].to_numpy(), "text": sub["text"].astype(str).to_numpy()})

    def highlight(self, cluster: Optional[str]) -> None:
        """Show ``cluster`` on the map (the map view reads the shared state)."""
        self.state.highlighted_cluster = cluster or None


def table_frame(labels: pd.DataFrame, statuses: dict[str, str]) -> pd.DataFrame:
    """The table's columns from a 12-column labels frame and the sidecar's statuses."""
    frame = pd.DataFrame({
        "cluster": labels["cluster"].astype(str).to_numpy(),
        "layer": labels["layer"].astype(int).to_numpy(),
        "label": labels["label"].fillna("").astype(str).to_numpy(),
        "description": labels["description"].fillna("").astype(str).to_numpy(),
        "count": labels["count"].astype(int).to_numpy(),
        "topic_specificity": pd.to_numeric(labels["topic_specificity"], errors="coerce").astype(float).round(3).to_numpy(),
        "parent_cluster": labels["parent_cluster"].astype(object).where(labels["parent_cluster"].notna(), "").to_numpy(),
    })
    frame["status"] = [statuses.get(c, "auto") if statuses.get(c, "auto") in STATUSES else "auto"
                       for c in frame["cluster"]]
    return frame.astype({"label": object, "description": object, "status": object, "parent_cluster": object})


# --------------------------------------------------------------------------- view

STATUS_STYLE = {"approved": "#1a7f37", "flagged": "#cf222e", "edited": "#0969da", "auto": "#888"}


def _alert(message: str, error: str) -> str:
    parts = []
    if message:
        parts.append(f'<div class="ts-labels-message">{html.escape(message)}</div>')
    if error:
        parts.append(f'<div class="ts-labels-error" style="color:#cf222e"><b>{html.escape(error)}</b></div>')
    return "".join(parts)


def diff_html(frame: pd.DataFrame, a: Optional[str], b: Optional[str]) -> str:
    if not a:
        return "<i>No earlier version to compare with.</i>"
    if frame is None or not len(frame):
        return f"<i>No differences between {html.escape(a)} and {html.escape(str(b))}.</i>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in row) + "</tr>"
                   for row in frame.head(300).itertuples(index=False))
    more = f"<div>… {len(frame) - 300} more</div>" if len(frame) > 300 else ""
    return (f'<div class="ts-labels-diff"><b>{len(frame)}</b> difference(s) {html.escape(a)} → {html.escape(str(b))}'
            f'<table style="font-size:12px;border-collapse:collapse" class="ts-diff-table"><tr>{head}</tr>{body}</table>'
            f"{more}</div>")


class LabelsView:
    """The labels tab of a StudioState."""

    def __init__(self, state, model: Optional[LabelsModel] = None):
        import panel as pn


        self.state = state
        self.model = model or LabelsModel(state)
        m = self.model
        self.title = pn.pane.HTML("", css_classes=["ts-labels-title"])
        self.filters = pn.Row(
            pn.widgets.Select.from_param(m.param.layer_filter, name="Layer", width=90),
            pn.widgets.Select.from_param(m.param.status_filter, name="Status", width=110),
            pn.widgets.TextInput.from_param(m.param.text_filter, name="Filter", placeholder="label or description",
                                            width=220, css_classes=["ts-labels-filter"]),
            pn.widgets.Checkbox.from_param(m.param.weakest_first, name="Weakest first (judge score)",
                                           css_classes=["ts-labels-weakest"], align="end"))
        self.table = pn.widgets.Tabulator(
            m.view_frame(), selectable="checkbox", show_index=False, sizing_mode="stretch_width",
            layout="fit_columns", pagination="local", page_size=20,
            editors={c: None for c in TABLE_COLUMNS if c not in EDITABLE} | {
                "label": {"type": "input"}, "description": {"type": "textarea"}},
            formatters={"label": {"type": "textarea"}, "description": {"type": "textarea"}, "audit": {"type": "textarea"}},
            titles={"cluster": "id", "layer": "layer", "count": "tweets", "topic_specificity": "specif.",
                    "parent_cluster": "parent", "judge_score": "judge", "audit": "audit changed"},
            widths={"cluster": 70, "layer": 70, "label": 200, "description": 260, "count": 80,
                    "topic_specificity": 80, "parent_cluster": 80, "status": 90, "judge_score": 80, "audit": 220},
            css_classes=["ts-labels-table"],
        )
        self.table.on_edit(self._on_edit)
        self.table.param.watch(self._on_selection, "selection")
        self.table.on_click(self._on_row_click)
        button = dict(width=105, margin=(5, 3), align="end")
        self.approve = pn.widgets.Button(name="Approve", button_type="success", css_classes=["ts-approve"], **button)
        self.flag = pn.widgets.Button(name="Flag", button_type="warning", css_classes=["ts-flag"], **button)
        self.reset = pn.widgets.Button(name="Reset status", button_type="light", css_classes=["ts-reset-status"],
                                       **button)
        self.undo = pn.widgets.Button(name="Undo", button_type="default", css_classes=["ts-undo"], **button)
        self.save = pn.widgets.Button(name="Save labels", button_type="primary", css_classes=["ts-save-labels"],
                                      **button)
        self.discard = pn.widgets.Button(name="Discard edits", button_type="light", css_classes=["ts-discard"], **button)
        self.relabel = pn.widgets.Button(name="Relabel selected", button_type="primary",
                                         css_classes=["ts-relabel"], width=150, margin=(5, 4), align="end")
        self.provider = pn.widgets.Select(name="Namer", options=[SAME_NAMER, *LabelConfig.param.provider.objects],
                                          value=SAME_NAMER, width=130, css_classes=["ts-relabel-provider"])
        self.rebuild = pn.widgets.Button(name="Rebuild scope", button_type="primary", css_classes=["ts-rebuild-scope"],
                                         width=140, margin=(5, 4), align="end")
        self.job_status = pn.pane.HTML("", css_classes=["ts-labels-job"])
        self.job_progress = pn.indicators.Progress(value=0, max=1000, visible=False, width=300,
                                                   css_classes=["ts-labels-progress"])
        self.status = pn.pane.HTML("", css_classes=["ts-labels-status"], sizing_mode="stretch_width")
        self.changes = pn.pane.HTML("", css_classes=["ts-labels-changes"], sizing_mode="stretch_width")
        self.sample_title = pn.pane.HTML("<i>Select a cluster to read its tweets.</i>",
                                         css_classes=["ts-sample-title"])
        self.samples = pn.widgets.Tabulator(pd.DataFrame(columns=["ls_index", "created_at", "favorites", "text"]),
                                            disabled=True, show_index=False, sizing_mode="stretch_width",
                                            layout="fit_columns", height=380,
                                            widths={"ls_index": 80, "created_at": 110, "favorites": 70,
                                                    "text": 380},
                                            titles={"ls_index": "row", "created_at": "date", "favorites": "♥"},
                                            formatters={"text": {"type": "textarea"}},
                                            css_classes=["ts-sample-tweets"])
        self.diff_with = pn.widgets.Select(name="Compare with", options=[], width=160, css_classes=["ts-diff-with"])
        self.diff_button = pn.widgets.Button(name="Show diff", width=110, css_classes=["ts-show-diff"], align="end")
        self.diff = pn.pane.HTML("", css_classes=["ts-diff"], sizing_mode="stretch_width")

        self.approve.on_click(lambda _: self._status("approved"))
        self.flag.on_click(lambda _: self._status("flagged"))
        self.reset.on_click(lambda _: self._status("auto"))
        self.undo.on_click(self._on_undo)
        self.save.on_click(self._on_save)
        self.discard.on_click(self._on_discard)
        self.relabel.on_click(self._on_relabel)
        self.rebuild.on_click(self._on_rebuild)
        self.diff_button.on_click(self._on_diff)
        m.param.watch(self._redraw_table, ["version", "layer_filter", "status_filter", "text_filter", "weakest_first"])
        state.param.watch(self._redraw_table, ["scope_id"])
        m.param.watch(self._redraw_status, ["message", "error", "version"])
        state.param.watch(self._redraw_jobs, ["jobs_version"])

        self.layout = pn.Column(
            self.title,
            pn.Row(self.filters, self.job_status, self.job_progress),
            pn.Row(self.approve, self.flag, self.reset, self.undo, self.discard, self.save, pn.Spacer(width=16),
                   self.provider, self.relabel, self.rebuild),
            self.status,
            self.table,
            pn.Row(pn.Column(self.sample_title, self.samples, sizing_mode="stretch_width"),
                   pn.Column(pn.pane.Markdown("#### Unsaved changes"), self.changes,
                             pn.pane.Markdown("#### Diff with an earlier version"),
                             pn.Row(self.diff_with, self.diff_button), self.diff,
                             sizing_mode="stretch_width"),
                   sizing_mode="stretch_width"),
            sizing_mode="stretch_width", name="Labels")
        self._redraw_table()
        self._redraw_status()
        self._redraw_jobs()

    def __panel__(self):
        return self.layout

    # ---- drawing
    def _redraw_table(self, *_):
        m = self.model
        frame = m.view_frame()
        keep = [c for c in m.selected if c in set(frame["cluster"])]
        current = self.table.value
        if len(current) == len(frame) and list(current["cluster"]) == list(frame["cluster"]):
            # same rows: patch the changed cells so the curator keeps their page and scroll position
            patches = {}
            for col in (*EDITABLE, "status"):
                changed = np.flatnonzero(current[col].astype(str).to_numpy() != frame[col].astype(str).to_numpy())
                if len(changed):
                    patches[col] = [(int(i), frame.at[int(i), col]) for i in changed]
            if patches:
                self.table.patch(patches, as_index=False)
        else:
            self.table.value = frame
        self.table.selection = [int(i) for i in np.flatnonzero(frame["cluster"].isin(keep).to_numpy())]
        ds = self.state.current_dataset()
        ids = ds.list_ids("toponymy") if ds is not None else []
        others = [i for i in reversed(ids) if i != m.base_id]
        self.diff_with.options = others
        previous = m.previous_id()
        if previous in others:
            self.diff_with.value = previous
        counts = m.status_counts()
        if m.base_id is None:
            self.title.object = ("<h3>Labels</h3><div class='ts-labels-empty'>No labels yet: run <b>Labels</b> "
                                 "in the Stages view (or pick a labels artifact in the sidebar).</div>")
        else:
            origin = m.sidecar.get("edited_from")
            self.title.object = (
                f"<h3 style='margin:4px 0'>Labels <code class='ts-labels-id'>{html.escape(m.base_id)}</code>"
                + (f" <span style='font-size:13px;color:#555'>edited from {html.escape(origin)}</span>" if origin else "")
                + "</h3><div style='font-size:13px'>" + f"{len(m.working)} clusters · "
                + " · ".join(f"<span style='color:{STATUS_STYLE[s]}'>{counts[s]} {s}</span>" for s in STATUSES)
                + f" · <span class='ts-labels-scope-note' style='color:#555'>{html.escape(m.scope_note())}</span>"
                + "</div>")
        self._redraw_changes()

    def _redraw_changes(self):
        m = self.model
        changes = m.changes()
        dirty = bool(len(changes))
        self.save.disabled = not dirty
        self.discard.disabled = not dirty
        self.undo.disabled = not m.undo_stack
        busy = m.last_job is not None and m.last_job.is_active
        self.relabel.disabled = dirty or busy or m.base_id is None
        self.rebuild.disabled = dirty or busy or m.base_id is None
        if not dirty:
            self.changes.object = "<i class='ts-no-changes'>No unsaved edits.</i>"
            return
        rows = "".join(
            f"<tr><td>{html.escape(r.cluster)}</td><td>{html.escape(r.field)}</td>"
            f"<td style='color:#888'>{html.escape(str(r.before))}</td><td><b>{html.escape(str(r.after))}</b></td></tr>"
            for r in changes.itertuples(index=False))
        self.changes.object = (f"<div class='ts-pending' data-count='{len(changes)}'><b>{len(changes)}</b> unsaved "
                               f"change(s) — <b>Save labels</b> writes a new labels artifact; <b>Undo</b> reverts "
                               f"the last edit.<table style='font-size:12px'>{rows}</table></div>")

    def _redraw_status(self, *_):
        self.status.object = _alert(self.model.message, self.model.error)
        self._redraw_changes()

    def _redraw_jobs(self, *_):
        job = self.model.last_job
        if job is None:
            return
        fraction = job.fraction
        self.job_progress.visible = job.is_active
        self.job_progress.value = -1 if fraction is None and job.is_active else int((fraction or 0) * 1000)
        elapsed = f"{job.elapsed:.1f} s" if job.elapsed is not None else ""
        if job.status == "failed":
            text = f"<span style='color:#cf222e'><b>{html.escape(job.title)} failed</b>: {html.escape(job.error or '')}</span>"
        elif job.status == "done":
            text = f"<span class='ts-labels-job-done'>{html.escape(job.title)}: done in {elapsed} → " \
                   f"<code>{html.escape(str(job.result))}</code></span>"
        else:
            text = f"{html.escape(job.title)}: {html.escape(job.status)} {elapsed} {html.escape(job.message)}"
        self.job_status.object = f"<div class='ts-labels-job-status' data-status='{job.status}'>{text}</div>"
        self._redraw_changes()

    # ---- events
    def _on_edit(self, event):
        frame = self.table.value
        cluster = str(frame.iloc[event.row]["cluster"])
        try:
            self.model.edit(cluster, event.column, event.value)
        except LabelEditError as exc:
            self.model.error = str(exc)
            self._redraw_table()  # put the saved value back in the cell
            return
        self.model.message = f"Edited the {event.column} of {cluster}."

    def _selected_clusters(self) -> list[str]:
        frame = self.table.value
        return [str(frame.iloc[i]["cluster"]) for i in self.table.selection if i < len(frame)]

    def _on_selection(self, event):
        clusters = self._selected_clusters()
        self.model.selected = clusters
        if not clusters:
            self.sample_title.object = "<i>Select a cluster to read its tweets.</i>"
            self.samples.value = self.samples.value.iloc[0:0]
            return
        # the row ticked last is the one the curator is looking at
        new = [i for i in event.new if i not in (event.old or [])]
        frame = self.table.value
        cluster = str(frame.iloc[new[-1]]["cluster"]) if new and new[-1] < len(frame) else clusters[-1]
        self.model.highlight(cluster)
        members = self.model.members(cluster)
        label = self.model.value(cluster, "label")
        self.sample_title.object = (f"<b class='ts-sample-cluster' data-cluster='{html.escape(cluster)}'>"
                                    f"{html.escape(cluster)}: {html.escape(str(label))}</b> — "
                                    f"{min(SAMPLE_SIZE, len(members))} of {len(members):,} tweets "
                                    f"(highlighted on the map)")
        try:
            self.samples.value = self.model.sample_tweets(cluster)
        except Exception as exc:  # noqa: BLE001
            self.sample_title.object += f"<div style='color:#cf222e'>{html.escape(str(exc))}</div>"

    def _on_row_click(self, event):
        """Clicking a row shows its cluster: highlighted, and the map zoomed to it."""
        frame = self.table.value
        if event.row is not None and 0 <= event.row < len(frame):
            self.model.highlight(str(frame.iloc[event.row]["cluster"]))

    def _status(self, status: str):
        try:
            n = self.model.set_status(self._selected_clusters(), status)
        except LabelEditError as exc:
            self.model.error = str(exc)
            return
        self.model.message = f"{n} cluster(s) marked {status}."

    def _on_undo(self, _):
        self.model.undo()

    def _on_discard(self, _):
        self.model.discard()
        self.model.message = "Unsaved edits discarded."

    def _on_save(self, _):
        self.model.save()
        self._redraw_table()

    def _on_relabel(self, _):
        try:
            self.model.relabel(self._selected_clusters(), self.model.relabel_config(self.provider.value))
        except LabelEditError as exc:
            self.model.error = str(exc)
        self._redraw_jobs()

    def _on_rebuild(self, _):
        try:
            self.model.rebuild_scope()
        except LabelEditError as exc:
            self.model.error = str(exc)
        self._redraw_jobs()

    def _on_diff(self, _):
        other = self.diff_with.value
        try:
            frame = self.model.diff(other)
        except Exception as exc:  # noqa: BLE001
            self.diff.object = f"<span style='color:#cf222e'>Diff failed: {html.escape(str(exc))}</span>"
            return
        self.diff.object = diff_html(frame, other, self.model.base_id)


def create_view(state):
    return LabelsView(state)


TITLE = "Labels"
