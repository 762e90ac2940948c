"""``tweetscope run``: every missing or stale stage of a dataset, in order, with default settings."""

from __future__ import annotations

import argparse

from pipeline.cli.common import add_data_dir, cli_progress, workspace_from_args
from pipeline.stages.ingest import ingest_archive
from pipeline.stages.runner import STAGE_NAMES, plan_pipeline, run_pipeline


def cmd_run(args: argparse.Namespace) -> int:
    ws = workspace_from_args(args)
    if args.archive:
        ingest_archive(args.archive, ws, args.dataset, overwrite=args.overwrite,
                       progress=cli_progress("ingest"))
    dataset = ws.dataset(args.dataset)
    plan = plan_pipeline(dataset, args.stages, args.force)
    if not plan:
        print(f"{dataset.name}: every stage is up to date")
        return 0
    for name, reason in plan:
        print(f"will run {name}: {reason}")
    if args.dry_run:
        return 0
    report = run_pipeline(dataset, cli_progress("run"), args.stages, args.force)
    for name, result, seconds in report.ran:
        print(f"{name}: {result} ({seconds:.1f} s)")
    return 0


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("run", help="run every missing or stale stage with default settings")
    add_data_dir(p)
    p.add_argument("--archive", help="ingest this archive first (ZIP, folder or Community Archive JSON)")
    p.add_argument("--overwrite", action="store_true", help="with --archive: replace an existing dataset")
    p.add_argument("--stages", nargs="*", choices=STAGE_NAMES, help="only these stages")
    p.add_argument("--force", action="store_true", help="run the stages even when they are up to date")
    p.add_argument("--dry-run", action="store_true", help="print what would run and stop")
    p.set_defaults(func=cmd_run)
