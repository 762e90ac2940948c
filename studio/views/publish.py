"""Publish view: target, deploy gate, plan (shown before a confirm step), publish with byte
progress, result with keys and URLs, and the history of earlier publishes.

``PublishModel`` is the widget-free flow over ``pipeline.publish.execute``: planning and publishing
run as jobs of the studio's runner (a plan HEADs every object on the target; an upload can
take minutes), and the model walks through ``idle → planning → planned → publishing →
published`` (or ``failed``). A plan is dropped whenever what it was made for (dataset,
scope, target, LanceDB choice) changes, so the curator never confirms a stale plan.
With a public URL, the publish job ends with the serving check (Range reads, CORS, headers
through that URL) and the result shows each failed check with what to change. Unpublish
(after the curator types the scope id or dataset name) and rollback run as jobs too.
"""

from __future__ import annotations

import html
import json
import os
from typing import Mapping, Optional

import pandas as pd
import param

from pipeline.core.errors import PublishError
from pipeline.publish.execute import (
    configured_targets,
    execute_publish,
    lance_storage_options,
    plan_publish,
    publish_history,
)
from pipeline.publish.rollback import plan_rollback
from pipeline.publish.serving_check import (
    check_public_url,
    check_serving,
    cors_origin_from_env,
    public_url_from_env,
    published_objects,
)
from pipeline.publish.targets import open_target, redact_url, resolve_endpoint
from pipeline.publish.unpublish import execute_unpublish, plan_unpublish
from studio.views.curate import create_curate_panel

IDLE, PLANNING, PLANNED, PUBLISHING, PUBLISHED, FAILED = "idle", "planning", "planned", "publishing", "published", "failed"
PLAN_COLUMNS = ["key", "size", "status", "content_type"]
HISTORY_COLUMNS = ["id", "published_at", "scope_id", "target", "uploaded", "unchanged", "bytes_uploaded",
                   "manifest_key"]


def human_bytes(n: Optional[float]) -> str:
    if n is None:
        return ""
    n = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def target_uri_of(target) -> str:
    return target.describe().get("uri", "") if hasattr(target, "describe") else str(target)


def plan_is_current(plan) -> bool:
    """True while every local file of the plan still has the size and mtime it was planned with."""
    for obj in plan.objects:
        try:
            st = obj.path.stat()
        except OSError:
            return False
        if st.st_size != obj.size or (obj.mtime_ns and st.st_mtime_ns != obj.mtime_ns):
            return False
    return True


