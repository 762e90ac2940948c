"""``tweetscope unpublish``: remove a published scope (or dataset) from a target; dry run unless ``--execute``."""

from __future__ import annotations

import argparse
import json
import os

from pipeline.cli.common import UserError, add_data_dir, add_target_arguments, cli_progress, workspace_from_args
from pipeline.publish.execute import default_target_uri, lance_storage_options
from pipeline.publish.plan import PublishError
from pipeline.publish.targets import TargetError, open_target, resolve_endpoint
from pipeline.publish.unpublish import execute_unpublish, format_unpublish, plan_unpublish


def _local_scopes(dataset) -> dict:
    """scope id -> (scope_uid, lancedb_table_id) of the local scopes (names tables once the manifest is gone)."""
    out = {}
    for sid in dataset.list_ids("scopes"):
        side = dataset.sidecar(sid)
        out[sid] = (side.get("scope_uid"), side.get("lancedb_table_id"))
    return out


def cmd_unpublish(args: argparse.Namespace) -> int:
    ws = workspace_from_args(args)
    env = os.environ
    target_uri = args.target or default_target_uri(ws.data_dir)
    lancedb = None if args.no_lancedb else (args.lancedb or env.get("LANCEDB_URI") or None)
    options = {}
    if lancedb and lancedb.startswith("s3://"):
        options["storage_options"] = lance_storage_options(resolve_endpoint(args.endpoint_url, env), env)
    local = {}
    if ws.has_dataset(args.dataset):
        local = _local_scopes(ws.dataset(args.dataset))
    try:
        target = open_target(target_uri, endpoint_url=args.endpoint_url, env=env)
        plan = plan_unpublish(args.dataset, target, args.scope, lancedb=lancedb, lancedb_options=options,
                              local_scope_uids=local)
    except (PublishError, TargetError) as exc:
        raise UserError(str(exc)) from None
    print(json.dumps(plan.to_dict(), indent=2) if args.json else format_unpublish(plan))
    if not args.execute:
        print("dry run: nothing was removed; add --execute to unpublish")
        return 0
    try:
        result = execute_unpublish(plan, cli_progress("unpublish"))
    except PublishError as exc:
        for key in (exc.report or {}).get("left", []):
            print(f"  left  {key}")
        raise UserError(str(exc)) from None
    print(f"unpublished {plan.what}: {len(result['deleted'])} object(s) deleted, "
          f"{len(result['tables_dropped'])} LanceDB table(s) dropped, {result['meta_rows_deleted']} _meta row(s) "
          "deleted; nothing left (verified by listing)")
    return 0


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "unpublish", help="remove a published scope or dataset from a target (dry run unless --execute)",
        description="Remove a scope's (or, without --scope, the dataset's) CDN objects, manifest entries, "
                    "LanceDB tables and _meta rows, then verify by listing. Idempotent: an interrupted "
                    "run says what is left, and running it again finishes it.")
    add_data_dir(p)
    p.add_argument("--scope", default=None, help="only this scope (default: the whole dataset)")
    add_target_arguments(p, "carry out the removal (default: dry run)")
    p.set_defaults(func=cmd_unpublish)
