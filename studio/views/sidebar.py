"""Sidebar: dataset picker, archive loading, stage status list and lineage selectors."""

from __future__ import annotations

import html

from pipeline.stages.registry import STAGES
from studio.views.load import create_load_panel
from studio.views.stages import status_badge


def stage_rows(state) -> list[dict]:
    """[{stage, title, status, id, reason}] for the current dataset (running jobs win over disk)."""
    ds = state.current_dataset()
    rows = []
    for spec in STAGES:
        if ds is None:
            info = {"status": "missing", "id": None, "reason": "no dataset"}
        else:
            try:
                info = spec.status(ds)
            except Exception as exc:  # noqa: BLE001
                info = {"status": "error", "id": None, "reason": str(exc)}
            active = state.runner.active(dataset=ds.name, stage=spec.name)
            if active:
                job = active[0]
                info = {"status": "running" if job.status == "running" else "queued", "id": info.get("id"),
                        "reason": job.message}
        rows.append({"stage": spec.name, "title": spec.title, **info})
    return rows


def stage_list_html(rows: list[dict]) -> str:
    items = []
    for row in rows:
        reason = f' title="{html.escape(row.get("reason") or "")}"'
        ident = f' <span style="color:#666;font-size:11px">{html.escape(row["id"])}</span>' \
            if row.get("id") and row["id"] != row["stage"] else ""
        items.append(f'<li class="ts-stage-row ts-stage-row-{row["stage"]}" data-status="{row["status"]}"{reason}>'
                     f'{html.escape(row["title"])} {status_badge(row["status"])}{ident}</li>')
    return '<ul style="list-style:none;padding-left:0;margin:0;line-height:1.9">' + "".join(items) + "</ul>"


def create_sidebar(state):
    import panel as pn

    dataset = pn.widgets.Select.from_param(state.param.dataset, name="Dataset", sizing_mode="stretch_width",
                                           css_classes=["ts-dataset-picker"])
    lineage = pn.Column(
        pn.pane.Markdown("### Lineage"),
        pn.widgets.Select.from_param(state.param.embedding_id, name="Embedding", sizing_mode="stretch_width"),
        pn.widgets.Select.from_param(state.param.umap_id, name="UMAP (display)", sizing_mode="stretch_width"),
        pn.widgets.Select.from_param(state.param.cluster_id, name="Clustering", sizing_mode="stretch_width",
                                     css_classes=["ts-cluster-picker"]),
        pn.widgets.Select.from_param(state.param.toponymy_id, name="Labels", sizing_mode="stretch_width"),
        sizing_mode="stretch_width",
    )
    stages = pn.pane.HTML("", css_classes=["ts-stage-list"], sizing_mode="stretch_width")
    jobs = pn.pane.HTML("", css_classes=["ts-sidebar-jobs"], sizing_mode="stretch_width")
    rescan = pn.widgets.Button(name="Rescan data folder", button_type="light", sizing_mode="stretch_width")
    rescan.on_click(lambda _: state.refresh())

    def refresh(*_):
        stages.object = stage_list_html(stage_rows(state))
        active = state.runner.active()
        if active:
            lines = []
            for job in active:
                pct = f"{job.fraction:.0%}" if job.fraction is not None else "…"
                lines.append(f"<div><b>{html.escape(job.stage)}</b> ({html.escape(job.dataset)}) "
                             f"{html.escape(job.status)} {pct} <span style='color:#666'>"
                             f"{html.escape(job.message[:80])}</span></div>")
            jobs.object = "<div class='ts-active-jobs'>" + "".join(lines) + "</div>"
        else:
            jobs.object = ""

    state.param.watch(refresh, ["dataset", "jobs_version", "artifacts_version"])
    refresh()
    load_panel, _load_model = create_load_panel(state)
    return pn.Column(
        dataset, pn.pane.Markdown("### Stages"), stages, jobs, lineage, pn.layout.Divider(),
        load_panel, rescan, sizing_mode="stretch_width", css_classes=["ts-sidebar"],
    )