class PublishModel(param.Parameterized):
    """The publish flow of one session."""

    target = param.String(default="", doc="file://DIR or s3://bucket[/prefix].")
    lancedb = param.Boolean(default=False, doc="Also create/replace the scope's LanceDB table.")
    lancedb_uri = param.String(default="", doc="LanceDB folder, s3:// or db:// URI.")
    public_url = param.String(default="", doc="Public base URL of the target (http(s)); after a publish the "
                                              "serving check reads the data through it.")
    cors_origin = param.String(default="", doc="Origin of the app that reads the data (the CORS check's Origin).")
    phase = param.Selector(default=IDLE, objects=[IDLE, PLANNING, PLANNED, PUBLISHING, PUBLISHED, FAILED])
    version = param.Integer(default=0)
    error = param.String(default="")

    def __init__(self, state, env: Optional[Mapping[str, str]] = None, **params):
        super().__init__(**params)
        self.state = state
        self.env = os.environ if env is None else env
        self.plan = None
        self.plan_job = None
        self.publish_job = None
        self.unpublish_job = None
        self.unpublished: Optional[dict] = None
        self._planned_tombstones: Optional[int] = None
        self.result: Optional[dict] = None
        self.failure: Optional[dict] = None
        targets = self.targets()
        ready = [t for t in targets if t.get("ready") and t["kind"] != "lancedb"]
        # the configured remote wins over the offline folder when both exist
        preferred = next((t for t in ready if t["kind"] == "s3"), None) or (ready[0] if ready else None)
        if preferred and not self.target:
            self.target = preferred["uri"]
        lance = next((t for t in targets if t["kind"] == "lancedb"), None)
        if lance and not self.lancedb_uri:
            self.lancedb_uri = lance["uri"]
            self.lancedb = True  # a configured LanceDB is part of every publish (untick to skip)
        self.public_url = self.public_url or public_url_from_env(self.env) or ""
        self.cors_origin = self.cors_origin or cors_origin_from_env(self.env) or ""
        state.param.watch(self._invalidate, ["dataset", "scope_id", "artifacts_version"])
        self.param.watch(self._invalidate, ["target", "lancedb", "lancedb_uri"])

    # ---- targets
    def targets(self) -> list[dict]:
        return configured_targets(env=self.env, data_dir=self.state.data_dir)

    def default_lancedb_uri(self) -> str:
        ds = self.state.current_dataset()
        if self.lancedb_uri:
            return self.lancedb_uri
        return str(ds.lancedb_dir) if ds is not None else ""

    # ---- plan
    def _invalidate(self, *events) -> None:
        if self.phase in (PLANNING, PUBLISHING):
            return  # the running job decides what comes next
        if events and all(getattr(e, "name", "") == "artifacts_version" for e in events):
            # any job's end bumps artifacts_version: drop the plan only if its files changed
            if self.plan is not None and not self.plan_is_current():
                self.plan = None
                self.phase = IDLE
                self.error = "The scope's files changed since the plan was made: plan again."
                self.version += 1
            return
        if self.plan is not None or self.phase in (PLANNED, FAILED):
            self.plan = None
            self.phase = IDLE
            self.version += 1

    def _tombstones_stamp(self, dataset) -> Optional[int]:
        path = dataset.tombstones_path
        return path.stat().st_mtime_ns if path.exists() else None

    def plan_is_current(self) -> bool:
        """The plan still describes what would be sent: same files, same deleted tweets."""
        if self.plan is None:
            return False
        return plan_is_current(self.plan) and self._tombstones_stamp(self.plan.dataset) == self._planned_tombstones

    def request_plan(self):
        """Gate + plan as a job (reads every remote object's metadata; changes nothing)."""
        ds, scope_id = self.state.current_dataset(), self.state.scope_id
        self.error = ""
        if ds is None:
            self.error = "Choose a dataset first."
            return None
        if not scope_id:
            self.error = "This dataset has no scope yet: run Scope in the Stages view first."
            return None
        if self.phase in (PLANNING, PUBLISHING):
            self.error = "A plan or publish is already running."
            return None
        target = self.target.strip()
        lancedb = (self.lancedb_uri.strip() or self.default_lancedb_uri()) if self.lancedb else None
        env = self.env

        def job(progress):
            progress.update(0, None, f"checking {scope_id} and comparing with {target}")
            return plan_publish(ds, scope_id, target or None, lancedb=lancedb, env=env)

        self.plan, self.result, self.failure = None, None, None
        # a deletion after this point must be applied and planned again before it can go out
        self._planned_tombstones = self._tombstones_stamp(ds)
        self.plan_job = self.state.runner.submit(ds.name, "publish-plan", job, title=f"plan publish of {scope_id}")
        self.plan_job.params = {"scope_id": scope_id, "target": target or "default", "lancedb": lancedb}
        self.phase = PLANNING
        self.version += 1
        return self.plan_job

    def _lancedb_choice(self):
        return (self.lancedb_uri.strip() or self.default_lancedb_uri()) if self.lancedb else False

    def request_rollback(self):
        """Publish the previous publish again (from the local history) as a job; deletions stay."""
        ds = self.state.current_dataset()
        self.error = ""
        if ds is None or self.phase in (PLANNING, PUBLISHING):
            self.error = "Choose a dataset and wait for the running job first."
            return None
        check = self._serving_check_args()
        if check is None:
            return None
        target, lancedb, env = self.target.strip() or None, self._lancedb_choice(), self.env
        job = self.state.runner.submit(
            ds.name, "publish",
            lambda progress: publish_and_check(plan_rollback(ds, target, lancedb=lancedb, env=env), progress, *check),
            title=f"roll back {ds.name} on {target or 'the default target'}")
        job.params = {"rollback": True, "target": target or "default", "public_url": redact_url(check[0])}
        self.publish_job, self.phase = job, PUBLISHING
        self.version += 1
        return job

    def request_unpublish(self, typed: str, scope_only: bool):
        """Unpublish the scope (or the whole dataset) after the curator typed its name."""
        ds, scope_id = self.state.current_dataset(), self.state.scope_id
        self.error = ""
        if ds is None:
            self.error = "Choose a dataset first."
            return None
        expected = scope_id if scope_only else ds.name
        if (typed or "").strip() != expected:
            self.error = f"Type {expected} exactly to confirm the unpublish."
            return None
        if self.phase in (PLANNING, PUBLISHING) or (self.unpublish_job is not None and self.unpublish_job.is_active):
            self.error = "Wait for the running plan, publish or unpublish first."
            return None
        target_uri, lancedb, env = self.target.strip(), self._lancedb_choice() or None, self.env
        target_uri = target_uri or self.targets()[0]["uri"]
        local = {sid: (ds.sidecar(sid).get("scope_uid"), ds.sidecar(sid).get("lancedb_table_id"))
                 for sid in ds.list_ids("scopes")}
        options = {}
        if lancedb and lancedb.startswith("s3://"):  # the CDN's S3/R2 account; secrets stay in memory
            options["storage_options"] = lance_storage_options(resolve_endpoint(None, env), env)

        def job(progress):
            target = open_target(target_uri, env=env)
            plan = plan_unpublish(ds.name, target, scope_id if scope_only else None, lancedb=lancedb,
                                  lancedb_options=options, local_scope_uids=local)
            return execute_unpublish(plan, progress)

        self.unpublished = None

        self.unpublish_job = self.state.runner.submit(ds.name, "unpublish", job,
                                                      title=f"unpublish {expected} from {target_uri or 'default'}")
        self.unpublish_job.params = {"scope_id": scope_id if scope_only else None, "target": target_uri}
        self.version += 1
        return self.unpublish_job

    def _serving_check_args(self) -> Optional[tuple]:
        """(public URL or None, origin or None) for the check after the publish; None (with an
        error) when the URL cannot be checked, so nothing is published with a typo in it."""
        url, origin = self.public_url.strip(), self.cors_origin.strip()
        if url:
            try:
                check_public_url(url)
            except PublishError as exc:
                self.error = str(exc)
                return None
        return url or None, origin or None

    def can_publish(self) -> bool:
        return self.phase == PLANNED and self.plan is not None and not self.plan.blocked

    def publish(self, confirmed: bool):
        """Carry out the shown plan as a job; needs the curator's explicit confirmation."""
        self.error = ""
        if not confirmed:
            self.error = "Tick the confirmation first: the plan above is what will be uploaded."
            return None
        if self.plan is not None and not self.plan_is_current():
            self.plan, self.phase = None, IDLE
            self.version += 1
            self.error = "Tweets were deleted or restored, or the scope changed, since the plan was made: plan again."
            return None
        if not self.can_publish():
            self.error = ("The deploy gate failed: fix the problems listed, rebuild the scope and plan again."
                          if self.plan is not None and self.plan.blocked else "Make a plan first.")
            return None
        check = self._serving_check_args()
        if check is None:
            return None
        plan = self.plan
        self.publish_job = self.state.runner.submit(
            plan.dataset.name, "publish", lambda progress: publish_and_check(plan, progress, *check),
            title=f"publish {plan.scope_id} to {target_uri_of(plan.target)}")
        self.publish_job.params = {"scope_id": plan.scope_id, "target": target_uri_of(plan.target),
                                   "objects_to_send": plan.totals["objects_to_send"],
                                   "bytes_to_send": plan.totals["bytes_to_send"], "lancedb": plan.lancedb_uri,
                                   "public_url": redact_url(check[0])}
        self.phase = PUBLISHING
        self.version += 1
        return self.publish_job

    def poll(self) -> bool:
        """Advance the phase from the jobs' state; True when something changed."""
        changed = False
        if self.phase == PLANNING and self.plan_job is not None and not self.plan_job.is_active:
            if self.plan_job.status == "done":
                self.plan = self.plan_job.result
                self.phase = PLANNED
            else:
                self.error = f"Planning failed: {self.plan_job.error or self.plan_job.status}"
                self.phase = FAILED
            changed = True
        if self.phase == PUBLISHING and self.publish_job is not None and not self.publish_job.is_active:
            if self.publish_job.status == "done":
                self.result = self.publish_job.result
                self.phase = PUBLISHED
            else:
                self.failure = {"error": self.publish_job.error, "status": self.publish_job.status,
                                "log": self.publish_job.log[-8:]}
                self.error = f"Publish {self.publish_job.status}: {self.publish_job.error or ''}"
                self.phase = FAILED
            self.plan = None  # what is on the target changed: plan again
            changed = True
        job = self.unpublish_job
        if job is not None and not job.is_active and self.unpublished is None:
            if job.status == "done":
                self.unpublished = job.result
            else:
                self.unpublished = {"error": job.error or job.status}
                self.error = f"Unpublish {job.status}: {job.error or ''} (run it again to finish)"
            if self.phase in (PLANNED, PUBLISHED):  # the target changed under the plan / result
                self.plan, self.phase = None, IDLE
            changed = True
        if changed:
            self.version += 1
        return changed

    # ---- frames
    def plan_frame(self) -> pd.DataFrame:
        if self.plan is None:
            return pd.DataFrame(columns=PLAN_COLUMNS)
        rows = self.plan.rows
        frame = pd.DataFrame(rows, columns=[*PLAN_COLUMNS, "sha256"])[PLAN_COLUMNS]
        frame["size"] = frame["size"].map(human_bytes)
        return frame

    def result_frame(self) -> pd.DataFrame:
        if not self.result:
            return pd.DataFrame(columns=["key", "status", "url"])
        urls = self.result.get("urls") or {}
        base = (self.result.get("target") or {}).get("uri", "")
        uploaded = set(self.result.get("uploaded") or [])
        rows = [{"key": o["key"], "status": "uploaded" if o["key"] in uploaded else "unchanged",
                 "url": urls.get(o["key"]) or f"{base.rstrip('/')}/{o['key']}"}
                for o in self.result.get("objects") or []]
        manifest = self.result.get("manifest_key")
        if manifest:
            rows.append({"key": manifest, "status": "uploaded (last)",
                         "url": urls.get(manifest) or f"{base.rstrip('/')}/{manifest}"})
        return pd.DataFrame(rows, columns=["key", "status", "url"])

    def history_frame(self) -> pd.DataFrame:
        ds = self.state.current_dataset()
        if ds is None:
            return pd.DataFrame(columns=HISTORY_COLUMNS)
        try:
            records = publish_history(ds)
        except Exception:  # noqa: BLE001 - a broken record must not break the view
            return pd.DataFrame(columns=HISTORY_COLUMNS)
        rows = [{"id": r.get("id", ""), "published_at": r.get("published_at", ""), "scope_id": r.get("scope_id", ""),
                 "target": (r.get("target") or {}).get("uri", ""), "uploaded": len(r.get("uploaded") or []),
                 "unchanged": len(r.get("unchanged") or []), "bytes_uploaded": human_bytes(r.get("bytes_uploaded")),
                 "manifest_key": r.get("manifest_key", "")} for r in records]
        return pd.DataFrame(rows, columns=HISTORY_COLUMNS)


