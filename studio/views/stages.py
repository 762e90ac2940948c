"""Stages view: one card per pipeline stage — its config (``pn.Param``), inputs, Run/Cancel,
progress, log, timing and the artifact it produced.

``StageCardModel`` is the widget-free part (what a run would use, what to show); the cards
redraw from it whenever the session's ``jobs_version``/``artifacts_version`` change.
"""

from __future__ import annotations

import html
from typing import Optional

import param

from pipeline.stages.registry import STAGES, Stage
from studio.build import RUN_ALL, pending_stages, submit_build
from studio.jobs import DONE, FAILED, QUEUED, RUNNING
from studio.state import state_param_for


class StageCardModel(param.Parameterized):
    """One stage for one session: its config object and how a run is submitted."""

    def __init__(self, spec: Stage, state, **params):
        super().__init__(**params)
        self.spec = spec
        self.state = state
        self.config = spec.default_config()

    def input_ids(self) -> dict[str, Optional[str]]:
        """The session's chosen artifact for each input the studio offers a choice of (others follow the lineage)."""
        chosen = self.state.input_ids()
        pairs = ((item.name, state_param_for(item.kind, dict(item.match))) for item in self.spec.inputs)
        return {name: chosen.get(param_name) for name, param_name in pairs if param_name}

    def status(self) -> dict:
        ds = self.state.current_dataset()
        if ds is None:
            return {"status": "missing", "id": None, "reason": "no dataset"}
        job = self.current_job()
        if job is not None and job.is_active:
            return {"status": "running" if job.status == RUNNING else "queued", "id": None,
                    "reason": job.message}
        try:
            return self.spec.status(ds)
        except Exception as exc:  # noqa: BLE001 - a broken sidecar must not break the page
            return {"status": "error", "id": None, "reason": str(exc)}

    def current_job(self):
        if not self.state.dataset:
            return None
        return self.state.runner.latest(dataset=self.state.dataset, stage=self.spec.name)

    def run(self):
        """Submit this stage for the current dataset with the chosen inputs; returns the Job."""
        ds = self.state.current_dataset()
        if ds is None:
            raise ValueError("choose or load a dataset first")
        active = self.state.runner.active(dataset=ds.name)
        if any(j.stage == self.spec.name for j in active):
            raise ValueError(f"{self.spec.title} is already queued or running for '{ds.name}'")
        run_config = type(self.config)(**self.config.to_dict()) if self.config is not None else None
        inputs = self.input_ids()
        spec = self.spec

        def job(progress):
            return spec.execute(ds, run_config, inputs, progress)

        shown = ", ".join(f"{k}={v}" for k, v in inputs.items() if v) or "latest inputs"
        submitted = self.state.runner.submit(ds.name, spec.name, job, title=f"{spec.title} ({shown})")
        # shown by the Jobs view (issue 9) and kept in the job record
        submitted.params = {"inputs": {k: v for k, v in inputs.items() if v},
                            "config": run_config.to_dict() if run_config is not None else {}}
        return submitted

    def cancel(self) -> bool:
        job = self.current_job()
        return bool(job and self.state.runner.cancel(job.id))

    def artifact_summary(self, artifact_id: Optional[str]) -> str:
        ds = self.state.current_dataset()
        if ds is None or not artifact_id or not ds.exists(artifact_id):
            return ""
        side = ds.sidecar(artifact_id)
        timings = side.get("timings") or {}
        total = timings.get("total_s")
        parts = [f"<b>{html.escape(artifact_id)}</b>"]
        if side.get("rows") is not None:
            parts.append(f"{side['rows']:,} rows")
        if isinstance(total, (int, float)):
            parts.append(f"{total:.1f} s")
        if side.get("created_at"):
            parts.append(html.escape(str(side["created_at"])))
        inputs = side.get("inputs") or {}
        refs = [f"{k}={v}" for k, v in inputs.items() if k != "input"]
        if refs:
            parts.append("from " + html.escape(", ".join(refs)))
        return " · ".join(parts)


