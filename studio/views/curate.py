"""Row deletion (tombstones): delete the tweets selected on the map, after a confirmation.

``CurateModel`` is the widget-free part: a two-step delete (request → confirm) of the
session's map selection, an undo stack of this session's deletions, restore of any
tombstoned row, and re-applying the tombstones to the chosen scope as a background job
(``pipeline.stages.scope.apply_tombstones``) so the serving files — and so every publish —
no longer hold the deleted text. ``create_curate_panel(state)`` is the UI component the map
and publish views embed.
"""

from __future__ import annotations

import html
from typing import Optional

import pandas as pd
import param

from pipeline.core import tombstones
from pipeline.stages.scope import apply_tombstones, load_scope_input

PREVIEW_ROWS = 5
TEXT_PREVIEW_CHARS = 140


class CurateModel(param.Parameterized):
    """Tombstones of the session's dataset: request, confirm, undo, restore, apply to the scope."""

    pending = param.List(default=[], item_type=int, doc="ls_index waiting for the curator's confirmation.")
    version = param.Integer(default=0, doc="Bumped whenever the tombstone set changed.")
    message = param.String(default="")
    error = param.String(default="")

    def __init__(self, state, auto_apply: bool = True, **params):
        super().__init__(**params)
        self.state = state
        self.auto_apply = auto_apply
        self.undo_stack: list[tuple[str, list[int]]] = []  # (dataset, ls_index added) per confirmed delete
        self.last_apply_job = None
        self._tweets: Optional[pd.DataFrame] = None
        self._tweets_key = None
        self._ids: Optional[dict[str, int]] = None
        self._ids_key = None
        state.param.watch(self._on_dataset, ["dataset"])

    def _on_dataset(self, *_):
        self.pending = []
        self.message = self.error = ""

    # ---- reads
    def dataset(self):
        return self.state.current_dataset()

    def tombstoned(self) -> list[int]:
        ds = self.dataset()
        return sorted(tombstones.load_tombstones(ds)) if ds is not None else []

    def tweets(self) -> pd.DataFrame:
        """text / created_at / tweet_type of the dataset (read once per ingest)."""
        ds = self.dataset()
        if ds is None:
            return pd.DataFrame(columns=["text", "created_at", "tweet_type"])
        key = (str(ds.path), ds.input_fingerprint())
        if self._tweets is None or self._tweets_key != key:
            self._tweets = ds.read_input(["text", "created_at", "tweet_type"])
            self._tweets_key = key
        return self._tweets

    def rows_frame(self, indices) -> pd.DataFrame:
        """ls_index, date, type and a text preview of the given rows (from input.parquet, local only)."""
        indices = [int(i) for i in indices]
        tweets = self.tweets()
        valid = [i for i in indices if 0 <= i < len(tweets)]
        sub = tweets.iloc[valid]
        return pd.DataFrame({
            "ls_index": valid,
            "created_at": pd.to_datetime(sub["created_at"], errors="coerce", utc=True).dt.strftime("%Y-%m-%d").to_numpy()
            if len(valid) else [],
            "tweet_type": sub["tweet_type"].astype(str).to_numpy(),
            "text": [str(t)[:TEXT_PREVIEW_CHARS] for t in sub["text"].fillna("")],
        })

    def tombstone_frame(self) -> pd.DataFrame:
        return self.rows_frame(self.tombstoned())

    def scope_state(self) -> dict:
        """How the chosen scope relates to the tombstones: rows still to blank / to restore."""
        ds, scope_id = self.dataset(), self.state.scope_id
        if ds is None or not scope_id or not ds.exists(scope_id):
            return {"scope_id": None, "missing": [], "stale": []}
        deleted = load_scope_input(ds, scope_id, ["ls_index", "deleted"])
        mask = pd.Series(deleted["deleted"].to_numpy(dtype=bool), index=deleted["ls_index"].to_numpy())
        by_index = mask.sort_index().to_numpy()
        missing, stale = tombstones.unapplied_tombstones(ds, by_index)
        return {"scope_id": scope_id, "missing": missing, "stale": stale}

    def rows_for(self, text: str) -> tuple[list[int], list[str]]:
        """ls_index of pasted tweet ids / tweet URLs / ``#<ls_index>`` tokens, and the tokens not found."""
        ds = self.dataset()
        if ds is None:
            return [], []
        if not (text or "").strip():
            return [], []
        key = (str(ds.path), ds.input_fingerprint())
        if self._ids is None or self._ids_key != key:
            self._ids = tombstones.tweet_rows(ds)
            self._ids_key = key
        return tombstones.rows_for_references(text, self._ids)

    def request_delete_text(self, text: str) -> list[int]:
        """Stage the tweets named by ids/URLs (``#123`` = ls_index 123); unknown tokens are an error."""
        rows, unknown = self.rows_for(text)
        if unknown:
            self.pending = []
            self.error = (f"Not tweets of this dataset: {', '.join(unknown[:5])}"
                          + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
                          + ". Paste tweet ids or links (…/status/<id>), or #<ls_index>.")
            return []
        return self.request_delete(rows)

    # ---- the two-step delete
    def request_delete(self, indices=None) -> list[int]:
        """Stage rows for deletion (default: the map selection); nothing changes until ``confirm_delete``."""
        self.error = ""
        indices = self.state.selection if indices is None else indices
        current = set(self.tombstoned())
        staged = sorted({int(i) for i in indices} - current)
        if not staged:
            self.error = ("Nothing to delete: select tweets on the map (box or lasso) first."
                          if not indices else "The selected tweets are already deleted.")
        self.pending = staged
        return staged

    def confirmation_text(self) -> str:
        n = len(self.pending)
        if not n:
            return ""
        scope = self.state.scope_id
        return (f"Delete {n:,} tweet(s)? Their text and personal fields will be blanked in "
                + (f"{scope} and " if scope else "")
                + "everything published from it. You can undo this until you publish.")

    def cancel_request(self) -> None:
        self.pending = []
        self.message = "Deletion cancelled; nothing changed."

    def confirm_delete(self) -> int:
        ds = self.dataset()
        if ds is None or not self.pending:
            return 0
        rows = list(self.pending)
        try:
            tombstones.add_tombstones(ds, rows)
        except (ValueError, OSError) as exc:
            self.error = str(exc)
            return 0
        self.undo_stack.append((ds.name, rows))
        self.pending = []
        self.message = f"Deleted {len(rows):,} tweet(s)."
        self._changed()
        return len(rows)

    # ---- undo / restore
    def can_undo(self) -> bool:
        ds = self.dataset()
        return bool(ds is not None and self.undo_stack and self.undo_stack[-1][0] == ds.name)

    def undo(self) -> int:
        """Restore the rows of this session's most recent deletion."""
        if not self.can_undo():
            self.error = "Nothing to undo."
            return 0
        _, rows = self.undo_stack.pop()
        return self.restore(rows, from_undo=True)

    def restore(self, indices, from_undo: bool = False) -> int:
        ds = self.dataset()
        rows = sorted({int(i) for i in indices})
        if ds is None or not rows:
            return 0
        try:
            tombstones.remove_tombstones(ds, rows)
        except (ValueError, OSError) as exc:
            self.error = str(exc)
            return 0
        self.message = f"Restored {len(rows):,} tweet(s)" + (" (undo)." if from_undo else ".")
        self._changed()
        return len(rows)

    def _changed(self) -> None:
        self.error = ""
        self.version += 1
        self.state.artifacts_version += 1  # the map greys deleted tweets; the publish view re-checks
        if self.auto_apply:
            self.apply_to_scope()

    # ---- serving files
    def apply_to_scope(self):
        """Re-apply the tombstones to the chosen scope as a job (None when there is no scope)."""
        ds, scope_id = self.dataset(), self.state.scope_id
        if ds is None or not scope_id:
            self.message += " No scope yet: the next scope build applies them."
            return None
        self.last_apply_job = self.state.runner.submit(
            ds.name, "tombstones", lambda progress: apply_tombstones(ds, scope_id, progress),
            title=f"apply tombstones to {scope_id}")
        self.last_apply_job.params = {"scope_id": scope_id, "tombstoned": len(self.tombstoned())}
        self.message += f" Updating {scope_id}… ({self.last_apply_job.id})"
        return self.last_apply_job