def publish_and_check(plan, progress, public_url: Optional[str], origin: Optional[str]) -> dict:
    """The publish job: carry out the plan, then (with a public URL) the serving check through it."""
    record = execute_publish(plan, progress)
    if not public_url:
        return record
    progress.update(0, None, f"serving check through {redact_url(public_url)}")
    try:
        report = check_serving(public_url, published_objects(plan), origin=origin).to_dict()
    except Exception as exc:  # noqa: BLE001 - the publish is done: a broken check must not report it failed
        report = {"public_url": public_url, "origin": origin or "", "ok": False, "checks": [
            {"name": "serving check", "ok": False, "detail": f"{type(exc).__name__}: {exc}",
             "fix": "check the public URL, then publish again (nothing new is sent)"}]}
    shown = redact_url(public_url)
    if shown != public_url:  # a user:password@ in the URL never reaches the job record or the page
        report = json.loads(json.dumps(report).replace(public_url.rstrip("/"), shown.rstrip("/")))
    return {**record, "serving_check": report}


# --------------------------------------------------------------------------- rendering helpers

def scope_facts(dataset, scope_id: Optional[str]) -> str:
    """'(labels toponymy-003, 212,000 rows, 3 deleted)' for the scope line."""
    if dataset is None or not scope_id or not dataset.exists(scope_id):
        return ""
    side = dataset.sidecar(scope_id)
    parts = [f"labels {side.get('labels_id') or 'default'}"]
    if side.get("rows") is not None:
        parts.append(f"{side['rows']:,} rows")
    parts.append(f"{side.get('deleted_count', 0):,} deleted")
    return "(" + ", ".join(parts) + ")"