def config_widget_types(config) -> dict:
    """Number inputs instead of sliders: knobs may be unset (None) or span huge ranges (seeds)."""
    import panel as pn

    widgets = {}
    for name, p in config.param.objects("existing").items():
        if isinstance(p, param.Integer):
            widgets[name] = {"type": pn.widgets.IntInput}
        elif isinstance(p, param.Number):
            widgets[name] = {"type": pn.widgets.FloatInput}
        else:
            continue
        if p.bounds:
            lo, hi = p.bounds
            widgets[name].update({k: v for k, v in (("start", lo), ("end", hi)) if v is not None})
    return widgets


STATUS_COLOURS = {"missing": "#888", "done": "#1a7f37", "stale": "#b35900", "running": "#0969da",
                  "queued": "#0969da", "error": "#cf222e"}


def status_badge(status: str) -> str:
    colour = STATUS_COLOURS.get(status, "#888")
    return (f'<span class="ts-status ts-status-{status}" style="background:{colour};color:white;'
            f'border-radius:8px;padding:1px 8px;font-size:12px">{html.escape(status)}</span>')


class StageCard:
    """The widgets of one stage card."""

    def __init__(self, model: StageCardModel):
        import panel as pn

        self.model = model
        spec = model.spec
        self.header = pn.pane.HTML("", css_classes=["ts-stage-header"])
        self.inputs = pn.pane.HTML("", css_classes=["ts-stage-inputs"])
        self.run_button = pn.widgets.Button(name=f"Run {spec.title}", button_type="primary",
                                            css_classes=["ts-run", f"ts-run-{spec.name}"], width=150)
        self.cancel_button = pn.widgets.Button(name="Cancel", button_type="warning", disabled=True,
                                               css_classes=["ts-cancel", f"ts-cancel-{spec.name}"], width=90)
        self.progress = pn.indicators.Progress(value=0, max=1000, sizing_mode="stretch_width",
                                               visible=False, css_classes=[f"ts-progress-{spec.name}"])
        self.message = pn.pane.HTML("", css_classes=["ts-stage-message", f"ts-message-{spec.name}"])
        self.log = pn.pane.HTML("", css_classes=["ts-stage-log"], sizing_mode="stretch_width")
        self.artifact = pn.pane.HTML("", css_classes=["ts-stage-artifact", f"ts-artifact-{spec.name}"])
        self.run_button.on_click(self._on_run)
        self.cancel_button.on_click(lambda _: model.cancel())
        if model.config is not None:
            config_widgets = pn.Param(model.config, show_name=False, sizing_mode="stretch_width",
                                      widgets=config_widget_types(model.config),
                                      css_classes=["ts-stage-config"])
        else:
            config_widgets = pn.pane.Markdown("_No settings._")
        self.card = pn.Card(
            pn.pane.Markdown(spec.description, margin=(0, 10)),
            self.inputs, config_widgets, pn.Row(self.run_button, self.cancel_button),
            self.progress, self.message, self.artifact, self.log,
            header=self.header, collapsed=False, sizing_mode="stretch_width",
            css_classes=["ts-stage-card", f"ts-stage-{spec.name}"], margin=(5, 5),
        )
        self.refresh()

    def _on_run(self, _event) -> None:
        try:
            self.model.run()
        except ValueError as exc:
            self.message.object = f'<span class="ts-error" style="color:#cf222e">{html.escape(str(exc))}</span>'
            return
        self.refresh()

    def refresh(self) -> None:
        model, spec = self.model, self.model.spec
        status = model.status()
        self.header.object = (f'<b style="font-size:15px">{html.escape(spec.title)}</b>&nbsp; '
                              f'{status_badge(status["status"])}'
                              + (f' <span style="color:#666;font-size:12px">{html.escape(status["id"] or "")}</span>'))
        inputs = {k: v for k, v in model.input_ids().items()}
        self.inputs.object = ("Inputs: " + ", ".join(f"<code>{html.escape(k)}</code>={html.escape(v or 'latest')}"
                                                     for k, v in inputs.items())) if inputs else ""
        job = model.current_job()
        active = job is not None and job.is_active
        self.run_button.disabled = active or model.state.current_dataset() is None
        self.cancel_button.disabled = not active
        if job is None:
            self.progress.visible = False
            self.message.object = html.escape(status.get("reason") or "") if status["status"] == "stale" else ""
            self.log.object = ""
        else:
            self.progress.visible = job.status in (RUNNING, QUEUED)
            fraction = job.fraction
            self.progress.value = -1 if fraction is None and job.status == RUNNING else int((fraction or 0) * 1000)
            elapsed = f"{job.elapsed:.1f} s" if job.elapsed is not None else ""
            if job.status == FAILED:
                text = (f'<span class="ts-error" style="color:#cf222e"><b>failed</b> after {elapsed}: '
                        f'{html.escape(job.error or "")}</span>')
            elif job.status == DONE:
                text = f'<span class="ts-done">done in {elapsed}</span>'
            else:
                text = f"{html.escape(job.status)} {elapsed} — {html.escape(job.message)}"
            self.message.object = text
            lines = "\n".join(job.log[-14:])
            self.log.object = (f'<details><summary>log ({len(job.log)} lines)</summary>'
                               f'<pre style="max-height:220px;overflow:auto;font-size:11px">{html.escape(lines)}</pre>'
                               f'</details>')
        summary = model.artifact_summary(status.get("id"))
        self.artifact.object = (f'<span class="ts-artifact-text">Latest artifact: {summary}</span>' if summary else
                                (f"{html.escape(spec.title)}: <code>{html.escape(status['id'])}</code> written."
                                 if status.get("id") else ""))


