"""``tweetscope publish``: plan a publish (dry run), then carry it out with ``--execute``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipeline.cli.common import UserError, add_data_dir, add_target_arguments, cli_progress, workspace_from_args
from pipeline.core.config import add_config_arguments, config_from_args
from pipeline.publish.execute import (
    PublishConfig,
    PublishError,
    _human,
    default_target_uri,
    execute_publish,
    format_plan,
    plan_publish,
    verify_remote,
)
from pipeline.publish.rollback import plan_rollback
from pipeline.publish.serving_check import (
    check_public_url,
    check_serving,
    cors_origin_from_env,
    public_url_from_env,
    published_objects,
)


def cmd_publish(args: argparse.Namespace) -> int:
    ws = workspace_from_args(args)
    dataset = ws.dataset(args.dataset)
    target = args.target or default_target_uri(ws.data_dir)
    if args.verify:
        problems = verify_remote(target, dataset, endpoint_url=args.endpoint_url, deep=args.deep)
        for p in problems:
            print(p)
        print("remote is consistent" if not problems else f"{len(problems)} problem(s)")
        return 0 if not problems else 1
    config = config_from_args(PublishConfig, args)
    public_url = args.public_url or public_url_from_env()
    lancedb = False if args.no_lancedb else args.lancedb  # None: $LANCEDB_URI when set
    try:
        if public_url:
            check_public_url(public_url)  # a typo here must not wait until after the upload
        make_plan = plan_rollback if args.rollback else plan_publish
        if args.rollback and args.scope:
            raise PublishError("--rollback publishes the previous scope from the history; drop --scope")
        plan = make_plan(dataset, *(() if args.rollback else (args.scope,)), target, config=config,
                         endpoint_url=args.endpoint_url, lancedb=lancedb,
                         archives=tuple(args.archive or ()))
    except PublishError as exc:
        raise UserError(str(exc)) from None
    if args.json:
        print(json.dumps(plan.to_dict(), indent=2))
    else:
        print(format_plan(plan))
    if plan.blocked:
        raise UserError(f"{plan.scope_id} failed the deploy gate ({len(plan.gate_errors)} error(s)); "
                        "fix them (`tweetscope validate`) before publishing")
    if not args.execute:
        print("dry run: nothing was sent; add --execute to publish")
        return 0
    try:
        record = execute_publish(plan, cli_progress("publish"))
    except PublishError as exc:
        report = exc.report or {}
        for key in report.get("uploaded", []):
            print(f"  uploaded      {key}")
        for key, why in report.get("failed", {}).items():
            print(f"  FAILED        {key}: {why}")
        for key in report.get("not_uploaded", []):
            print(f"  not uploaded  {key}")
        for finding in report.get("privacy_findings", []):
            print(f"  privacy       {finding}")
        raise UserError(str(exc)) from None
    print(f"published {record['id']}: {len(record['uploaded'])} object(s), "
          f"{_human(record['bytes_uploaded'])} ({record['bytes_uploaded']} bytes) sent, "
          f"{len(record['unchanged'])} unchanged, {len(record['deleted'])} deleted; "
          f"manifest {record['manifest_key']}")
    if record.get("lancedb"):
        print(f"LanceDB: {json.dumps(record['lancedb'])}")
    if public_url:
        report = check_serving(public_url, published_objects(plan), origin=args.cors_origin or cors_origin_from_env())
        print(report.format())
        if not report.ok:
            raise UserError(f"published, but {public_url} does not serve it the way the app reads it; "
                            "change what the failed checks say, then run the publish again")
    return 0


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "publish", help="publish a scope to a CDN folder / R2 bucket (dry run unless --execute)",
        description="Plan (and with --execute, carry out) a publish of a scope's CDN files: "
                    "validator gate, allowlist, SHA-256 diff, privacy scan, verified uploads, "
                    "manifest last. Credentials come from the environment only.")
    add_data_dir(p)
    p.add_argument("--scope", default=None, help="scope id, e.g. scopes-001 (default: the latest)")
    add_target_arguments(p, "carry out the plan (default: dry run)")
    p.add_argument("--rollback", action="store_true",
                   help="publish the previous publish again (from the local history); tweets deleted "
                        "since stay deleted")
    p.add_argument("--archive", action="append", type=Path, default=None,
                   help="the original archive (zip/folder/JSON): the privacy scan also fails on its "
                        "account email (repeatable; or set $TWEETSCOPE_ACCOUNT_EMAILS)")
    p.add_argument("--public-url", default=None,
                   help="public base URL of the target (default $R2_PUBLIC_URL): after the publish, check "
                        "Range reads, CORS and headers through it")
    p.add_argument("--cors-origin", default=None,
                   help="origin of the app that reads the data, for the CORS check "
                        "(default $TWEETSCOPE_CORS_ORIGIN, else a probe origin)")
    p.add_argument("--verify", action="store_true",
                   help="only check the remote manifest against the remote objects")
    p.add_argument("--deep", action="store_true", help="with --verify: download and hash every object")
    add_config_arguments(p, PublishConfig)
    p.set_defaults(func=cmd_publish)