def targets_html(targets: list[dict]) -> str:
    """The configured targets: names, URIs, endpoint and which credential variables — never values."""
    items = []
    for t in targets:
        ready = ("<span style='color:#1a7f37'>ready</span>" if t.get("ready")
                 else "<span style='color:#cf222e'>not ready</span>")
        extra = []
        if t.get("endpoint"):
            extra.append(f"endpoint {html.escape(str(t['endpoint']))}")
        if t.get("credentials"):
            extra.append(f"credentials: {html.escape(str(t['credentials']))}")
        if t.get("detail"):
            extra.append(html.escape(str(t["detail"])))
        items.append(f"<li class='ts-target' data-kind='{html.escape(t['kind'])}'><b>{html.escape(t['name'])}</b> "
                     f"<code>{html.escape(t['uri'])}</code> {ready}<br><span style='color:#555;font-size:12px'>"
                     f"{' · '.join(extra)}</span></li>")
    return "<ul class='ts-targets' style='padding-left:18px'>" + "".join(items) + "</ul>"


def gate_html(plan) -> str:
    if plan is None:
        return ""
    if not plan.gate_errors:
        return (f"<div class='ts-gate ts-gate-pass' style='color:#1a7f37'><b>✓ Deploy gate passed</b>: "
                f"{html.escape(plan.scope_id)} is valid.</div>")
    items = "".join(f"<li>{html.escape(e)}</li>" for e in plan.gate_errors[:30])
    more = f"<li>… {len(plan.gate_errors) - 30} more</li>" if len(plan.gate_errors) > 30 else ""
    return (f"<div class='ts-gate ts-gate-fail' style='color:#cf222e'><b>✗ Deploy gate failed</b> "
            f"({len(plan.gate_errors)} problem(s)); {html.escape(plan.scope_id)} cannot be published:"
            f"<ul>{items}{more}</ul></div>")


