"""``tweetscope embed | umap | cluster | recluster``: flags generated from each stage's config."""

from __future__ import annotations

import argparse

from pipeline.config import add_config_arguments, config_from_args


def _embed(args: argparse.Namespace) -> int:
    from pipeline.cli import cli_progress, workspace_from_args
    from pipeline.embed import EmbedConfig, run_embed

    dataset = workspace_from_args(args).dataset(args.dataset)
    print(run_embed(dataset, config_from_args(EmbedConfig, args), cli_progress("embed")))
    return 0


def _umap(args: argparse.Namespace) -> int:
    from pipeline.cli import cli_progress, workspace_from_args
    from pipeline.umap_stage import UmapConfig, run_umap

    dataset = workspace_from_args(args).dataset(args.dataset)
    display_id, cluster_id = run_umap(dataset, config_from_args(UmapConfig, args), cli_progress("umap"),
                                      embedding_id=args.embedding_id)
    print(f"{display_id} (display)\n{cluster_id} (cluster)")
    return 0


def _cluster(args: argparse.Namespace) -> int:
    from pipeline.cli import cli_progress, workspace_from_args
    from pipeline.cluster import ClusterConfig, run_cluster

    dataset = workspace_from_args(args).dataset(args.dataset)
    cluster_id = run_cluster(dataset, config_from_args(ClusterConfig, args), cli_progress("cluster"),
                             display_umap_id=args.umap_id, clustering_umap_id=args.clustering_umap_id)
    side = dataset.sidecar(cluster_id)
    print(f"{cluster_id}: {side['n_clusters']} clusters, {side['n_noise']} noise points reassigned")
    return 0


def _recluster(args: argparse.Namespace) -> int:
    from pipeline.cli import cli_progress, workspace_from_args
    from pipeline.cluster import recluster, save_recluster

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
    from pipeline.cli import add_data_dir
    from pipeline.cluster import ClusterConfig
    from pipeline.embed import EmbedConfig
    from pipeline.umap_stage import UmapConfig

    p = subparsers.add_parser("embed", help="embed tweet texts (local offline model or Voyage)")
    add_data_dir(p)
    add_config_arguments(p, EmbedConfig)
    p.set_defaults(func=_embed)

    p = subparsers.add_parser("umap", help="2-D display map + 10-D cluster manifold from one kNN graph")
    add_data_dir(p)
    p.add_argument("--embedding-id", default=None, help="embedding to map (default: the latest)")
    add_config_arguments(p, UmapConfig)
    p.set_defaults(func=_umap)

    p = subparsers.add_parser("cluster", help="HDBSCAN on the cluster manifold, hulls on the display map")
    add_data_dir(p)
    p.add_argument("--umap-id", default=None, help="display manifold (default: the cluster manifold's sibling)")
    p.add_argument("--clustering-umap-id", default=None,
                   help="cluster manifold (default: the display manifold's sibling, else the latest)")
    add_config_arguments(p, ClusterConfig)
    p.set_defaults(func=_cluster)

    p = subparsers.add_parser("recluster", help="re-extract clusters at a new min_cluster_size (no new MST)")
    add_data_dir(p)
    p.add_argument("--cluster-id", default=None, help="cluster artifact to start from (default: the latest)")
    p.add_argument("--min-cluster-size", type=int, required=True, help="new smallest cluster size")
    p.add_argument("--dry-run", action="store_true", help="only print how many clusters it gives")
    p.set_defaults(func=_recluster)
