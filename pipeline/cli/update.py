"""``tweetscope update --dataset D ARCHIVE``: merge a newer archive into a dataset, keeping the curation."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.cli.common import add_data_dir, cli_progress, workspace_from_args
from pipeline.core.config import add_config_arguments, config_from_args
from pipeline.update.run import UpdateConfig, plan_update, update_dataset


def plan_lines(plan: dict) -> list[str]:
    """The update's plan as the curator reads it before anything is embedded."""
    lines = [f"{plan['new']:,} new tweets, {plan['changed']:,} changed, {plan['missing']:,} missing from the newer "
             f"archive ({plan['rows_before']:,} -> {plan['rows_after']:,} rows)"]
    provider = plan.get("embedding_provider") or "the embedder"
    lines.append(f"to embed: {plan['texts_to_embed']:,} texts, ~{plan['tokens_estimate']:,} tokens (estimate) "
                 f"with {provider} {plan.get('embedding_model') or ''}".rstrip())
    return lines


def result_lines(record: dict) -> list[str]:
    lines = [f"{record['new']:,} new tweets appended at ls_index {record['new_rows'][0]:,}.., "
             f"{record['changed']:,} changed, {record['missing']:,} missing"
             + (" (deleted: tombstoned)" if record.get("removed_missing") else " (kept)")]
    if record.get("n_embedded") is not None:
        lines.append(f"embedded {record['n_embedded']:,} texts, reused {record['n_reused']:,} vectors "
                     f"({record.get('embedding_id')})")
    grown = record.get("grown_clusters") or {}
    flagged = record.get("flagged_labels") or {}
    if "artifacts" in record:
        lines.append("artifacts: " + ", ".join(f"{k} {v}" for k, v in record["artifacts"].items()))
    if grown:
        lines.append(f"{len(grown)} cluster(s) grew past the threshold: " + ", ".join(sorted(grown)))
    if flagged:
        lines.append(f"{len(flagged)} label(s) flagged for review (relabel with `tweetscope label-edit "
                     "--relabel`): " + ", ".join(sorted(flagged)))
    if record.get("note"):
        lines.append(record["note"])
    return lines


def cmd_update(args: argparse.Namespace) -> int:
    ws = workspace_from_args(args)
    config = config_from_args(UpdateConfig, args)
    if args.dry_run:
        for line in plan_lines(plan_update(ws, args.dataset, args.archive, config, cli_progress("update"))):
            print(line)
        return 0
    record = update_dataset(ws, args.dataset, args.archive, config, cli_progress("update"))
    for line in plan_lines(record)[1:] + result_lines(record):
        print(line)
    return 0


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "update", help="merge a newer archive into a dataset (keeps deletions, label edits, publish history)",
        description="Ingest a newer download of the same archive into an existing dataset: tweets are matched "
                    "by id, new ones appended and placed on the existing map and clusters, changed ones updated; "
                    "only new or changed tweets are embedded. A failed update leaves the dataset as it was.")
    p.add_argument("archive", type=Path, help="the newer archive (ZIP, extracted folder or Community Archive JSON)")
    add_data_dir(p)
    p.add_argument("--dry-run", action="store_true",
                   help="only print what the update would do and the embedding token estimate")
    add_config_arguments(p, UpdateConfig)
    p.set_defaults(func=cmd_update)
