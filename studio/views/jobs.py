"""Jobs view: running and past background jobs with parameters, timings, logs and errors.

``JobsModel`` merges the live jobs of the process-wide runner with the records earlier
processes left in ``<data_dir>/.jobs/*.json`` (so a restart does not lose the history);
``JobsView`` shows them as a table plus the details of the selected job.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Optional

import pandas as pd

from studio.jobs import FAILED, RUNNING, Job

TABLE_COLUMNS = ["id", "status", "stage", "dataset", "title", "created_at", "elapsed_s", "progress", "message",
                 "error"]
MAX_RECORDS = 500


def job_params(job: Job) -> dict:
    """Parameters of a job: the ``params`` a submitter attached (when any)."""
    params = getattr(job, "params", None)
    return dict(params) if isinstance(params, dict) else {}


def job_record(job: Job) -> dict:
    """A live job as the table/detail dict (same shape as the records on disk, plus params)."""
    record = job.summary()
    record["params"] = job_params(job) or record.get("params") or {}
    record["live"] = True
    return record


def read_records(log_dir: Optional[Path], limit: int = MAX_RECORDS) -> list[dict]:
    """Finished-job records written by this or an earlier studio process (newest first)."""
    if log_dir is None or not Path(log_dir).is_dir():
        return []
    paths = sorted(Path(log_dir).glob("job-*.json"), key=lambda p: p.name, reverse=True)[:limit]
    records = []
    for path in paths:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a half-written or foreign file is not a job
        if isinstance(record, dict) and record.get("id"):
            record["live"] = False
            records.append(record)
    return records


def progress_text(record: dict) -> str:
    status = record.get("status")
    if status == "done":
        return "100%"
    total, done = record.get("total"), record.get("done") or 0
    if total:
        return f"{min(1.0, max(0.0, done / total)):.0%}"
    return "…" if status == RUNNING else ""


class JobsModel:
    """All jobs the studio knows about, newest first."""

    def __init__(self, runner):
        self.runner = runner

    def records(self, dataset: Optional[str] = None) -> list[dict]:
        live = [job_record(j) for j in self.runner.jobs()]
        seen = {r["id"] for r in live}
        past = [r for r in read_records(getattr(self.runner, "log_dir", None)) if r["id"] not in seen]
        merged = live + past
        if dataset:
            merged = [r for r in merged if r.get("dataset") == dataset]
        # ids embed the runner's start time and a counter, so they sort in submission order
        return sorted(merged, key=lambda r: (r.get("created_at") or "", r["id"]), reverse=True)

    def frame(self, dataset: Optional[str] = None) -> pd.DataFrame:
        rows = []
        for r in self.records(dataset):
            rows.append({
                "id": r["id"], "status": r.get("status", ""), "stage": r.get("stage", ""),
                "dataset": r.get("dataset", ""), "title": r.get("title", ""),
                "created_at": r.get("created_at", ""),
                "elapsed_s": r.get("elapsed_s"), "progress": progress_text(r),
                "message": (r.get("message") or "")[:120], "error": (r.get("error") or "")[:200],
            })
        return pd.DataFrame(rows, columns=TABLE_COLUMNS)

    def record(self, job_id: Optional[str]) -> Optional[dict]:
        if not job_id:
            return None
        job = self.runner.get(job_id)
        if job is not None:
            return job_record(job)
        return next((r for r in read_records(getattr(self.runner, "log_dir", None)) if r["id"] == job_id), None)

    def cancel(self, job_id: str) -> bool:
        return self.runner.cancel(job_id)


def detail_html(record: Optional[dict]) -> str:
    """The selected job: status, timings, parameters, result, error and the full log (escaped)."""
    if record is None:
        return '<div class="ts-job-detail ts-job-empty">Select a job to see its parameters, log and errors.</div>'
    esc = html.escape
    status = record.get("status", "")
    colour = {"done": "#1a7f37", "failed": "#cf222e", "cancelled": "#888", "running": "#0969da",
              "queued": "#0969da"}.get(status, "#555")
    elapsed = record.get("elapsed_s")
    parts = [
        f'<div class="ts-job-detail" data-job-id="{esc(record["id"])}" data-status="{esc(status)}">',
        f'<div><b>{esc(record.get("title") or record["id"])}</b> '
        f'<span style="background:{colour};color:white;border-radius:8px;padding:1px 8px;font-size:12px">'
        f'{esc(status)}</span></div>',
        f'<div style="color:#555;font-size:12px">{esc(record["id"])} · stage <code>{esc(record.get("stage", ""))}</code>'
        f' · dataset <code>{esc(record.get("dataset", ""))}</code> · created {esc(record.get("created_at") or "")}'
        + (f" · {elapsed:.1f} s" if isinstance(elapsed, (int, float)) else "") + "</div>",
    ]
    params = record.get("params") or {}
    if params:
        parts.append("<div><b>Parameters</b><pre class='ts-job-params' style='font-size:11px'>"
                     f"{esc(json.dumps(params, indent=1, default=str))}</pre></div>")
    if record.get("message") and status == RUNNING:
        parts.append(f"<div>{esc(record['message'])}</div>")
    if record.get("result") is not None:
        parts.append(f"<div><b>Result</b> <code class='ts-job-result'>"
                     f"{esc(json.dumps(record['result'], default=str)[:2000])}</code></div>")
    if record.get("error"):
        kind = record.get("error_type") or ("error" if status == FAILED else "")
        parts.append(f'<div class="ts-job-error" style="color:#cf222e"><b>{esc(kind)}</b>: {esc(record["error"])}</div>')
    log = record.get("log") or []
    parts.append(f"<details open><summary>log ({len(log)} lines)</summary>"
                 f"<pre class='ts-job-log' style='max-height:360px;overflow:auto;font-size:11px'>"
                 f"{esc(chr(10).join(log))}</pre></details></div>")
    return "".join(parts)


class JobsView:
    """A table of jobs (this dataset or all) and the details of the selected one."""

    def __init__(self, state):
        import panel as pn

        self.state = state
        self.model = JobsModel(state.runner)
        self.selected_id: Optional[str] = None
        self.only_dataset = pn.widgets.Checkbox(name="only this dataset", value=False, align="center",
                                                css_classes=["ts-jobs-only-dataset"])
        self.table = pn.widgets.Tabulator(
            self.model.frame(), disabled=True, selectable=1, show_index=False, pagination="local",
            page_size=15, sizing_mode="stretch_width", layout="fit_columns",
            widths={"id": "15%", "status": "7%", "stage": "8%", "dataset": "7%", "title": "22%", "created_at": "12%",
                    "elapsed_s": "6%", "progress": "6%", "message": "9%", "error": "8%"}, css_classes=["ts-jobs-table"])
        self.detail = pn.pane.HTML(detail_html(None), sizing_mode="stretch_width", css_classes=["ts-job-detail-pane"])
        self.cancel_button = pn.widgets.Button(name="Cancel job", button_type="warning", disabled=True,
                                               css_classes=["ts-job-cancel"], width=120)
        self.summary = pn.pane.HTML("", css_classes=["ts-jobs-summary"])
        self.table.param.watch(self._on_select, "selection")
        self.cancel_button.on_click(self._on_cancel)
        self.only_dataset.param.watch(self.refresh, "value")
        state.param.watch(self.refresh, ["jobs_version", "dataset"])
        self.layout = pn.Column(
            pn.pane.Markdown("## Jobs"),
            pn.Row(self.summary, self.only_dataset),
            self.table, pn.Row(self.cancel_button), self.detail,
            sizing_mode="stretch_width", name="Jobs")
        self.refresh()

    def __panel__(self):
        return self.layout

    def _frame(self) -> pd.DataFrame:
        return self.model.frame(self.state.dataset if self.only_dataset.value else None)

    def refresh(self, *_events) -> None:
        frame = self._frame()
        self.table.value = frame
        ids = frame["id"].tolist()
        if self.selected_id in ids:
            index = ids.index(self.selected_id)
            if self.table.selection != [index]:
                self.table.selection = [index]
        active = int(frame["status"].isin(["running", "queued"]).sum()) if len(frame) else 0
        failed = int((frame["status"] == "failed").sum()) if len(frame) else 0
        self.summary.object = (f"<b>{len(frame)}</b> job(s): <b class='ts-jobs-active'>{active}</b> running or queued, "
                               f"<b>{failed}</b> failed")
        self._show_detail()

    def _on_select(self, event) -> None:
        frame = self.table.value
        if event.new and len(frame) > event.new[0]:
            self.selected_id = str(frame.iloc[event.new[0]]["id"])
        self._show_detail()

    def _show_detail(self) -> None:
        record = self.model.record(self.selected_id)
        self.detail.object = detail_html(record)
        self.cancel_button.disabled = not (record and record.get("live") and record.get("status") in ("queued", "running"))

    def _on_cancel(self, _event) -> None:
        if self.selected_id:
            self.model.cancel(self.selected_id)
            self.refresh()


def create_view(state):
    return JobsView(state)


TITLE = "Jobs"
