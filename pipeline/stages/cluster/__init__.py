"""Cluster stage: HDBSCAN on the cluster manifold, shapes on the display map, live re-extraction."""

from pipeline.stages.cluster.stage import ClusterConfig, load_clusters, recluster, run, run_cluster, save_recluster

__all__ = ["ClusterConfig", "load_clusters", "recluster", "run", "run_cluster", "save_recluster"]