class StagesView:
    """All stage cards of the session."""

    def __init__(self, state):
        import panel as pn

        self.state = state
        self.cards = [StageCard(StageCardModel(spec, state)) for spec in STAGES]
        self.title = pn.pane.Markdown("", css_classes=["ts-stages-title"])
        self.run_all = pn.widgets.Button(name="Run all missing/stale", button_type="primary",
                                         css_classes=["ts-run-all"], width=220)
        self.run_all_info = pn.pane.HTML("", css_classes=["ts-run-all-info"], sizing_mode="stretch_width")
        self.run_all.on_click(self._on_run_all)
        self.layout = pn.Column(self.title, pn.Row(self.run_all, self.run_all_info, align="center"),
                                *[c.card for c in self.cards], sizing_mode="stretch_width", name="Stages")
        state.param.watch(self.refresh, ["jobs_version", "artifacts_version", "dataset", "embedding_id",
                                         "umap_id", "cluster_id", "toponymy_id"])
        self.refresh()

    def refresh(self, *_events) -> None:
        self.title.object = (f"## Stages of `{self.state.dataset}`" if self.state.dataset
                             else "## Stages — load an archive first (sidebar)")
        for card in self.cards:
            card.refresh()
        self._refresh_run_all()

    def _refresh_run_all(self) -> None:
        ds = self.state.current_dataset()
        job = self.state.runner.latest(dataset=ds.name, stage=RUN_ALL) if ds is not None else None
        busy = bool(ds is not None and self.state.runner.active(dataset=ds.name))
        pending = pending_stages(ds) if ds is not None else []
        self.run_all.disabled = ds is None or busy or not pending
        if job is not None and job.is_active:
            pct = f" {job.fraction:.0%}" if job.fraction is not None else ""
            text = f"Running every missing/stale stage…{pct} {job.message}"
        elif pending:
            text = "To run: " + ", ".join(pending)
        else:
            text = "Every stage is up to date." if ds is not None else ""
        self.run_all_info.object = f'<span class="ts-run-all-text">{html.escape(text)}</span>'

    def _on_run_all(self, _event) -> None:
        ds = self.state.current_dataset()
        if ds is not None and not self.state.runner.active(dataset=ds.name):
            submit_build(self.state.runner, self.state.workspace, ds.name)
            self._refresh_run_all()

    def __panel__(self):
        return self.layout


def create_view(state):
    return StagesView(state)


TITLE = "Stages"
