"""One-click publish of a scope to the CDN (file:// folder or s3:// / R2) and LanceDB.

Sequence (DESIGN §5, issue 7): validator gate → plan (D1 allowlist, D2 denylist on every key)
→ diff by SHA-256 → privacy scan → upload changed objects (parquet, then the JSON that
references it), each verified by HEAD (size + ``sha256`` metadata, never the ETag) → LanceDB
table → ``<dataset>/manifest.json`` written LAST → ``_meta`` registration → local record
``publishes/publish-NNN.json``.

Two deliberate choices:

* The privacy scan runs *before* any upload: a hit must not leave the machine, and fixed
  paths are public the moment they are written.
* The LanceDB table is written before the manifest, so the manifest only ever announces a
  scope whose files *and* search table exist.

Consistency guarantee: object keys are our contract (the TS API reads fixed paths), so a
publish overwrites objects in place. The manifest is written last and lists only objects
verified on the target; a publish that fails or is killed leaves the previous manifest. Until
the next complete publish a reader of a fixed path may see a newer object than the manifest
describes; :func:`verify_remote` lists such mismatches and re-running the publish heals them
(already uploaded objects are detected by HEAD and not sent again).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import param

from pipeline import __version__
from pipeline.core.config import StageConfig
from pipeline.core.errors import TweetscopeError
from pipeline.core.progress import Cancelled, Progress, null_progress
from pipeline.core.workspace import Dataset, WorkspaceError, dumps_json, read_json, utc_now_iso
from pipeline.publish import lance_sync
from pipeline.publish.plan import (
    MANIFEST_FORMAT,
    MANIFEST_VERSION,
    PlannedObject,
    PublishError,
    diff_objects,
    local_objects,
    manifest_index,
    manifest_key,
    object_record,
    plan_rows,
    read_remote_manifest,
    summarize,
)
from pipeline.publish.privacy import PrivacyFinding, build_needles, scan_bytes, scan_files
from pipeline.publish.sweep import remote_scopes, scan_remote, scope_needs_redaction
from pipeline.publish.targets import (
    FileTarget,
    S3Settings,
    S3Target,
    Target,
    TargetError,
    credential_source,
    open_target,
    redact_url,
    resolve_endpoint,
    sha256_file,
)
from pipeline.serving import control_plane as cp
from pipeline.serving import lance_export
from pipeline.serving.lance_target import resolve_target
from pipeline.serving.validate import validate_scope
from pipeline.serving.webmap import write_webmap
from pipeline.stages.scope import rewrite_scope_rows

MB = 1024 * 1024
DEFAULT_TARGET_DIRNAME = "_cdn"  # not a valid dataset name, so never mistaken for one


class PublishConfig(StageConfig):
    """Transfer and caching knobs of a publish (stored in the publish record's ``params``)."""

    max_concurrency = param.Integer(4, bounds=(1, 16), doc="objects uploaded at the same time")
    multipart_threshold_mb = param.Integer(16, bounds=(5, 5000),
                                           doc="files above this size (MB) are sent in multipart uploads")
    multipart_chunksize_mb = param.Integer(8, bounds=(5, 512), doc="multipart part size in MB")
    max_attempts = param.Integer(5, bounds=(1, 20), doc="attempts per request (botocore retries with backoff)")
    retry_mode = param.Selector(default="standard", objects=["standard", "adaptive"],
                                doc="botocore retry mode (adaptive also rate-limits the client)")
    json_cache_control = param.String("public, max-age=60",
                                      doc="Cache-Control of JSON objects (small, change on every publish)")
    parquet_cache_control = param.String("public, max-age=3600",
                                         doc="Cache-Control of parquet objects (large, range-read)")
    manifest_cache_control = param.String("no-cache", doc="Cache-Control of <dataset>/manifest.json")
    prune = param.Boolean(False, doc="delete this dataset's remote objects that the new manifest no longer lists")
    webmap = param.Boolean(True, doc="also build and publish <dataset>/index.html, a shareable map of the scope")
    keep_previous_tables = param.Integer(1, bounds=(0, 20),
                                         doc="superseded LanceDB tables of the dataset kept for a rollback; "
                                             "older ones are dropped after the new table verifies")

    def s3_settings(self) -> S3Settings:
        return S3Settings(multipart_threshold=self.multipart_threshold_mb * MB,
                          multipart_chunksize=self.multipart_chunksize_mb * MB,
                          max_concurrency=self.max_concurrency, max_attempts=self.max_attempts,
                          retry_mode=self.retry_mode)


@dataclass
class PublishPlan:
    """Everything a publish will do, computed without changing anything (the dry run)."""

    dataset: Dataset
    scope_id: str
    scope_uid: Optional[str]
    lancedb_table_id: Optional[str]
    target: Target
    config: PublishConfig
    objects: list[PlannedObject]
    remote_manifest: Optional[dict]
    gate_errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    prune_keys: list[str] = field(default_factory=list)
    lancedb_uri: Optional[str] = None
    lancedb_options: dict = field(default_factory=dict, repr=False)  # may hold secrets: never shown
    env: Optional[Mapping[str, str]] = None
    archives: list = field(default_factory=list)  # original archive(s): their account email is scanned for
    created_at: str = field(default_factory=utc_now_iso)
    # Global deletion: every scope this publish (re)sends -> its keys; the first is the published scope.
    scope_keys: dict = field(default_factory=dict)
    redact_scopes: list = field(default_factory=list)   # other published scopes redacted locally first
    remote_only_scopes: list = field(default_factory=list)  # listed remotely, not rebuildable here
    rollback_of: Optional[str] = None  # the publish record a rollback returns from
    drop_scope_ids: list = field(default_factory=list)  # scopes the new manifest no longer lists (rollback)

    @property
    def target_uri(self) -> str:
        return self.target.uri

    @property
    def blocked(self) -> bool:
        return bool(self.gate_errors)

    @property
    def rows(self) -> list[dict]:
        return plan_rows(self.objects)

    @property
    def totals(self) -> dict:
        return {**summarize(self.objects), "prune": len(self.prune_keys)}

    def to_dict(self) -> dict:
        """JSON-ready view for the studio and ``--json`` (no secrets: target described by name)."""
        return {"dataset": self.dataset.name, "scope_id": self.scope_id, "scope_uid": self.scope_uid,
                "target": self.target.describe(), "lancedb": self.lancedb_uri,
                "gate_errors": list(self.gate_errors), "warnings": list(self.warnings),
                "rows": self.rows, "totals": self.totals, "prune_keys": list(self.prune_keys),
                "scopes": {sid: len(keys) for sid, keys in self.scope_keys.items()},
                "redact_scopes": list(self.redact_scopes), "remote_only_scopes": list(self.remote_only_scopes),
                "created_at": self.created_at}


# --------------------------------------------------------------------------- targets from env

def default_target_uri(data_dir: Optional[os.PathLike | str] = None,
                       env: Optional[Mapping[str, str]] = None) -> str:
    env = os.environ if env is None else env
    if env.get("TWEETSCOPE_PUBLISH_TARGET"):
        return env["TWEETSCOPE_PUBLISH_TARGET"]
    base = Path(data_dir) if data_dir else Path(env.get("TWEETSCOPE_DATA_DIR") or "./data")
    return f"file://{(base.expanduser().resolve() / DEFAULT_TARGET_DIRNAME)}"


def configured_targets(env: Optional[Mapping[str, str]] = None,
                       data_dir: Optional[os.PathLike | str] = None) -> list[dict]:
    """Publish targets the environment configures, for the studio's picker. Names only, never secrets."""
    env = os.environ if env is None else env
    targets = [{"name": "Local folder (offline)", "kind": "file",
                "uri": default_target_uri(data_dir, {k: v for k, v in env.items()
                                                     if k != "TWEETSCOPE_PUBLISH_TARGET"}),
                "ready": True, "detail": "a folder laid out like the CDN bucket"}]
    if env.get("TWEETSCOPE_PUBLISH_TARGET"):
        uri = env["TWEETSCOPE_PUBLISH_TARGET"]
        targets.append({"name": "Configured target", "kind": "s3" if uri.startswith("s3://") else "file",
                        "uri": uri, "ready": True, "detail": "$TWEETSCOPE_PUBLISH_TARGET"})
    for bucket_var, name in (("R2_BUCKET", "Cloudflare R2"), ("S3_BUCKET", "S3 bucket")):
        bucket = env.get(bucket_var)
        if not bucket:
            continue
        prefix = (env.get("R2_PREFIX") or env.get("S3_PREFIX") or "").strip("/")
        endpoint = resolve_endpoint(None, env)
        has_keys = (bool(env.get("R2_ACCESS_KEY_ID") and env.get("R2_SECRET_ACCESS_KEY"))
                    or bool(env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"))
                    or bool(env.get("AWS_PROFILE")))
        targets.append({"name": name, "kind": "s3",
                        "uri": f"s3://{bucket}" + (f"/{prefix}" if prefix else ""),
                        "endpoint": redact_url(endpoint) or "AWS default",
                        "credentials": credential_source(env) if has_keys else "missing",
                        "ready": has_keys,
                        "detail": f"${bucket_var}" + ("" if has_keys else
                                                      "; set R2_ACCESS_KEY_ID and R2_SECRET_ACCESS_KEY")})
    if env.get("LANCEDB_URI"):
        uri = env["LANCEDB_URI"]
        needs_key = uri.startswith("db://")
        targets.append({"name": "LanceDB", "kind": "lancedb", "uri": uri,
                        "ready": (not needs_key) or bool(env.get("LANCEDB_API_KEY")),
                        "credentials": ("LANCEDB_API_KEY" if env.get("LANCEDB_API_KEY") else "missing")
                        if needs_key else "none needed",
                        "detail": "$LANCEDB_URI"})
    return targets


# --------------------------------------------------------------------------- gate

def _default_validator() -> Callable[[Dataset, str], list[str]]:
    return validate_scope


def _scope_identity(dataset: Dataset, scope_id: str) -> tuple[Optional[str], Optional[str]]:
    try:
        scope = read_json(dataset.sidecar_path(scope_id))
    except (OSError, ValueError, WorkspaceError):
        return None, None
    uid = scope.get("scope_uid")
    table = scope.get("lancedb_table_id") or (f"{dataset.name}__{uid}" if uid else None)
    return uid, table


# --------------------------------------------------------------------------- plan

#: the model the tweetscope API embeds search queries with (spec: voyage-4-lite, 1024-d)
SEARCH_QUERY_MODEL = "voyage-4-lite"


def search_model_warning(dataset: Dataset, scope_id: str) -> Optional[str]:
    """A warning when the scope's vectors are not in the space the downstream API searches with."""
    scope = read_json(dataset.artifact_path(scope_id, ".json"))
    embedding_id = scope.get("embedding_id")
    if not embedding_id or not dataset.exists(embedding_id):
        return None
    side = dataset.sidecar(embedding_id)
    model = side.get("model_id")
    if not model or model == SEARCH_QUERY_MODEL:
        return None
    return (f"the LanceDB table's vectors come from {side.get('provider')}/{model} ({side.get('dimensions')}-d); "
            f"the tweetscope API embeds search queries with {SEARCH_QUERY_MODEL}, so its semantic search "
            "needs a Voyage embedding (set VOYAGE_API_KEY, embed again and make a new scope) — "
            "full-text search and the map work either way")


def configured_lancedb(lancedb: Any, env: Mapping[str, str]) -> Optional[str]:
    """The LanceDB URI of a publish: an explicit URI; ``None`` -> ``$LANCEDB_URI`` (a configured
    LanceDB is part of every publish); ``False`` or ``""`` -> none (``--no-lancedb``)."""
    if lancedb is None:
        return env.get("LANCEDB_URI") or None
    return str(lancedb) if lancedb else None


def _upload_order(obj: PlannedObject) -> tuple:
    return (0 if obj.is_parquet else 2 if obj.rel == "meta.json" else 1, obj.rel)


def with_published_scopes(dataset: Dataset, scope_id: str, objects: list[PlannedObject],
                          manifest: Optional[dict], config: PublishConfig):
    """Add every other scope the remote manifest lists (deletion is global for a dataset).

    Returns (objects, scope_keys, redact, remote_only): a scope that still exists locally is
    re-published (``redact`` when its files predate a deletion: they are rewritten first); a scope
    that does not is ``remote_only`` and left to the remote sweep.
    """
    scope_keys = {scope_id: [o.key for o in objects]}
    by_key = {o.key: o for o in objects}
    redact, remote_only = [], []
    for sid in sorted(remote_scopes(manifest)):
        if sid == scope_id:
            continue
        try:
            if not dataset.exists(sid):
                raise PublishError(f"{sid} is not in the local dataset")
            others = local_objects(dataset, sid, config)
            if scope_needs_redaction(dataset, sid):
                redact.append(sid)
        except (PublishError, WorkspaceError, OSError, ValueError, KeyError):
            remote_only.append(sid)
            continue
        for o in others:
            by_key.setdefault(o.key, o)
        scope_keys[sid] = [o.key for o in others]
    return sorted(by_key.values(), key=_upload_order), scope_keys, redact, remote_only


def plan_publish(dataset: Dataset, scope_id: Optional[str] = None, target: Any = None, *,
                 config: Optional[PublishConfig] = None, endpoint_url: Optional[str] = None,
                 lancedb: Any = None, lancedb_options: Optional[dict] = None,
                 env: Optional[Mapping[str, str]] = None,
                 validator: Optional[Callable[[Dataset, str], list[str]]] = None,
                 prune: Optional[bool] = None, archives: tuple = ()) -> PublishPlan:
    """Gate, allowlist, hash and diff a scope against a target; changes nothing anywhere.

    ``target`` is a URI (``file://DIR``, ``s3://bucket[/prefix]``) or a Target object; None means
    the default (``$TWEETSCOPE_PUBLISH_TARGET`` or ``<data_dir>/_cdn``). A failing validator
    does not raise here: the plan carries ``gate_errors`` and :func:`execute_publish` refuses it.
    ``archives`` are the original archive files, read only for their account email (privacy scan).
    ``lancedb``: a URI, ``None`` for ``$LANCEDB_URI`` (when set), ``False`` for no LanceDB table.
    Every other scope the remote manifest lists is re-checked and re-sent (deletion is global).
    """
    env = os.environ if env is None else env
    lancedb = configured_lancedb(lancedb, env)
    config = config or PublishConfig()
    if prune is not None:
        config = PublishConfig.from_dict({**config.to_dict(), "prune": bool(prune)})
    scope_id = scope_id or dataset.latest("scopes")
    if not scope_id:
        raise PublishError(f"dataset '{dataset.name}' has no scope yet; run `tweetscope scope` first")
    if target is None or isinstance(target, str):
        uri = target or default_target_uri(dataset.path.parent, env)
        try:
            target = open_target(uri, endpoint_url=endpoint_url, env=env, settings=config.s3_settings())
        except TargetError as exc:
            raise PublishError(str(exc)) from None
    try:
        target.preflight()  # a target that cannot be used fails before anything is written locally
    except TargetError as exc:
        raise PublishError(str(exc)) from None
    gate_errors = list((validator or _default_validator())(dataset, scope_id) or [])
    if config.webmap and not gate_errors:
        write_webmap(dataset, scope_id)  # local file, rewritten only when the scope or a deletion changed it
    objects = local_objects(dataset, scope_id, config, webmap=config.webmap and not gate_errors)
    scope_uid, table_id = _scope_identity(dataset, scope_id)
    try:
        manifest, warning = read_remote_manifest(target, dataset.name)
        objects, scope_keys, redact, remote_only = with_published_scopes(dataset, scope_id, objects, manifest, config)
        diff_objects(objects, target, manifest, max_workers=2 * config.max_concurrency)
    except TargetError as exc:
        raise PublishError(str(exc)) from None
    lancedb_options = dict(lancedb_options or {})
    if lancedb and lancedb.startswith("s3://") and "storage_options" not in lancedb_options:
        lancedb_options["storage_options"] = lance_storage_options(
            resolve_endpoint(endpoint_url, env), env)  # the same S3/R2 account as the CDN
    plan = PublishPlan(dataset, scope_id, scope_uid, table_id, target, config, objects, manifest,
                       gate_errors=gate_errors, warnings=[warning] if warning else [],
                       lancedb_uri=lancedb, lancedb_options=lancedb_options, env=env,
                       archives=[str(a) for a in archives], scope_keys=scope_keys,
                       redact_scopes=redact, remote_only_scopes=remote_only)
    if redact:
        plan.warnings.append(f"{', '.join(redact)} still serve(s) tweets deleted since; their local files are "
                             "redacted and re-published with this publish")
    if lancedb and (model_warning := search_model_warning(dataset, scope_id)):
        plan.warnings.append(model_warning)
    if manifest and manifest.get("dataset") not in (None, dataset.name):
        plan.warnings.append(f"the remote manifest belongs to dataset '{manifest.get('dataset')}'")
    new_manifest = merged_manifest(plan, lancedb_result=None, published_at=plan.created_at)
    if config.prune:
        plan.prune_keys = prune_candidates(target, dataset.name, new_manifest)
    drift = [o.key for o in objects if o.manifest_sha256 and o.remote_sha256
             and o.manifest_sha256 != o.remote_sha256]
    if drift:
        plan.warnings.append(f"{len(drift)} remote object(s) differ from the remote manifest "
                             "(an earlier publish did not finish); this publish heals them")
    return plan


def lance_storage_options(endpoint: Optional[str], env: Mapping[str, str]) -> dict:
    """Lance ``storage_options`` for an ``s3://`` table on the CDN's S3/R2 account (secrets stay in memory)."""
    options: dict[str, str] = {}
    if endpoint:
        options["aws_endpoint"] = endpoint
        if endpoint.startswith("http://"):
            options["allow_http"] = "true"
    key_id = env.get("R2_ACCESS_KEY_ID") or env.get("AWS_ACCESS_KEY_ID")
    secret = env.get("R2_SECRET_ACCESS_KEY") if env.get("R2_ACCESS_KEY_ID") else env.get("AWS_SECRET_ACCESS_KEY")
    if key_id and secret:
        options["aws_access_key_id"], options["aws_secret_access_key"] = key_id, secret
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    options["aws_region"] = region or ("auto" if endpoint and ".r2.cloudflarestorage.com" in endpoint else "us-east-1")
    return options


def _public_lance_fields(result: Optional[dict]) -> Optional[dict]:
    """What the public manifest says about the LanceDB table (no local paths, no timings)."""
    if not result:
        return None
    public = {k: result[k] for k in ("table", "rows", "target", "dimensions", "embedding_id", "exported_at")
              if k in result}
    if result.get("target") in ("cloud", "s3") and result.get("uri"):
        public["uri"] = result["uri"]  # already redacted by export_lance
    return public


def prune_candidates(target: Target, dataset_name: str, manifest: dict) -> list[str]:
    listed = {o["key"] for o in manifest["objects"]} | {manifest_key(dataset_name)}
    return [k for k in target.list_keys(f"{dataset_name}/") if k not in listed]


def merged_manifest(plan: PublishPlan, lancedb_result: Optional[dict], published_at: str) -> dict:
    """The new manifest: this scope's objects plus the other scopes of the existing remote manifest."""
    old = plan.remote_manifest or {}
    old_index = manifest_index(old)
    old_scopes = old.get("scopes") if isinstance(old.get("scopes"), dict) else {}
    previous = old_scopes.get(plan.scope_id) or {}
    lancedb = _public_lance_fields(lancedb_result)
    if lancedb is None and previous.get("lancedb_table_id") == plan.lancedb_table_id:
        lancedb = previous.get("lancedb")  # a CDN-only republish keeps the table it announced before
    ds = plan.dataset
    this_scope = {
        "scope_id": plan.scope_id,
        "scope_uid": plan.scope_uid,
        "lancedb_table_id": plan.lancedb_table_id,
        "keys": list(plan.scope_keys.get(plan.scope_id) or [o.key for o in plan.objects]),
        "lineage": ds.lineage(plan.scope_id) if ds.exists(plan.scope_id) else {"id": plan.scope_id},
        "input_fingerprint": ds.input_fingerprint(),
        "lancedb": lancedb,
        "published_at": published_at,
    }
    dropped = set(plan.drop_scope_ids)
    scopes = {sid: dict(entry) for sid, entry in old_scopes.items()  # copies: the plan's manifest stays as read
              if sid != plan.scope_id and isinstance(entry, dict) and sid not in dropped}
    scopes[plan.scope_id] = this_scope
    objects = {o.key: object_record(o) for o in plan.objects}
    for sid, entry in scopes.items():
        if sid == plan.scope_id:
            continue
        if sid in plan.scope_keys:  # re-sent with this publish (global deletion)
            entry["keys"] = list(plan.scope_keys[sid])
            continue
        kept = []
        for key in entry.get("keys", []):
            if key in objects or key in old_index:
                objects.setdefault(key, old_index.get(key))
                kept.append(key)
        entry["keys"] = kept
    return {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_VERSION,
        "dataset": ds.name,
        "published_at": published_at,
        "tool": {"name": "tweetscope-studio", "version": __version__},
        "active_scope": plan.scope_id,  # the scope of the latest publish (a rollback moves it back)
        "scopes": dict(sorted(scopes.items())),
        "objects": [objects[k] for k in sorted(objects)],
    }


# --------------------------------------------------------------------------- execute

class _Transfer:
    """Shared byte counter and stop flag of the upload workers."""

    def __init__(self, progress: Progress, total: int):
        self.progress, self.total = progress, total
        self.done = 0
        self.stop = threading.Event()
        self.cancelled = False
        self._lock = threading.Lock()
        self._last = 0.0

    def add(self, n: int, message: str = "", force: bool = False) -> None:
        if self.progress.cancelled:
            self.cancelled = True
            self.stop.set()
        with self._lock:
            self.done += n
            now = time.monotonic()
            if not force and now - self._last < 0.2:
                return
            self._last = now
            done = self.done
        try:
            self.progress.update(done, self.total, message)
        except Cancelled:
            self.cancelled = True
            self.stop.set()


def _upload_one(target: Target, obj: PlannedObject, transfer: _Transfer) -> int:
    """Upload and verify one object; returns the bytes sent."""
    if transfer.progress.cancelled:
        transfer.cancelled = True
        transfer.stop.set()
    if transfer.stop.is_set():
        raise _NotAttempted()
    st = obj.path.stat()
    if st.st_size != obj.size or sha256_file(obj.path) != obj.sha256:
        raise PublishError(f"{obj.rel} changed since the plan was made; plan again")
    sent = [0]

    def on_bytes(n: int) -> None:
        sent[0] += n
        transfer.add(n, obj.key)

    target.put_file(obj.key, obj.path, size=obj.size, sha256=obj.sha256,
                    content_type=obj.content_type, cache_control=obj.cache_control, callback=on_bytes)
    remote = target.head(obj.key)
    if remote is None:
        raise PublishError(f"{obj.key} is not on the target after its upload")
    if remote.size != obj.size or remote.sha256 != obj.sha256:
        raise PublishError(f"{obj.key} failed verification: target has size {remote.size}, "
                           f"sha256 {remote.sha256 or 'none'}; expected {obj.size}, {obj.sha256}")
    if sent[0] < obj.size:  # callbacks may be coarse; count what the object weighs
        transfer.add(obj.size - sent[0], obj.key)
    return obj.size


class _NotAttempted(Exception):
    pass


def _upload_phase(target: Target, objects: list[PlannedObject], transfer: _Transfer,
                  workers: int, uploaded: list[str], failed: dict[str, str]) -> None:
    if not objects:
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="publish") as pool:
        def run(obj: PlannedObject) -> int:
            try:
                return _upload_one(target, obj, transfer)
            except _NotAttempted:
                raise
            except BaseException:
                transfer.stop.set()  # before this worker picks up the next object
                raise

        futures = {pool.submit(run, obj): obj for obj in objects}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for fut in done:
                obj = futures[fut]
                exc = fut.exception()
                if exc is None:
                    uploaded.append(obj.key)
                elif not isinstance(exc, _NotAttempted):
                    failed[obj.key] = str(exc) or type(exc).__name__
                    transfer.stop.set()  # let running uploads finish, start no new ones


def _failure_report(plan: PublishPlan, uploaded: list[str], failed: dict[str, str], step: str) -> dict:
    to_send = [o.key for o in plan.objects if o.status != "unchanged"]
    uploaded = [k for k in to_send if k in set(uploaded)]  # plan order, not completion order
    return {"step": step, "uploaded": uploaded, "failed": dict(failed),
            "not_uploaded": [k for k in to_send if k not in uploaded and k not in failed],
            "unchanged": [o.key for o in plan.objects if o.status == "unchanged"],
            "manifest_written": False}


def _describe_failure(report: dict) -> str:
    parts = [f"publish stopped at {report['step']}; the remote manifest was not changed"]
    if report["failed"]:
        key, why = next(iter(report["failed"].items()))
        parts.append(f"failed: {key} ({why})" + (f" and {len(report['failed']) - 1} more"
                                                 if len(report["failed"]) > 1 else ""))
    parts.append(f"uploaded {len(report['uploaded'])}, not uploaded {len(report['not_uploaded'])}")
    parts.append("re-run the publish to send the rest")
    return "; ".join(parts)


def run_lance_export(plan: PublishPlan, progress: Progress) -> Optional[dict]:
    """The LanceDB table through the lance helper's ``export_lance`` (never reimplemented here).

    Registration in ``_meta`` is left to :func:`register_control_plane`, after the manifest.
    """
    if not plan.lancedb_uri:
        return None
    result = lance_export.export_lance(plan.dataset, plan.scope_id, uri=plan.lancedb_uri,
                                       progress=progress.for_stage("lancedb"), register=False,
                                       **plan.lancedb_options)
    return _jsonable(result)


def _artifact_type(rel: str) -> Optional[str]:
    """The ``_meta/scope_artifacts`` type of a published file (None for files it has no type for)."""
    if rel.startswith("scopes/") and rel.endswith("-input.parquet"):
        return "scope_input_parquet"
    if rel.startswith("clusters/") and ("toponymy-" in rel or "-labels-" in rel):
        return "cluster_labels_parquet" if rel.endswith(".parquet") else "cluster_labels_json"
    return {"links/edges.parquet": "edges_parquet", "links/node_link_stats.parquet": "node_stats_parquet",
            "links/meta.json": "links_meta_json"}.get(rel)


def redact_published_scopes(plan: PublishPlan) -> list[str]:
    """Rewrite the local files of the other published scopes that predate a deletion, then re-plan
    their objects. A scope that cannot be rewritten (an earlier ingest) is left to the remote sweep."""
    done = []
    for sid in list(plan.redact_scopes):
        try:
            rewrite_scope_rows(plan.dataset, sid)
            fresh = local_objects(plan.dataset, sid, plan.config)
        except (TweetscopeError, OSError, ValueError) as exc:
            plan.warnings.append(f"{sid} cannot be redacted locally ({exc}); its remote objects are "
                                 "scanned and removed if they hold a deleted tweet")
            shared = {k for other, keys in plan.scope_keys.items() if other != sid for k in keys}
            plan.objects = [o for o in plan.objects if o.key in shared]
            plan.scope_keys.pop(sid, None)
            plan.remote_only_scopes.append(sid)
            continue
        try:
            diff_objects(fresh, plan.target, plan.remote_manifest, max_workers=2 * plan.config.max_concurrency)
        except TargetError as exc:
            raise PublishError(str(exc), _failure_report(plan, [], {}, "redact")) from None
        by_key = {o.key: o for o in plan.objects}
        by_key.update({o.key: o for o in fresh})
        plan.objects = sorted(by_key.values(), key=_upload_order)
        plan.scope_keys[sid] = [o.key for o in fresh]
        done.append(sid)
    plan.redact_scopes = []
    return done


def _lance_connection(plan: PublishPlan):
    target = resolve_target(plan.dataset, plan.lancedb_uri, **plan.lancedb_options)
    return target, target.connect()


def sync_lancedb_deletions(plan: PublishPlan, deleted_ids) -> Optional[dict]:
    """Delete the dataset's deleted tweets from every one of its tables (and their old versions)."""
    if not plan.lancedb_uri:
        return None
    target, conn = _lance_connection(plan)
    return lance_sync.purge_deleted(conn, target, plan.dataset.name, deleted_ids)


def drop_superseded_tables(plan: PublishPlan, manifest: dict) -> list[str]:
    """Drop previously published tables no scope of ``manifest`` uses, keeping the newest
    ``keep_previous_tables`` of them for a rollback."""
    if not plan.lancedb_uri:
        return []
    live = {e.get("lancedb_table_id") for e in remote_scopes(manifest).values()}
    history = [r.get("lancedb_table_id") for r in publish_history(plan.dataset)
               if (r.get("target") or {}).get("uri") == plan.target.uri and r.get("lancedb")]
    earlier = [e.get("lancedb_table_id") for e in remote_scopes(plan.remote_manifest).values()]
    superseded = lance_sync.superseded_tables([*history, *earlier], live)
    drop = superseded[plan.config.keep_previous_tables:]
    if not drop:
        return []
    _target, conn = _lance_connection(plan)
    return lance_sync.drop_tables(conn, drop)


def sweep_remote(plan: PublishPlan, needles, uploaded: list[str]) -> dict:
    """Scan every object under the dataset's remote prefix; remove the ones holding a deleted row.

    An object of this publish with a finding stops the publish (it was scanned locally before
    upload, so the target changed under us); any other is deleted and verified gone, and the
    remote-only scopes that listed it leave the manifest. Raises while one remains.
    """
    name, target = plan.dataset.name, plan.target
    try:
        findings, stats = scan_remote(target, name, needles, skip=frozenset({manifest_key(name)}))
    except TargetError as exc:
        report = _failure_report(plan, uploaded, {"remote scan": str(exc)}, "remote scan")
        raise PublishError(_describe_failure(report), report) from None
    own = {o.key for o in plan.objects}
    if any(k in own for k in findings):
        bad = [f for k in findings if k in own for f in findings[k]]
        raise PublishError(_privacy_message(bad), {**_failure_report(plan, uploaded, {}, "remote scan"),
                                                   "privacy_findings": [str(f) for f in bad]})
    removed = sorted(findings)
    if removed:
        try:
            target.delete(removed)
            left = [k for k in removed if target.head(k) is not None]
        except TargetError as exc:
            left = [f"{removed[0]} ({exc})"]
        if left:
            report = _failure_report(plan, uploaded, {k: "still holds a deleted tweet" for k in left}, "remote scan")
            raise PublishError(_describe_failure(report), report)
        for sid, entry in remote_scopes(plan.remote_manifest).items():
            if sid not in plan.scope_keys and set(entry.get("keys") or []) & set(removed):
                plan.drop_scope_ids.append(sid)
    return {**stats, "removed": removed, "dropped_scopes": sorted(set(plan.drop_scope_ids) & set(
        remote_scopes(plan.remote_manifest)) - set(plan.scope_keys))}


def register_control_plane(plan: PublishPlan, manifest_sha: str) -> Optional[dict]:
    """Upsert the dataset, the scope, its published CDN artifacts and a publish job in ``_meta/*``."""
    if not plan.lancedb_uri:
        return None
    plane = cp.open_control_plane(plan.dataset, plan.lancedb_uri, **plan.lancedb_options)
    dataset_row = cp.register_dataset(plane, plan.dataset)
    scope_uid = cp.register_scope(plane, plan.dataset, plan.scope_id, dataset_row_id=dataset_row)
    rows = [{"artifact_type": _artifact_type(o.rel), "cdn_path": o.key, "byte_size": o.size,
             "checksum": f"sha256:{o.sha256}"} for o in plan.objects if _artifact_type(o.rel)]
    artifact_ids = cp.register_artifacts(plane, scope_uid, rows)
    output = next((i for i, r in zip(artifact_ids, rows) if r["artifact_type"] == "scope_input_parquet"), None)
    job = cp.record_job(plane, job_type="publish", status="completed", dataset_id=dataset_row,
                        config={"target": plan.target.uri, "scope_id": plan.scope_id,
                                "manifest_sha256": manifest_sha},
                        output_artifact_id=output, started_at=plan.created_at)
    return {"dataset_id": dataset_row, "scope_id": scope_uid, "artifacts": len(artifact_ids), "job_id": job}


def _jsonable(value: Any) -> Any:
    try:
        return json.loads(dumps_json(value))
    except TypeError:
        return str(value)


def execute_publish(plan: PublishPlan, progress: Optional[Progress] = None,
                    record: bool = True) -> dict:
    """Carry out a plan; returns the publish record (also saved as ``publishes/publish-NNN.json``).

    Raises :class:`PublishError` (with ``.report``: uploaded / failed / not_uploaded) at the
    first failing step; the remote manifest is then unchanged.
    """
    progress = (progress or null_progress("publish")).for_stage("publish")
    if plan.blocked:
        raise PublishError(f"{plan.scope_id} failed the deploy gate: " + "; ".join(plan.gate_errors[:5]),
                           {"step": "gate", "gate_errors": plan.gate_errors})
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    target, config = plan.target, plan.config
    try:
        target.preflight()
    except TargetError as exc:
        raise PublishError(str(exc), _failure_report(plan, [], {}, "preflight")) from None
    timings["preflight_s"] = time.perf_counter() - t0

    # Other published scopes that predate a deletion are redacted locally, then re-sent with this publish.
    t = time.perf_counter()
    redacted = redact_published_scopes(plan)
    timings["redact_s"] = time.perf_counter() - t

    # Privacy before anything leaves the machine (fixed paths are public once written).
    t = time.perf_counter()
    progress.update(0, None, "privacy scan")
    scope_input = next((o.path for o in plan.objects if o.rel.endswith("-input.parquet")), None)
    needles = build_needles(plan.dataset, scope_input, env=plan.env, archives=plan.archives)
    findings = scan_files([(o.key, o.path) for o in plan.objects], needles)
    timings["privacy_scan_s"] = time.perf_counter() - t
    if findings:
        raise PublishError(_privacy_message(findings),
                           {**_failure_report(plan, [], {}, "privacy scan"),
                            "privacy_findings": [str(f) for f in findings]})

    to_send = [o for o in plan.objects if o.status != "unchanged"]
    total = sum(o.size for o in to_send)
    transfer = _Transfer(progress, total)
    uploaded: list[str] = []
    failed: dict[str, str] = {}
    t = time.perf_counter()
    progress.update(0, total, f"uploading {len(to_send)} object(s)")
    # Data first, then the JSON that references it (meta.json, the dataset's entry, is last).
    for phase in ([o for o in to_send if o.is_parquet], [o for o in to_send if not o.is_parquet]):
        _upload_phase(target, phase, transfer, config.max_concurrency, uploaded, failed)
        if (transfer.cancelled or progress.cancelled) and not failed:
            raise _cancelled(uploaded)
        if failed:
            report = _failure_report(plan, uploaded, failed, "upload")
            raise PublishError(_describe_failure(report), report)
    transfer.add(0, "uploaded", force=True)
    timings["upload_s"] = time.perf_counter() - t

    if progress.cancelled:
        raise _cancelled(uploaded)
    t = time.perf_counter()
    try:
        lancedb_result = run_lance_export(plan, progress)
    except PublishError as exc:
        raise PublishError(f"{exc}; the remote manifest was not changed",
                           _failure_report(plan, uploaded, {}, "lancedb")) from None
    except Cancelled:
        raise
    except Exception as exc:  # noqa: BLE001 - report any LanceDB failure with the upload state
        report = _failure_report(plan, uploaded, {"lancedb": f"{type(exc).__name__}: {exc}"}, "lancedb")
        raise PublishError(_describe_failure(report), report) from exc
    timings["lancedb_s"] = time.perf_counter() - t
    t = time.perf_counter()
    try:
        lancedb_sync = sync_lancedb_deletions(plan, needles.deleted_ids)
    except Exception as exc:  # noqa: BLE001 - a table still serving a deleted row blocks the manifest
        report = _failure_report(plan, uploaded, {"lancedb": f"{type(exc).__name__}: {exc}"}, "lancedb deletions")
        raise PublishError(_describe_failure(report), report) from exc
    timings["lancedb_sync_s"] = time.perf_counter() - t

    # Deletion is global: every object under the dataset's prefix is read and scanned; one that
    # still holds a deleted row is removed (this publish re-sent every scope it could rebuild).
    t = time.perf_counter()
    progress.update(0, None, "scanning every remote object of the dataset")
    sweep = sweep_remote(plan, needles, uploaded)
    timings["remote_scan_s"] = time.perf_counter() - t

    if progress.cancelled:
        raise _cancelled(uploaded)
    # The manifest, last: it lists only objects that were verified (or already matched).
    published_at = utc_now_iso()
    manifest = merged_manifest(plan, lancedb_result, published_at)
    manifest_bytes = (dumps_json(manifest) + "\n").encode("utf-8")
    manifest_findings = scan_bytes(manifest_key(plan.dataset.name), manifest_bytes, needles)
    if manifest_findings:
        raise PublishError(_privacy_message(manifest_findings), _failure_report(plan, uploaded, {}, "manifest"))
    manifest_sha = hashlib.sha256(manifest_bytes).hexdigest()
    mkey = manifest_key(plan.dataset.name)
    # A republish that changes nothing keeps the remote manifest as is: zero bytes sent.
    manifest_written = not (plan.remote_manifest and not to_send
                            and _manifest_core(manifest) == _manifest_core(plan.remote_manifest))
    if manifest_written:
        try:
            target.put_bytes(mkey, manifest_bytes, sha256=manifest_sha, content_type="application/json",
                             cache_control=config.manifest_cache_control)
            remote = target.head(mkey)
        except TargetError as exc:
            report = _failure_report(plan, uploaded, {mkey: str(exc)}, "manifest")
            raise PublishError(_describe_failure(report), report) from None
        if remote is None or remote.sha256 != manifest_sha:
            report = _failure_report(plan, uploaded, {mkey: "verification failed"}, "manifest")
            raise PublishError(_describe_failure(report), report)
    else:
        manifest = plan.remote_manifest
        published_at = manifest.get("published_at", published_at)
        manifest_sha = hashlib.sha256(target.get_bytes(mkey) or b"").hexdigest()

    deleted: list[str] = []
    if config.prune:
        try:
            deleted = prune_candidates(target, plan.dataset.name, manifest)
            if deleted:
                target.delete(deleted)
        except TargetError as exc:  # the new manifest is complete; stale objects just linger
            deleted = []
            plan.warnings.append(f"the publish is complete but pruning failed ({exc}); re-run with --prune")
    try:
        lancedb_dropped = drop_superseded_tables(plan, manifest)
    except Exception as exc:  # noqa: BLE001 - the publish is complete; an old table just lingers
        lancedb_dropped = []
        plan.warnings.append(f"the publish is complete but dropping superseded LanceDB tables failed "
                             f"({type(exc).__name__}: {exc})")
    try:
        control = register_control_plane(plan, manifest_sha)
    except Exception as exc:  # noqa: BLE001 - the CDN publish is complete; say what is missing
        control = {"registered": False, "error": f"{type(exc).__name__}: {exc}"}
        plan.warnings.append("the publish is complete but _meta registration failed "
                             f"({type(exc).__name__}); re-run the publish to register it")
    timings["total_s"] = time.perf_counter() - t0

    fields = {
        "status": "published",
        "dataset": plan.dataset.name,
        "scope_id": plan.scope_id,
        "scope_uid": plan.scope_uid,
        "lancedb_table_id": plan.lancedb_table_id,
        "target": target.describe(),
        "manifest_key": mkey,
        "manifest_sha256": manifest_sha,
        "manifest_written": manifest_written,
        "published_at": published_at,
        "objects": [{**o.row(), "status": o.status} for o in plan.objects],
        "uploaded": [o.key for o in to_send if o.key in set(uploaded)],
        "unchanged": [o.key for o in plan.objects if o.status == "unchanged"],
        "deleted": deleted,
        "bytes_uploaded": total,
        "bytes_total": sum(o.size for o in plan.objects),
        "urls": {o.key: target.public_url(o.key) for o in plan.objects if target.public_url(o.key)},
        "lancedb": lancedb_result,
        "lancedb_sync": lancedb_sync,
        "lancedb_dropped": lancedb_dropped,
        "scopes": {sid: list(keys) for sid, keys in plan.scope_keys.items()},
        "redacted_scopes": redacted,
        "remote_scan": sweep,
        "rollback_of": plan.rollback_of,
        "control_plane": control,
        "warnings": plan.warnings,
        "tool_version": __version__,
    }
    if not record:
        return fields
    with plan.dataset.new_artifact("publish") as art:
        sidecar = art.write_sidecar(fields, params=config.to_dict(), inputs={"scope_id": plan.scope_id},
                                    rows=len(plan.objects), timings={k: round(v, 3) for k, v in timings.items()})
    return sidecar


def _manifest_core(manifest: dict) -> dict:
    """A manifest without its timestamps, to tell whether a republish changed anything."""
    core = {k: v for k, v in manifest.items() if k != "published_at"}
    core["scopes"] = {sid: {k: v for k, v in (entry or {}).items() if k != "published_at"}
                      for sid, entry in (manifest.get("scopes") or {}).items()}
    return json.loads(dumps_json(core))


def _cancelled(uploaded: list[str]) -> Cancelled:
    return Cancelled(f"publish cancelled after {len(uploaded)} upload(s); the remote manifest was "
                     "not changed; re-run the publish to finish")


def _privacy_message(findings: list[PrivacyFinding]) -> str:
    head = "; ".join(str(f) for f in findings[:3])
    more = f" (+{len(findings) - 3} more)" if len(findings) > 3 else ""
    return (f"privacy scan failed, nothing was uploaded: {head}{more}. Blank the rows "
            "(`tweetscope tombstone`, then rebuild the scope) or remove the value, then publish again")


def publish(dataset: Dataset, scope_id: Optional[str] = None, target: Any = None,
            progress: Optional[Progress] = None, **opts) -> dict:
    """plan_publish + execute_publish in one call."""
    plan = plan_publish(dataset, scope_id, target, **opts)
    return execute_publish(plan, progress)


def publish_history(dataset: Dataset) -> list[dict]:
    """The local publish records of a dataset, newest first."""
    return [dataset.sidecar(i) for i in reversed(dataset.list_ids("publish"))]


# --------------------------------------------------------------------------- verify

def verify_remote(target: Any, dataset: Dataset | str, *, deep: bool = False,
                  endpoint_url: Optional[str] = None, env: Optional[Mapping[str, str]] = None) -> list[str]:
    """Mismatches between the remote manifest and the objects it lists (empty = consistent).

    Compares size and ``sha256`` metadata from HEAD; ``deep`` downloads each object and hashes
    it (catches an object replaced by a tool that copied our metadata).
    """
    name = dataset.name if isinstance(dataset, Dataset) else str(dataset)
    if isinstance(target, str):
        target = open_target(target, endpoint_url=endpoint_url, env=env)
    manifest, warning = read_remote_manifest(target, name)
    if manifest is None:
        return [warning or f"no manifest at {target.uri}/{manifest_key(name)}"]
    problems = []
    for entry in manifest["objects"]:
        key = entry["key"]
        remote = target.head(key)
        if remote is None:
            problems.append(f"{key}: listed in the manifest but missing on the target")
            continue
        if remote.size != entry.get("size"):
            problems.append(f"{key}: size {remote.size} != manifest {entry.get('size')}")
        if remote.sha256 != entry.get("sha256"):
            problems.append(f"{key}: sha256 {remote.sha256 or 'none'} != manifest {entry.get('sha256')}")
        elif deep:
            data = target.get_bytes(key) or b""
            if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
                problems.append(f"{key}: content hash differs from its sha256 metadata")
    return problems


# --------------------------------------------------------------------------- CLI

def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def format_plan(plan: PublishPlan) -> str:
    desc = plan.target.describe()
    where = plan.target.uri + (f" (endpoint {desc['endpoint']}, credentials {desc['credentials']})"
                               if desc.get("kind") == "s3" else "")
    lines = [f"publish {plan.dataset.name} {plan.scope_id} -> {where}"]
    if plan.lancedb_uri:
        lines.append(f"LanceDB: {plan.lancedb_uri} table {plan.lancedb_table_id}")
    width = max((len(o.key) for o in plan.objects), default=10)
    lines.append(f"  {'STATUS':<10} {'SIZE':>10}  {'KEY':<{width}}  CONTENT-TYPE")
    for o in plan.objects:
        lines.append(f"  {o.status:<10} {_human(o.size):>10}  {o.key:<{width}}  {o.content_type}")
    for key in plan.prune_keys:
        lines.append(f"  {'delete':<10} {'':>10}  {key}")
    tot = plan.totals
    lines.append(f"{tot['objects']} objects: {tot['new']} new, {tot['changed']} changed, "
                 f"{tot['unchanged']} unchanged; {_human(tot['bytes_to_send'])} to send "
                 f"({tot['bytes_to_send']} bytes) of {_human(tot['bytes_total'])}"
                 + (f"; {len(plan.prune_keys)} to delete" if plan.prune_keys else ""))
    for w in plan.warnings:
        lines.append(f"warning: {w}")
    for e in plan.gate_errors:
        lines.append(f"gate: {e}")
    return "\n".join(lines)


__all__ = [
    "PublishConfig", "PublishPlan", "PublishError", "plan_publish", "execute_publish", "publish",
    "publish_history", "configured_targets", "verify_remote", "default_target_uri", "format_plan",
    "FileTarget", "S3Target", "open_target",
]