def _status_html(model: CurateModel) -> str:
    esc = html.escape
    parts = []
    if model.message:
        parts.append(f'<div class="ts-curate-message">{esc(model.message)}</div>')
    if model.error:
        parts.append(f'<div class="ts-curate-error" style="color:#cf222e">{esc(model.error)}</div>')
    return "".join(parts)


def create_curate_panel(state, model: Optional[CurateModel] = None):
    """The delete/undo/restore component (embedded by the map and publish views)."""
    import panel as pn

    model = model or CurateModel(state)
    selected = pn.pane.HTML("", css_classes=["ts-curate-selected"], align="center")
    delete = pn.widgets.Button(name="Delete selected…", button_type="danger", width=170,
                               css_classes=["ts-delete-selected"])
    confirm_text = pn.pane.Alert("", alert_type="danger", visible=False, css_classes=["ts-delete-confirm-text"])
    confirm = pn.widgets.Button(name="Confirm delete", button_type="danger", width=150, visible=False,
                                css_classes=["ts-delete-confirm"])
    cancel = pn.widgets.Button(name="Cancel", button_type="light", width=90, visible=False,
                               css_classes=["ts-delete-cancel"])
    by_id = pn.widgets.TextInput(name="…or tweets by id / link", placeholder="tweet ids or …/status/<id> links",
                                 width=300, css_classes=["ts-delete-ids"])
    delete_ids = pn.widgets.Button(name="Delete these…", button_type="danger", width=130,
                                   css_classes=["ts-delete-by-id"], align="end")
    undo = pn.widgets.Button(name="Undo last delete", button_type="default", width=150,
                             css_classes=["ts-delete-undo"])
    restore = pn.widgets.Button(name="Restore checked", button_type="default", width=150,
                                css_classes=["ts-delete-restore"])
    apply = pn.widgets.Button(name="Re-apply to scope", button_type="default", width=150,
                              css_classes=["ts-delete-apply"])
    status = pn.pane.HTML("", css_classes=["ts-curate-status"])
    scope_info = pn.pane.HTML("", css_classes=["ts-curate-scope"])
    preview = pn.widgets.Tabulator(pd.DataFrame(columns=["ls_index", "created_at", "tweet_type", "text"]),
                                   disabled=True, selectable=False, layout="fit_columns",
                                   widths={"ls_index": "10%", "created_at": "12%", "tweet_type": "10%", "text": "68%"}, show_index=False, height=160, visible=False,
                                   sizing_mode="stretch_width", css_classes=["ts-delete-preview"])
    table = pn.widgets.Tabulator(model.tombstone_frame(), disabled=True, show_index=False, selectable="checkbox",
                                 pagination="local", page_size=10, sizing_mode="stretch_width",
                                 layout="fit_data_stretch", css_classes=["ts-tombstone-table"])

    def refresh(*_):
        n_sel = len(state.selection)
        selected.object = f"<b>{n_sel:,}</b> tweet(s) selected on the map"
        delete.disabled = n_sel == 0 or state.current_dataset() is None
        showing = bool(model.pending)
        confirm_text.object = html.escape(model.confirmation_text())
        for widget in (confirm_text, confirm, cancel, preview):
            widget.visible = showing
        if showing:
            preview.value = model.rows_frame(model.pending[:200])
        undo.disabled = not model.can_undo()
        table.value = model.tombstone_frame()
        status.object = _status_html(model)
        try:
            info = model.scope_state()
        except Exception as exc:  # noqa: BLE001 - a broken scope must not hide the deletions
            scope_info.object = f'<span style="color:#cf222e">{html.escape(str(exc))}</span>'
            return
        n_dead = len(table.value)
        text = f"<b class='ts-tombstone-count'>{n_dead:,}</b> tweet(s) deleted"
        if info["scope_id"]:
            todo = len(info["missing"]) + len(info["stale"])
            text += (f" · {html.escape(info['scope_id'])} is up to date" if not todo else
                     f" · <span class='ts-tombstones-unapplied' style='color:#b35900'>{todo} change(s) not yet "
                     f"applied to {html.escape(info['scope_id'])}</span>")
        scope_info.object = text

    def on_delete(_):
        model.request_delete()
        refresh()

    def on_delete_ids(_):
        model.request_delete_text(by_id.value)
        refresh()

    def on_confirm(_):
        if model.confirm_delete():
            by_id.value = ""
        refresh()

    def on_cancel(_):
        model.cancel_request()
        refresh()

    def on_undo(_):
        model.undo()
        refresh()

    def on_restore(_):
        frame = table.value
        rows = [int(frame.iloc[i]["ls_index"]) for i in table.selection if i < len(frame)]
        if not rows:
            model.error = "Tick the deleted tweets to restore first."
        else:
            model.restore(rows)
        refresh()

    def on_apply(_):
        model.message = ""
        model.apply_to_scope()
        refresh()

    delete.on_click(on_delete)
    delete_ids.on_click(on_delete_ids)
    confirm.on_click(on_confirm)
    cancel.on_click(on_cancel)
    undo.on_click(on_undo)
    restore.on_click(on_restore)
    apply.on_click(on_apply)
    state.param.watch(refresh, ["selection", "dataset", "scope_id", "artifacts_version"])
    refresh()
    panel = pn.Column(
        pn.pane.Markdown("#### Delete tweets"),
        pn.Row(selected, delete, undo),
        pn.Row(by_id, delete_ids),
        confirm_text, pn.Row(confirm, cancel), preview, status, scope_info,
        pn.Card(table, pn.Row(restore, apply), title="Deleted tweets (local only, never published)",
                collapsed=True, sizing_mode="stretch_width", css_classes=["ts-tombstone-card"]),
        sizing_mode="stretch_width", css_classes=["ts-curate"],
    )
    panel.curate_model = model
    panel.refresh = refresh
    panel.parts = {"selected": selected, "delete": delete, "by_id": by_id, "delete_ids": delete_ids,
                   "confirm_text": confirm_text, "confirm": confirm, "cancel": cancel, "undo": undo,
                   "restore": restore, "apply": apply, "status": status, "scope_info": scope_info,
                   "preview": preview, "table": table}
    return panel
