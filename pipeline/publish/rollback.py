"""Roll a target back to the previous publish of a dataset, from the local publish history.

The previous publish is the newest earlier record on the same target whose scope differs from the
latest one. Its scope is published again from the local files, so a tweet deleted since stays
deleted: planning a rollback first applies the deletions made since to that scope's local files
(what ``tweetscope tombstone apply`` does, and what the deploy gate asks for), and the publish's
privacy scan and LanceDB sync cover every deletion; the scope rolled back from leaves the manifest, and
its LanceDB table is kept as the superseded one (``keep_previous_tables``).
"""

from __future__ import annotations

from typing import Any, Optional

from pipeline.core.errors import PublishError, TweetscopeError
from pipeline.core.workspace import Dataset
from pipeline.publish.execute import (
    PublishConfig,
    PublishPlan,
    _upload_order,
    default_target_uri,
    merged_manifest,
    plan_publish,
    prune_candidates,
    publish_history,
)
from pipeline.publish.sweep import scope_needs_redaction
from pipeline.publish.targets import TargetError, open_target
from pipeline.stages.scope import rewrite_scope_rows


def rollback_records(dataset: Dataset, target_uri: str) -> tuple[dict, dict]:
    """(latest publish, the one to return to) on ``target_uri``; raises when there is none."""
    records = [r for r in publish_history(dataset)
               if (r.get("target") or {}).get("uri") == target_uri and r.get("status") == "published"]
    if not records:
        raise PublishError(f"no publish of '{dataset.name}' to {target_uri} in the local history")
    latest = records[0]
    ident = (latest.get("scope_id"), latest.get("scope_uid"))
    previous = next((r for r in records[1:] if (r.get("scope_id"), r.get("scope_uid")) != ident), None)
    if previous is None:
        raise PublishError(f"nothing to roll back to: every publish of '{dataset.name}' to {target_uri} "
                           f"is {latest.get('scope_id')}")
    return latest, previous


def plan_rollback(dataset: Dataset, target: Any = None, **opts) -> PublishPlan:
    """A publish plan that returns ``target`` to the previous publish (see the module doc)."""
    env = opts.get("env")
    if target is None or isinstance(target, str):
        config = opts.get("config") or PublishConfig()
        try:
            target = open_target(target or default_target_uri(dataset.path.parent, env),
                                 endpoint_url=opts.get("endpoint_url"), env=env, settings=config.s3_settings())
        except TargetError as exc:
            raise PublishError(str(exc)) from None
    try:
        target.preflight()  # an unusable target fails before the local redaction below
    except TargetError as exc:
        raise PublishError(str(exc)) from None
    latest, previous = rollback_records(dataset, target.uri)
    scope_id = previous["scope_id"]
    if not dataset.exists(scope_id):
        raise PublishError(f"cannot roll back to {previous.get('id')}: {scope_id} no longer exists locally")
    uid = dataset.sidecar(scope_id).get("scope_uid")
    if previous.get("scope_uid") and uid != previous["scope_uid"]:
        raise PublishError(f"cannot roll back to {previous.get('id')}: {scope_id} was re-created since "
                           f"(scope_uid {uid}, published {previous['scope_uid']})")
    if scope_needs_redaction(dataset, scope_id):  # a tweet deleted since stays deleted
        try:
            rewrite_scope_rows(dataset, scope_id)
        except (TweetscopeError, OSError, ValueError) as exc:
            raise PublishError(f"cannot roll back to {previous.get('id')}: {scope_id} still serves tweets deleted "
                               f"since and cannot be redacted ({exc})") from None
    plan = plan_publish(dataset, scope_id, target, **opts)
    plan.rollback_of = latest.get("id")
    leaving = latest.get("scope_id")
    if leaving and leaving != scope_id:
        plan.drop_scope_ids.append(leaving)
        plan.redact_scopes = [s for s in plan.redact_scopes if s != leaving]
        plan.scope_keys.pop(leaving, None)
        kept = {k for keys in plan.scope_keys.values() for k in keys}
        plan.objects = sorted((o for o in plan.objects if o.key in kept), key=_upload_order)
        if plan.config.prune:
            plan.prune_keys = prune_candidates(plan.target, dataset.name,
                                               merged_manifest(plan, None, plan.created_at))
    plan.warnings.append(f"rollback: {leaving} ({latest.get('id')}) -> {scope_id} (as in {previous.get('id')})")
    return plan


def rollback_target_of(record: Optional[dict]) -> Optional[str]:
    return ((record or {}).get("target") or {}).get("uri")


__all__ = ["plan_rollback", "rollback_records", "rollback_target_of"]
