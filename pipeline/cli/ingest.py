"""``tweetscope ingest ARCHIVE``: make a dataset from an archive."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.cli.common import add_data_dir, cli_progress, workspace_from_args
from pipeline.core.config import add_config_arguments, config_from_args
from pipeline.stages.ingest import IngestConfig, ingest_archive, skipped_records_lines

#: skipped records printed by the CLI; meta.json lists them all
MAX_SKIPPED_SHOWN = 200


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "ingest",
        help="make a dataset from an X archive (ZIP or folder) or a Community Archive JSON",
        description="Read an X archive (the ZIP from 'Download your data', its extracted folder, or a "
                    "pre-2019 archive) or a Community Archive JSON and write the dataset's "
                    "input.parquet and meta.json. A malformed record stops the ingest (nothing is "
                    "written) unless --skip-bad-records.",
    )
    p.add_argument("archive", type=Path, help="archive ZIP, extracted archive folder, or Community Archive JSON")
    add_data_dir(p, dataset=False)
    p.add_argument("--dataset", default=None,
                   help="dataset name (default: <username>-tweets from the archive's account)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset of that name")
    add_config_arguments(p, IngestConfig)
    p.set_defaults(func=cmd_ingest)


def summary_line(dataset) -> str:
    meta = dataset.meta()
    types = meta["counts"]["tweet_types"]
    parts = ", ".join(f"{types[t]:,} {t}" for t in ("tweet", "reply", "quote", "retweet", "like") if types.get(t))
    return f"ingested {meta['length']:,} rows ({parts}) into {dataset.path}"


def cmd_ingest(args: argparse.Namespace) -> int:
    config = config_from_args(IngestConfig, args)
    progress = cli_progress("ingest")
    try:
        dataset = ingest_archive(
            args.archive, workspace_from_args(args), args.dataset,
            overwrite=args.overwrite, progress=progress, **config.to_dict(),
        )
    finally:
        bar = progress.callback
        if hasattr(bar, "close"):
            bar.close()
    print(summary_line(dataset))
    for line in skipped_records_lines(dataset.meta(), MAX_SKIPPED_SHOWN):
        print(line)
    return 0
