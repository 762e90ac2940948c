"""One command per stage of the registry (flags from its config and inputs), plus ``recluster``."""

from __future__ import annotations

import argparse

from pipeline.cli.common import add_data_dir, cli_progress, workspace_from_args
from pipeline.core.config import add_config_arguments, config_from_args
from pipeline.stages.cluster import recluster, save_recluster
from pipeline.stages.registry import STAGES, Stage


def _stage_command(stage: Stage):
    def command(args: argparse.Namespace) -> int:
        dataset = workspace_from_args(args).dataset(args.dataset)
        config = config_from_args(stage.config, args) if stage.config is not None else None
        inputs = {i.name: getattr(args, i.name) for i in stage.inputs}
        artifact_id = stage.execute(dataset, config, inputs, cli_progress(stage.name))
        print(stage.summary(dataset, artifact_id))
        return 0

    return command


def _recluster(args: argparse.Namespace) -> int:
    dataset = workspace_from_args(args).dataset(args.dataset)
    source = dataset.require("cluster", args.cluster_id)
    if args.dry_run:
        labels = recluster(dataset, source, args.min_cluster_size)
        print(f"{source} at min_cluster_size={args.min_cluster_size}: {int(labels.max()) + 1} clusters (not saved)")
        return 0
    new_id = save_recluster(dataset, source, args.min_cluster_size, cli_progress("recluster"))
    print(f"{new_id}: {dataset.sidecar(new_id)['n_clusters']} clusters (from {source})")
    return 0


def add_commands(subparsers) -> None:
    for stage in STAGES:
        if stage.cli_command is None:
            continue
        p = subparsers.add_parser(stage.cli_command, help=stage.command_help or stage.description,
                                  description=stage.description)
        add_data_dir(p)
        for item in stage.inputs:
            p.add_argument(item.cli_flag, dest=item.name, default=None, help=item.help)
        if stage.config is not None:
            add_config_arguments(p, stage.config)
        p.set_defaults(func=_stage_command(stage))

    p = subparsers.add_parser("recluster", help="re-extract clusters at a new min_cluster_size (no new MST)")
    add_data_dir(p)
    p.add_argument("--cluster-id", default=None, help="cluster artifact to start from (default: the latest)")
    p.add_argument("--min-cluster-size", type=int, required=True, help="new smallest cluster size")
    p.add_argument("--dry-run", action="store_true", help="only print how many clusters it gives")
    p.set_defaults(func=_recluster)