def plan_summary_html(plan) -> str:
    if plan is None:
        return ""
    tot = plan.totals
    desc = plan.target.describe()
    lines = [f"<div class='ts-plan-summary' data-to-send='{tot['objects_to_send']}'>"
             f"<b>Plan</b>: {html.escape(plan.dataset.name)} <code>{html.escape(plan.scope_id)}</code> → "
             f"<code>{html.escape(desc.get('uri', ''))}</code>"
             + (f" (endpoint {html.escape(str(desc.get('endpoint')))})" if desc.get("endpoint") else "")
             + f"<br>{tot['objects']} objects: <b>{tot['new']} new</b>, <b>{tot['changed']} changed</b>, "
               f"{tot['unchanged']} unchanged — <b class='ts-plan-bytes'>{human_bytes(tot['bytes_to_send'])}</b> to "
               f"send ({tot['bytes_to_send']:,} bytes) of {human_bytes(tot['bytes_total'])}"]
    if plan.lancedb_uri:
        lines.append(f"<br>LanceDB table <code>{html.escape(str(plan.lancedb_table_id))}</code> in "
                     f"<code>{html.escape(plan.lancedb_uri)}</code> (created or replaced)")
    if plan.prune_keys:
        lines.append(f"<br>{len(plan.prune_keys)} remote object(s) will be deleted")
    for w in plan.warnings:
        lines.append(f"<div style='color:#b35900'>warning: {html.escape(w)}</div>")
    lines.append("</div>")
    return "".join(lines)


def result_html(result: Optional[dict]) -> str:
    if not result:
        return ""
    lance = result.get("lancedb")
    lance_text = ""
    if isinstance(lance, dict):
        lance_text = (f"<br>LanceDB: table <code>{html.escape(str(lance.get('table') or lance.get('name') or result.get('lancedb_table_id')))}</code>"
                      f" ({html.escape(str(lance.get('rows', '')))} rows)")
    return (f"<div class='ts-publish-result' style='color:#1a7f37'><b>✓ Published</b> "
            f"<code>{html.escape(result.get('id', ''))}</code>: {len(result.get('uploaded') or [])} object(s) uploaded "
            f"({human_bytes(result.get('bytes_uploaded'))}), {len(result.get('unchanged') or [])} unchanged; manifest "
            f"<code>{html.escape(result.get('manifest_key', ''))}</code> at {html.escape(result.get('published_at', ''))}"
            f"{lance_text}</div>")


