"""``tweetscope ingest ARCHIVE``: make a dataset from an archive."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.cli.common import add_data_dir, cli_progress, workspace_from_args
from pipeline.stages.ingest import ingest_archive


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "ingest",
        help="make a dataset from an X archive (ZIP or folder) or a Community Archive JSON",
        description="Read an X archive (the ZIP from 'Download your data', its extracted folder, or a "
                    "pre-2019 archive) or a Community Archive JSON and write the dataset's "
                    "input.parquet and meta.json.",
    )
    p.add_argument("archive", type=Path, help="archive ZIP, extracted archive folder, or Community Archive JSON")
    add_data_dir(p, dataset=False)
    p.add_argument("--dataset", default=None,
                   help="dataset name (default: <username>-tweets from the archive's account)")
    p.add_argument("--include-likes", action="store_true", help="add liked tweets as rows (tweet_type 'like')")
    p.add_argument("--include-deleted", action="store_true", help="add the archive's deleted tweets as rows")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset of that name")
    p.set_defaults(func=cmd_ingest)


def summary_line(dataset) -> str:
    meta = dataset.meta()
    types = meta["counts"]["tweet_types"]
    parts = ", ".join(f"{types[t]:,} {t}" for t in ("tweet", "reply", "quote", "retweet", "like") if types.get(t))
    return f"ingested {meta['length']:,} rows ({parts}) into {dataset.path}"


def cmd_ingest(args: argparse.Namespace) -> int:
    progress = cli_progress("ingest")
    try:
        dataset = ingest_archive(
            args.archive, workspace_from_args(args), args.dataset,
            include_likes=args.include_likes, include_deleted=args.include_deleted,
            overwrite=args.overwrite, progress=progress,
        )
    finally:
        bar = progress.callback
        if hasattr(bar, "close"):
            bar.close()
    print(summary_line(dataset))
    return 0
