"""``tweetscope label-edit`` and ``label-diff``: curate a labels artifact (``label`` itself is a stage command)."""

from __future__ import annotations

import argparse

from pipeline.cli.common import UserError, add_data_dir, cli_progress, workspace_from_args
from pipeline.stages.labels import edits
from pipeline.stages.labels.table import STATUSES


def cmd_label_edit(args: argparse.Namespace) -> int:
    dataset = workspace_from_args(args).dataset(args.dataset)
    labels_id = dataset.require("toponymy", args.labels)
    clusters = args.cluster
    if args.relabel:
        if args.label is not None or args.description is not None:
            raise UserError("--relabel asks the namer for new labels; do not combine it with --label/--description")
        new_id = edits.relabel(dataset, labels_id, clusters, progress=cli_progress("relabel"))
        if args.status:
            new_id = edits.set_status(dataset, new_id, clusters, args.status, args.note)
    else:
        change = {k: v for k, v in (("label", args.label), ("description", args.description),
                                    ("status", args.status)) if v is not None}
        if not change:
            raise UserError("nothing to change: give --label, --description, --status or --relabel")
        if len(clusters) > 1 and ("label" in change or "description" in change):
            raise UserError("--label/--description edit one cluster at a time; --status may name several")
        new_id = edits.edit_labels(dataset, labels_id, {cid: dict(change) for cid in clusters}, args.note)
    print(f"{new_id}: saved (edited from {labels_id})")
    return 0


def cmd_label_diff(args: argparse.Namespace) -> int:
    dataset = workspace_from_args(args).dataset(args.dataset)
    diff = edits.diff_labels(dataset, args.a, args.b)
    if diff.empty:
        print(f"{args.a} and {args.b} have the same labels, descriptions and statuses")
        return 0
    for row in diff.itertuples(index=False):
        parts = []
        if row.label_a != row.label_b:
            parts.append(f"label {row.label_a!r} -> {row.label_b!r}")
        if row.description_a != row.description_b:
            parts.append("description changed")
        if row.status_a != row.status_b:
            parts.append(f"status {row.status_a} -> {row.status_b}")
        print(f"{row.cluster}\t{row.change}\t" + "; ".join(parts))
    print(f"{len(diff)} cluster(s) differ")
    return 0


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("label-edit", help="edit, approve, flag or relabel clusters (saves a new labels artifact)")
    add_data_dir(p)
    p.add_argument("--labels", default=None, help="label artifact to edit, e.g. toponymy-002 (default: the latest)")
    p.add_argument("--cluster", action="append", required=True, help="cluster id, e.g. 0_3 (repeat for several)")
    p.add_argument("--label", default=None, help="new label")
    p.add_argument("--description", default=None, help="new description")
    p.add_argument("--status", choices=STATUSES, default=None, help="new review status")
    p.add_argument("--relabel", action="store_true", help="ask the namer (the artifact's provider) for new labels")
    p.add_argument("--note", default="", help="a note stored with the edit")
    p.set_defaults(func=cmd_label_edit)

    p = subparsers.add_parser("label-diff", help="clusters whose label, description or status differ")
    add_data_dir(p)
    p.add_argument("a", help="label artifact id, e.g. toponymy-001")
    p.add_argument("b", help="label artifact id, e.g. toponymy-002")
    p.set_defaults(func=cmd_label_diff)