def serving_html(report: Optional[dict]) -> str:
    """The serving check's outcome: one line per check, each failure with what to change."""
    if not report:
        return ""
    checks = report.get("checks") or []
    failed = [c for c in checks if not c.get("ok")]
    where = (f"<code>{html.escape(str(report.get('public_url', '')))}</code> for origin "
             f"<code>{html.escape(str(report.get('origin', '')))}</code>")
    if not failed:
        head = (f"<b style='color:#1a7f37'>✓ Serving check passed</b>: {len(checks)} check(s) through {where}")
    else:
        head = (f"<b style='color:#cf222e'>✗ Serving check: {len(failed)} of {len(checks)} check(s) failed</b> "
                f"through {where} — published, but the app cannot read it this way until you change:")
    items = []
    for c in checks:
        ok = bool(c.get("ok"))
        fix = "" if ok or not c.get("fix") else (
            f"<div class='ts-serving-fix' style='margin-left:1em'>fix: <code>{html.escape(c['fix'])}</code></div>")
        items.append(f"<li class='ts-serving-{'ok' if ok else 'fail'}'>{'✓' if ok else '✗'} "
                     f"<b>{html.escape(c.get('name', ''))}</b>: {html.escape(c.get('detail', ''))}{fix}</li>")
    return (f"<div class='ts-serving-check' data-ok='{str(not failed).lower()}'>{head}"
            f"<ul style='font-size:12px'>{''.join(items)}</ul></div>")


def unpublish_html(result: Optional[dict]) -> str:
    if not result or result.get("error"):
        return ""  # a failure shows in the error line
    what = f"{result.get('dataset')}/{result['scope_id']}" if result.get("scope_id") else result.get("dataset")
    target = redact_url(str(result.get("target")))
    return (f"<div class='ts-unpublish-result' style='color:#1a7f37'><b>✓ Unpublished</b> "
            f"<code>{html.escape(str(what))}</code> from <code>{html.escape(target)}</code>: "
            f"{len(result.get('deleted') or [])} object(s) deleted, {len(result.get('tables_dropped') or [])} "
            f"LanceDB table(s) dropped, {result.get('meta_rows_deleted', 0)} _meta row(s) deleted; nothing left "
            "(verified by listing)</div>")


def failure_html(model: PublishModel) -> str:
    if not model.error:
        return ""
    tail = ""
    if model.failure and model.failure.get("log"):
        tail = ("<details><summary>log</summary><pre style='font-size:11px'>"
                + html.escape("\n".join(model.failure["log"])) + "</pre></details>")
    return f"<div class='ts-publish-error' style='color:#cf222e'><b>{html.escape(model.error)}</b>{tail}</div>"


