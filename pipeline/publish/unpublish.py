"""Unpublish a scope or a whole dataset: its CDN objects, manifest entries, LanceDB tables and ``_meta`` rows.

Order, so an interrupted run can always be finished by running it again: objects first (the
manifest still names them, so a rerun finds what is left), then LanceDB tables and ``_meta``
rows, then the manifest (rewritten without the scope, or deleted with the dataset), then a
listing that proves nothing is left. Every step is idempotent.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Optional

from pipeline.core.errors import PublishError, TweetscopeError
from pipeline.core.workspace import dumps_json, utc_now_iso
from pipeline.publish import lance_sync
from pipeline.publish.plan import manifest_key, read_remote_manifest
from pipeline.publish.sweep import remote_scopes
from pipeline.publish.targets import Target, TargetError
from pipeline.serving import control_plane as cp
from pipeline.serving.lance_target import resolve_target


@dataclass
class UnpublishPlan:
    dataset_name: str
    scope_id: Optional[str]          # None: the whole dataset
    target: Target
    keys: list[str]                  # objects to delete (manifest excluded)
    tables: list[str]                # LanceDB tables to drop
    scope_uids: list[str]            # _meta/scopes rows to delete
    manifest: Optional[dict]
    lancedb_uri: Optional[str] = None
    lancedb_options: dict = field(default_factory=dict, repr=False)
    warnings: list[str] = field(default_factory=list)

    @property
    def what(self) -> str:
        return f"{self.dataset_name}/{self.scope_id}" if self.scope_id else self.dataset_name

    def to_dict(self) -> dict:
        return {"dataset": self.dataset_name, "scope_id": self.scope_id, "target": self.target.describe(),
                "keys": list(self.keys), "tables": list(self.tables), "scope_uids": list(self.scope_uids),
                "lancedb": self.lancedb_uri, "warnings": list(self.warnings)}


def plan_unpublish(dataset_name: str, target: Target, scope_id: Optional[str] = None, *,
                   lancedb: Optional[str] = None, lancedb_options: Optional[dict] = None,
                   local_scope_uids: Optional[dict] = None) -> UnpublishPlan:
    """What an unpublish removes (changes nothing). ``local_scope_uids`` maps scope ids of the local
    dataset to (scope_uid, lancedb_table_id): used when the remote manifest is already gone."""
    try:
        target.preflight()
        manifest, warning = read_remote_manifest(target, dataset_name)
        listed = target.list_keys(f"{dataset_name}/")
    except TargetError as exc:
        raise PublishError(str(exc)) from None
    scopes = remote_scopes(manifest)
    warnings = [warning] if warning else []
    local = local_scope_uids or {}
    mkey = manifest_key(dataset_name)
    if scope_id:
        entry = scopes.get(scope_id)
        if entry is None:
            warnings.append(f"the remote manifest does not list {scope_id}")
        others = {k for sid, e in scopes.items() if sid != scope_id for k in e.get("keys") or []}
        mine = set((entry or {}).get("keys") or [])
        # Once no other scope is published, the dataset's shared files go too.
        keys = sorted(k for k in listed if k != mkey and (k in mine or not others) and k not in others)
        uid, table = (entry or {}).get("scope_uid"), (entry or {}).get("lancedb_table_id")
        if uid is None and scope_id in local:
            uid, table = local[scope_id]
        uids, tables = [u for u in [uid] if u], [t for t in [table] if t]
    else:
        keys = [k for k in listed if k != mkey]
        uids = sorted({e.get("scope_uid") for e in scopes.values() if e.get("scope_uid")}
                      | {u for u, _t in local.values() if u})
        tables = sorted({e.get("lancedb_table_id") for e in scopes.values() if e.get("lancedb_table_id")}
                        | {t for _u, t in local.values() if t})
    return UnpublishPlan(dataset_name, scope_id, target, keys, tables, uids, manifest, lancedb,
                         dict(lancedb_options or {}), warnings)


def _manifest_without(plan: UnpublishPlan) -> Optional[dict]:
    """The manifest minus the scope and its objects; None when no scope is left (delete it)."""
    manifest = plan.manifest
    if manifest is None or plan.scope_id is None:
        return None
    scopes = {sid: e for sid, e in remote_scopes(manifest).items() if sid != plan.scope_id}
    if not scopes:
        return None
    gone = set(plan.keys)
    new = {**manifest, "scopes": scopes, "published_at": utc_now_iso(),
           "objects": [o for o in manifest.get("objects", []) if o.get("key") not in gone]}
    if new.get("active_scope") == plan.scope_id:
        new["active_scope"] = sorted(scopes)[-1]
    return new


def remaining(plan: UnpublishPlan) -> list[str]:
    """What is still on the target of what the plan removes (by listing)."""
    listed = set(plan.target.list_keys(f"{plan.dataset_name}/"))
    left = [k for k in plan.keys if k in listed]
    mkey = manifest_key(plan.dataset_name)
    if mkey in listed:
        if plan.scope_id is None:
            left.append(mkey)
        else:
            manifest, _warning = read_remote_manifest(plan.target, plan.dataset_name)
            if plan.scope_id in remote_scopes(manifest):
                left.append(f"{mkey} (still lists {plan.scope_id})")
    return left


def execute_unpublish(plan: UnpublishPlan, progress=None) -> dict:
    """Carry out the plan; raises :class:`PublishError` whose ``report['left']`` names what is left."""
    done: dict[str, Any] = {"deleted": [], "tables_dropped": [], "meta_rows_deleted": 0}

    def fail(step: str, exc: BaseException) -> PublishError:
        try:
            left = remaining(plan)
        except TweetscopeError:
            left = ["(the target could not be listed)"]
        report = {**done, "step": step, "left": left}
        return PublishError(f"unpublish of {plan.what} stopped at {step} ({type(exc).__name__}: {exc}); "
                            f"{len(left)} object(s) left; run it again to finish", report)

    try:
        for i, key in enumerate(plan.keys):  # one by one: an interruption leaves a precise rest
            if progress is not None:
                progress.update(i, len(plan.keys), f"deleting {key}")
            plan.target.delete([key])
            done["deleted"].append(key)
    except (TweetscopeError, OSError) as exc:
        raise fail("objects", exc) from None
    try:
        if plan.lancedb_uri:
            target = resolve_target(None, plan.lancedb_uri, **plan.lancedb_options)
            conn = target.connect()
            names = plan.tables
            if plan.scope_id is None:
                names = sorted(set(names) | set(lance_sync.dataset_tables(conn, plan.dataset_name)))
            done["tables_dropped"] = lance_sync.drop_tables(conn, names)
            done["meta_rows_deleted"] = delete_meta_rows(cp.ControlPlane(conn, target), plan)
    except Exception as exc:  # noqa: BLE001 - any LanceDB failure: report what is left
        raise fail("lancedb", exc) from exc
    try:
        mkey = manifest_key(plan.dataset_name)
        new = _manifest_without(plan)
        if new is None:
            plan.target.delete([mkey])
        else:
            data = (dumps_json(new) + "\n").encode("utf-8")
            plan.target.put_bytes(mkey, data, sha256=hashlib.sha256(data).hexdigest(),
                                  content_type="application/json", cache_control="no-cache")
        left = remaining(plan)
    except (TweetscopeError, OSError) as exc:
        raise fail("manifest", exc) from None
    if left:
        raise PublishError(f"unpublish of {plan.what}: {len(left)} object(s) still listed: {', '.join(left[:5])}",
                           {**done, "step": "verify", "left": left})
    return {**done, "dataset": plan.dataset_name, "scope_id": plan.scope_id, "target": plan.target.uri,
            "left": [], "verified_by_listing": True, "unpublished_at": utc_now_iso()}


def delete_meta_rows(plane: cp.ControlPlane, plan: UnpublishPlan) -> int:
    """Delete the ``_meta`` rows of the scope(s) (scopes, scope_artifacts) and, for a dataset, its own rows."""
    count = 0

    def delete(name: str, where: str) -> None:
        nonlocal count
        table = plane.table(name)
        before = table.count_rows()
        table.delete(where)
        count += before - table.count_rows()

    uids = list(plan.scope_uids)
    dataset_row = cp.find_dataset(plane, plan.dataset_name)
    if plan.scope_id is None and dataset_row:
        uids += [r["id"] for r in plane.rows("scopes", cp.where_equal(dataset_id=dataset_row["id"]))]
    for uid in sorted(set(uids)):
        delete("scope_artifacts", cp.where_equal(scope_id=uid))
        delete("scopes", cp.where_equal(id=uid))
    if plan.scope_id is None and dataset_row:
        for name in ("tags", "jobs"):
            delete(name, cp.where_equal(dataset_id=dataset_row["id"]))
        delete("datasets", cp.where_equal(id=dataset_row["id"]))
    return count


def format_unpublish(plan: UnpublishPlan) -> str:
    lines = [f"unpublish {plan.what} from {plan.target.uri}"]
    lines += [f"  delete object  {k}" for k in plan.keys]
    lines.append(f"  {'delete' if plan.scope_id is None or _manifest_without(plan) is None else 'rewrite'} "
                 f"manifest {manifest_key(plan.dataset_name)}")
    if plan.lancedb_uri:
        lines += [f"  drop LanceDB table {t}" for t in plan.tables] or ["  (no LanceDB table named)"]
        lines.append(f"  delete _meta rows of {len(plan.scope_uids)} scope(s)"
                     + (" and the dataset" if plan.scope_id is None else ""))
    lines += [f"warning: {w}" for w in plan.warnings]
    return "\n".join(lines)


__all__ = ["UnpublishPlan", "plan_unpublish", "execute_unpublish", "remaining", "format_unpublish"]
