"""Cluster stage on the sample archive: assignments, default labels, hulls, re-cluster, errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pipeline.core.progress import Cancelled, Progress
from pipeline.stages.cluster.stage import (
    SMALL_TREE_POINTS,
    TREE_SUFFIX,
    ClusterConfig,
    assign_noise,
    cluster_geometry,
    fast_hdbscan_labels,
    hdbscan_labels,
    hdbscan_tree,
    labels_from_tree,
    load_clusters,
    manifold_knn,
    manifold_neighbours,
    mst_tree,
    recluster,
    run_cluster,
    save_recluster,
)
from pipeline.stages.umap.artifact import load_umap
from support import copy_dataset


def test_cluster_artifact(mapped_dataset):
    ds = mapped_dataset
    cid = ds.latest("cluster")
    side = ds.sidecar(cid)
    display_id = ds.latest("umap", purpose="display")
    cluster_umap = ds.latest("umap", purpose="cluster")
    n = len(ds.read_input(["id"]))
    assert (side["umap_id"], side["clustering_umap_id"]) == (display_id, cluster_umap)
    assert side["embedding_id"] == ds.latest("embedding")
    assert side["inputs"] == {"umap_id": display_id, "clustering_umap_id": cluster_umap}
    assert {"min_cluster_size", "min_samples", "cluster_selection_method",
            "cluster_selection_epsilon"} <= set(side["params"])
    assert isinstance(side["params"]["min_cluster_size"], int), "auto size is recorded resolved"

    df = load_clusters(ds, cid)
    assert list(df.columns) == ["cluster", "raw_cluster"] and len(df) == n == side["rows"]
    cluster, raw = df["cluster"].to_numpy(), df["raw_cluster"].to_numpy()
    k = side["n_clusters"]
    assert k >= 2 and cluster.min() == 0 and cluster.max() == k - 1, "every row is in a cluster"
    assert side["n_noise"] == int((raw == -1).sum())
    assert (cluster[raw >= 0] == raw[raw >= 0]).all(), "clustered rows keep their HDBSCAN cluster"
    sizes = np.bincount(cluster)
    assert (np.diff(sizes) <= 0).all(), "clusters are numbered by size, largest first"
    assert sizes.tolist() == side["cluster_sizes"]
    assert ds.artifact_path(cid, "-tree.npz").is_file()


def test_default_labels_are_placeholders_with_hulls(mapped_dataset):
    ds = mapped_dataset
    cid = ds.latest("cluster")
    labels = pd.read_parquet(ds.artifact_path(cid, "-labels-default.parquet"))
    cluster = load_clusters(ds, cid)["cluster"].to_numpy()
    assert {"label", "description", "indices", "hull"} <= set(labels.columns)
    assert len(labels) == cluster.max() + 1
    xy = load_umap(ds, ds.sidecar(cid)["umap_id"]).to_numpy()
    seen = []
    for i, row in labels.iterrows():
        assert row["label"] == f"Cluster {i}" and "placeholder" in row["description"].lower()
        idx = np.asarray(row["indices"])
        assert (cluster[idx] == i).all() and row["count"] == len(idx)
        hull = np.array(row["hull"].tolist(), dtype=float) if len(row["hull"]) else np.zeros((0, 2))
        assert hull.ndim == 2 and hull.shape[1] == 2 and len(hull) >= 1
        assert (np.abs(hull) <= 1.0).all()
        np.testing.assert_allclose([row["centroid_x"], row["centroid_y"]],
                                   xy[idx].mean(axis=0), atol=0.5)
        seen.append(idx)
    assert sorted(np.concatenate(seen).tolist()) == list(range(len(cluster)))
    meta = json.loads(ds.artifact_path(cid, "-labels-default.json").read_text())
    assert meta["placeholder"] is True and meta["cluster_id"] == cid and len(meta["labels"]) == len(labels)


def test_hulls_cover_most_of_their_cluster(mapped_dataset):
    import shapely

    ds = mapped_dataset
    cid = ds.latest("cluster")
    xy = load_umap(ds, ds.sidecar(cid)["umap_id"]).to_numpy()
    labels = load_clusters(ds, cid)["cluster"].to_numpy()
    geo = cluster_geometry(xy, labels)
    assert geo["cluster"].tolist() == list(range(labels.max() + 1))
    map_area = float(np.ptp(xy[:, 0]) * np.ptp(xy[:, 1]))
    shares = []
    for row in geo.itertuples():
        polygon = shapely.Polygon(row.hull)
        assert polygon.is_valid and shapely.LinearRing(row.hull).is_ccw
        assert polygon.area <= 0.1 * map_area, "a dense core, never a polygon spanning the map (issue #19)"
        if row.count >= 20:
            inside = shapely.contains_xy(polygon.buffer(1e-6), xy[row.indices, 0], xy[row.indices, 1])
            shares.append(inside.mean())
    # the outline holds ~80 % of a cluster (its main lobe); a sparse cluster of a few dozen may hold less
    assert np.median(shares) >= 0.75 and np.mean(np.asarray(shares) >= 0.7) >= 0.85


def test_far_members_do_not_blow_up_the_outline():
    """A tight body plus 6 % of members in far clumps (repeated-text islands at 212K): the outline
    hugs the body (0.44 of its convex hull here); one grid over the stretched box drew 1.67."""
    import shapely

    rng = np.random.default_rng(7)
    body = rng.normal(scale=0.01, size=(3000, 2))
    far = np.vstack([c + rng.normal(scale=0.002, size=(60, 2)) for c in ([0.5, -0.7], [0.9, -0.1], [-0.6, 0.6])])
    neighbour = rng.normal(loc=[0.2, 0.0], scale=0.02, size=(2000, 2))  # another cluster beside it
    xy = np.vstack([body, far, neighbour])
    labels = np.r_[np.zeros(len(body) + len(far), dtype=np.int64), np.ones(len(neighbour), dtype=np.int64)]
    shapes = cluster_geometry(xy, labels)
    outline = shapely.Polygon(shapes.loc[0, "hull"])
    body_area = shapely.MultiPoint(body).convex_hull.area
    assert outline.area <= 0.8 * body_area
    inside = shapely.contains_xy(outline.buffer(1e-9), xy[labels == 0, 0], xy[labels == 0, 1]).mean()
    assert 0.7 <= inside <= 0.97
    assert abs(shapes.loc[0, "centroid_x"]) < 0.005 and abs(shapes.loc[0, "centroid_y"]) < 0.005


def test_tree_is_the_one_hdbscan_builds(mapped_dataset):
    """The stage's own neighbour query + Borůvka MST saves hdbscan.HDBSCAN's tree byte for byte, duplicates too."""
    ds = mapped_dataset
    cid = ds.latest("cluster")
    side = ds.sidecar(cid)
    X = load_umap(ds, side["clustering_umap_id"]).to_numpy(np.float32)
    config = ClusterConfig(**side["params"])
    with np.load(ds.artifact_path(cid, TREE_SUFFIX)) as saved:
        assert saved["single_linkage_tree"].tobytes() == hdbscan_tree(X, config)[1].tobytes()
    # exact duplicates tie in the neighbour order, where scipy and sklearn may differ
    doubled = np.vstack([X, X[::7]])
    dist, idx = manifold_neighbours(doubled, config.min_samples + 1)
    assert (dist[:, 1] == 0).sum() >= len(X[::7])
    assert np.array_equal(mst_tree(doubled, config.min_samples, dist, idx), hdbscan_tree(doubled, config)[1])


@pytest.mark.parametrize("method", ["eom", "leaf"])
def test_both_tree_extractors_find_the_same_clusters(mapped_dataset, method):
    """Small trees label with hdbscan's extraction, large ones with fast_hdbscan's: the same clusters."""
    ds = mapped_dataset
    cid = ds.latest("cluster")
    with np.load(ds.artifact_path(cid, TREE_SUFFIX)) as saved:
        tree = saved["single_linkage_tree"]
    size = ds.sidecar(cid)["params"]["min_cluster_size"]
    assert len(tree) + 1 <= SMALL_TREE_POINTS  # the sample takes hdbscan's path
    for min_cluster_size in (size, max(2, size // 3), size * 2):
        small = labels_from_tree(tree, min_cluster_size, method)
        np.testing.assert_array_equal(small, hdbscan_labels(tree, min_cluster_size, method, 0.0))
        large = fast_hdbscan_labels(tree, min_cluster_size, method, 0.0)
        assert small.max() >= 1 and ((small < 0) == (large < 0)).all()
        pairs = set(zip(small[small >= 0].tolist(), large[large >= 0].tolist()))
        assert len(pairs) == small.max() + 1 == large.max() + 1  # one-to-one: the same partition


def test_compiled_linkage_labels_a_spanning_tree_as_hdbscan_does():
    """Large archives label the MST with our compiled union-find: the bytes of hdbscan's ``label``."""
    from hdbscan._hdbscan_linkage import label

    from pipeline.stages.cluster.linkage import single_linkage_tree

    rng = np.random.default_rng(5)
    for n in (2, 3, 500, 20_000):
        # a random spanning tree over n points, weights with many ties, sorted as mst_tree sorts them
        ends = np.column_stack([np.arange(1, n), rng.integers(0, np.arange(1, n))])
        ends = rng.permuted(ends, axis=1)
        weights = rng.integers(0, max(2, n // 10), n - 1) / 7.0
        edges = np.column_stack([ends, weights]).astype(np.float64)[rng.permutation(n - 1)]
        edges = edges[np.argsort(edges[:, 2]), :]
        ours = single_linkage_tree(edges)
        assert ours.tobytes() == label(edges).tobytes()
        assert ours[-1, 3] == n and (np.diff(ours[:, 2]) >= 0).all()
    with pytest.raises(ValueError):
        single_linkage_tree(np.zeros((4, 2)))


def test_large_tree_path_builds_the_same_tree(mapped_dataset, monkeypatch):
    """Above SMALL_TREE_POINTS the stage's compiled labelling still saves hdbscan.HDBSCAN's tree."""
    import pipeline.stages.cluster.stage as cluster_stage

    ds = mapped_dataset
    side = ds.sidecar(ds.latest("cluster"))
    X = load_umap(ds, side["clustering_umap_id"]).to_numpy(np.float32)
    config = ClusterConfig(**side["params"])
    dist, idx = manifold_neighbours(X, config.min_samples + 1)
    monkeypatch.setattr(cluster_stage, "SMALL_TREE_POINTS", 0)
    assert mst_tree(X, config.min_samples, dist, idx).tobytes() == hdbscan_tree(X, config)[1].tobytes()


def test_noise_goes_to_its_neighbours_cluster(mapped_dataset):
    ds = mapped_dataset
    cid = ds.latest("cluster")
    X = load_umap(ds, ds.sidecar(cid)["clustering_umap_id"]).to_numpy()
    raw = load_clusters(ds, cid)["raw_cluster"].to_numpy().astype(np.int64)
    knn = manifold_knn(X)
    assigned = assign_noise(raw, knn, X)
    assert (assigned >= 0).all() and (assigned[raw >= 0] == raw[raw >= 0]).all()
    for i in np.flatnonzero(raw < 0)[:50]:
        neighbours = raw[knn[i]]
        neighbours = neighbours[neighbours >= 0]
        if len(neighbours):  # directly voted: the winner is among its clustered neighbours
            assert assigned[i] in neighbours


def test_noise_vote_is_the_exact_weighted_majority_with_lowest_label_on_ties():
    """Against a Fraction reference: weight 1/(rank+1), exact ties (1/10 + 1/15 = 1/6) to the lowest label."""
    from fractions import Fraction

    from pipeline.stages.cluster.stage import _rank_weights, _weighted_vote

    rng = np.random.default_rng(3)
    votes = rng.integers(-1, 4, (2000, 15))
    votes[rng.random(votes.shape) < 0.6] = -1
    votes[0] = -1
    votes[1] = [-1] * 5 + [2] + [-1] * 3 + [1] + [-1] * 4 + [1]  # 1/6 for label 2, 1/10 + 1/15 for label 1
    got = _weighted_vote(votes, _rank_weights(15), 4)
    for row, winner in zip(votes, got):
        score: dict = {}
        for rank, label in enumerate(row):
            if label >= 0:
                score[label] = score.get(label, 0) + Fraction(1, rank + 1)
        want = min(label for label, s in score.items() if s == max(score.values())) if score else -1
        assert winner == want
    assert got[0] == -1 and got[1] == 1


def test_recluster_agrees_with_a_full_run(mapped_dataset, tmp_path):
    ds = copy_dataset(mapped_dataset, tmp_path)
    cid = ds.latest("cluster")
    params = ds.sidecar(cid)["params"]
    new_size = max(5, params["min_cluster_size"] // 2)
    fast = recluster(ds, cid, new_size)
    fast_raw = recluster(ds, cid, new_size, raw=True)
    full_id = run_cluster(ds, ClusterConfig(**{**params, "min_cluster_size": new_size}))
    full = load_clusters(ds, full_id)
    np.testing.assert_array_equal(fast, full["cluster"].to_numpy())
    np.testing.assert_array_equal(fast_raw, full["raw_cluster"].to_numpy())

    saved_id = save_recluster(ds, cid, new_size)
    side = ds.sidecar(saved_id)
    assert side["reclustered_from"] == cid and side["params"]["min_cluster_size"] == new_size
    assert side["inputs"] == ds.sidecar(cid)["inputs"]
    pd.testing.assert_frame_equal(load_clusters(ds, saved_id), full)
    # the saved artifact can itself be re-clustered
    np.testing.assert_array_equal(recluster(ds, saved_id, params["min_cluster_size"]),
                                  load_clusters(ds, cid)["cluster"].to_numpy())


def test_refuses_to_cluster_the_display_manifold(mapped_dataset, tmp_path):
    ds = copy_dataset(mapped_dataset, tmp_path)
    display_id = ds.latest("umap", purpose="display")
    before = ds.list_ids("cluster")
    with pytest.raises(ValueError, match="2-D display manifold.*never on 2-D"):
        run_cluster(ds, clustering_umap_id=display_id)
    assert ds.list_ids("cluster") == before


def test_cancel_leaves_no_cluster_artifact(mapped_dataset, tmp_path):
    ds = copy_dataset(mapped_dataset, tmp_path)
    before = ds.list_ids("cluster")
    progress = Progress(lambda e: e.done >= 70 and progress.cancel())
    with pytest.raises(Cancelled):
        run_cluster(ds, progress=progress)
    assert ds.list_ids("cluster") == before
    assert not [p for p in (ds.path / "clusters").iterdir() if p.name.startswith(".tmp-")]


def test_cli_commands(mapped_dataset, tmp_path, capsys):
    from pipeline.cli.main import main

    ds = copy_dataset(mapped_dataset, tmp_path)
    base = ["--data-dir", str(ds.path.parent), "--dataset", ds.name]
    assert main(["recluster", *base, "--min-cluster-size", "8", "--dry-run"]) == 0
    assert "clusters (not saved)" in capsys.readouterr().out
    assert main(["cluster", *base, "--clustering-umap-id", ds.latest("umap", purpose="display")]) == 1
    assert "display manifold" in capsys.readouterr().err
    assert main(["cluster", *base, "--min-cluster-size", "12", "--min-samples", "5"]) == 0
    new_id = ds.latest("cluster")
    assert ds.sidecar(new_id)["params"]["min_cluster_size"] == 12
    assert main(["umap", *base, "--embedding-id", "embedding-404"]) == 1
    assert "embedding-404" in capsys.readouterr().err