class PublishView:
    """The publish tab of a StudioState."""

    def __init__(self, state, model: Optional[PublishModel] = None):
        import panel as pn

        self.state = state
        self.model = model or PublishModel(state)
        m = self.model
        self.targets = pn.pane.HTML(targets_html(m.targets()), css_classes=["ts-publish-targets"],
                                    sizing_mode="stretch_width")
        choices = [t["uri"] for t in m.targets() if t["kind"] != "lancedb"]
        if m.target and m.target not in choices:
            choices.append(m.target)
        self.target = pn.widgets.Select(name="Target", options=choices, value=m.target or (choices[0] if choices else None),
                                        width=420, css_classes=["ts-publish-target"])
        self.custom = pn.widgets.TextInput(name="…or another target", placeholder="s3://bucket/prefix or file:///dir",
                                           width=320, css_classes=["ts-publish-custom-target"])
        self.lancedb = pn.widgets.Checkbox.from_param(m.param.lancedb, name="Also write the LanceDB table",
                                                      css_classes=["ts-publish-lancedb"], align="end")
        self.lancedb_uri = pn.widgets.TextInput.from_param(m.param.lancedb_uri, name="LanceDB URI",
                                                           placeholder=m.default_lancedb_uri() or "folder, s3:// or db://",
                                                           width=320)
        self.public_url = pn.widgets.TextInput.from_param(
            m.param.public_url, name="Public URL (checked after the publish)",
            placeholder="https://data.example.org (default $R2_PUBLIC_URL)", width=320,
            css_classes=["ts-publish-public-url"])
        self.cors_origin = pn.widgets.TextInput.from_param(
            m.param.cors_origin, name="CORS origin of the app", placeholder="https://app.example.org",
            width=320, css_classes=["ts-publish-cors-origin"])
        self.plan_button = pn.widgets.Button(name="Check and plan", button_type="primary", width=160,
                                             css_classes=["ts-publish-plan"])
        self.scope_info = pn.pane.HTML("", css_classes=["ts-publish-scope"])
        self.progress = pn.indicators.Progress(value=0, max=1000, visible=False, sizing_mode="stretch_width",
                                               css_classes=["ts-publish-progress"])
        self.progress_text = pn.pane.HTML("", css_classes=["ts-publish-progress-text"])
        self.gate = pn.pane.HTML("", css_classes=["ts-publish-gate"], sizing_mode="stretch_width")
        self.summary = pn.pane.HTML("", css_classes=["ts-publish-summary"], sizing_mode="stretch_width")
        self.plan_table = pn.widgets.Tabulator(m.plan_frame(), disabled=True, selectable=False, show_index=False, visible=False,
                                               sizing_mode="stretch_width", layout="fit_data_stretch",
                                               css_classes=["ts-plan-table"], pagination="local", page_size=25)
        self.confirm = pn.widgets.Checkbox(name="I checked the plan: publish these objects", value=False,
                                           visible=False, css_classes=["ts-publish-confirm"], align="center")
        self.publish_button = pn.widgets.Button(name="Publish", button_type="danger", disabled=True, visible=False,
                                                width=160, css_classes=["ts-publish-go"])
        self.errors = pn.pane.HTML("", css_classes=["ts-publish-errors"], sizing_mode="stretch_width")
        self.result = pn.pane.HTML("", css_classes=["ts-publish-result-pane"], sizing_mode="stretch_width")
        self.serving = pn.pane.HTML("", css_classes=["ts-publish-serving"], sizing_mode="stretch_width")
        self.unpublish_result = pn.pane.HTML("", css_classes=["ts-unpublish-result-pane"],
                                             sizing_mode="stretch_width")
        self.result_table = pn.widgets.Tabulator(m.result_frame(), disabled=True, selectable=False, show_index=False, visible=False,
                                                 sizing_mode="stretch_width", layout="fit_data_stretch",
                                                 css_classes=["ts-result-table"], pagination="local", page_size=25)
        self.history = pn.widgets.Tabulator(m.history_frame(), disabled=True, selectable=False, show_index=False,
                                            sizing_mode="stretch_width", layout="fit_data_stretch",
                                            css_classes=["ts-publish-history"], pagination="local", page_size=10)
        self.rollback_button = pn.widgets.Button(name="Roll back to the previous publish", width=260,
                                                 css_classes=["ts-publish-rollback"])
        self.unpublish_scope_only = pn.widgets.Checkbox(name="only this scope", value=True,
                                                        css_classes=["ts-unpublish-scope-only"], align="end")
        self.unpublish_typed = pn.widgets.TextInput(name="Type the scope id (or dataset name) to confirm",
                                                    width=320, css_classes=["ts-unpublish-typed"])
        self.unpublish_button = pn.widgets.Button(name="Unpublish", button_type="danger", width=160,
                                                  css_classes=["ts-unpublish-go"], align="end")
        self.rollback_button.on_click(lambda _: (m.request_rollback(), self._redraw()))
        self.unpublish_button.on_click(lambda _: (m.request_unpublish(self.unpublish_typed.value,
                                                                      self.unpublish_scope_only.value),
                                                  setattr(self.unpublish_typed, "value", ""), self._redraw()))

        self.target.param.watch(lambda e: self._set_target(e.new), "value")
        self.custom.param.watch(lambda e: self._set_target(e.new.strip() or self.target.value), "value")
        self.plan_button.on_click(lambda _: self._on_plan())
        self.confirm.param.watch(lambda e: self._redraw(), "value")
        self.unpublish_scope_only.param.watch(lambda e: self._redraw(), "value")
        self.publish_button.on_click(lambda _: self._on_publish())
        m.param.watch(lambda e: self._redraw(), ["version", "error", "phase"])
        state.param.watch(self._on_jobs, ["jobs_version"])
        state.param.watch(lambda *_: self._redraw(), ["dataset", "scope_id"])
        curate = create_curate_panel(state)
        self.layout = pn.Column(
            pn.pane.Markdown("## Publish"),
            pn.pane.Markdown("#### Configured targets (from the environment; secrets are never shown)"),
            self.targets,
            pn.Row(self.target, self.custom),
            pn.Row(self.lancedb, self.lancedb_uri),
            pn.Row(self.public_url, self.cors_origin),
            self.scope_info,
            self.plan_button,
            self.progress, self.progress_text, self.errors, self.gate, self.summary, self.plan_table,
            pn.Row(self.confirm, self.publish_button),
            self.result, self.serving, self.result_table,
            pn.pane.Markdown("#### History"), self.history, self.rollback_button,
            pn.pane.Markdown("#### Unpublish (removes objects, manifest entries, LanceDB tables and _meta rows)"),
            pn.Row(self.unpublish_scope_only, self.unpublish_typed, self.unpublish_button),
            self.unpublish_result,
            pn.layout.Divider(), curate,
            sizing_mode="stretch_width", name="Publish")
        self._redraw()

    def __panel__(self):
        return self.layout

    def _set_target(self, uri: str) -> None:
        self.model.target = uri or ""

    def _on_plan(self) -> None:
        self.confirm.value = False
        self.model.request_plan()
        self._redraw()

    def _on_publish(self) -> None:
        self.model.publish(self.confirm.value)
        self.confirm.value = False
        self._redraw()

    def _on_jobs(self, *_):
        self.model.poll()
        self._redraw_progress()

    def _redraw_progress(self) -> None:
        m = self.model
        job = m.publish_job if m.phase == PUBLISHING else m.plan_job if m.phase == PLANNING else None
        if job is None and m.unpublish_job is not None and m.unpublish_job.is_active:
            job = m.unpublish_job
        if job is None:
            self.progress.visible = False
            self.progress_text.object = ""
            return
        self.progress.visible = True
        fraction = job.fraction
        self.progress.value = -1 if fraction is None else int(fraction * 1000)
        elapsed = f"{job.elapsed:.1f} s" if job.elapsed is not None else ""
        detail = ""
        if m.phase == PUBLISHING and job.total:
            detail = f" — {human_bytes(job.done)} of {human_bytes(job.total)}"
        self.progress_text.object = (f"<span class='ts-publish-running'>{html.escape(job.title)}: "
                                     f"{html.escape(job.status)} {elapsed}{detail} {html.escape(job.message)}</span>")

    def _redraw(self) -> None:
        m = self.model
        scope = self.state.scope_id
        self.scope_info.object = (f"Scope to publish: <code class='ts-publish-scope-id'>{html.escape(scope)}</code> "
                                  f"{html.escape(scope_facts(self.state.current_dataset(), scope))} "
                                  "(choose another in the sidebar's lineage)" if scope else
                                  "<span style='color:#b35900'>No scope yet: run Scope (Stages view) first.</span>")
        busy = m.phase in (PLANNING, PUBLISHING)
        self.plan_button.disabled = busy or not scope
        self.plan_button.name = "Plan again" if m.phase in (PLANNED, PUBLISHED) else "Check and plan"
        self.errors.object = failure_html(m)
        self.gate.object = gate_html(m.plan)
        self.summary.object = plan_summary_html(m.plan)
        planned = m.plan is not None
        self.plan_table.visible = planned
        if planned:
            self.plan_table.value = m.plan_frame()
        can = m.can_publish()
        self.confirm.visible = can
        self.publish_button.visible = can
        self.publish_button.disabled = not (can and self.confirm.value)
        if can:
            tot = m.plan.totals
            self.publish_button.name = (f"Publish {tot['objects_to_send']} object(s), {human_bytes(tot['bytes_to_send'])}"
                                        if tot["objects_to_send"] else "Publish (manifest only)")
            self.publish_button.width = 260
        self.result.object = result_html(m.result) if m.phase == PUBLISHED else ""
        self.serving.object = serving_html((m.result or {}).get("serving_check")) if m.phase == PUBLISHED else ""
        self.unpublish_result.object = unpublish_html(m.unpublished)
        self.rollback_button.disabled = busy
        unpublishing = m.unpublish_job is not None and m.unpublish_job.is_active
        self.unpublish_button.disabled = busy or unpublishing
        ds = self.state.current_dataset()
        expected = scope if self.unpublish_scope_only.value else (ds.name if ds is not None else "")
        self.unpublish_typed.name = (f"Type {expected} to unpublish it" if expected else
                                     "Type the scope id (or dataset name) to confirm")
        self.result_table.visible = m.phase == PUBLISHED
        if m.phase == PUBLISHED:
            self.result_table.value = m.result_frame()
        self.history.value = m.history_frame()
        self._redraw_progress()


def create_view(state):
    return PublishView(state)


TITLE = "Publish"
