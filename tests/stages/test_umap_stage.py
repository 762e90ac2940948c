"""UMAP stage on the sample archive: both manifolds, sidecars, determinism, errors, cancel."""

from __future__ import annotations

import io
import shutil
import threading

import numpy as np
import pandas as pd
import pytest
from tqdm import tqdm

from pipeline.core.progress import Cancelled, Progress
from pipeline.core.workspace import WorkspaceError
from pipeline.stages.umap.stage import MIN_ROWS, UmapConfig, effective_n_neighbors, load_umap, run_umap
from support import copy_dataset


def manifolds(ds):
    return ds.latest("umap", purpose="display"), ds.latest("umap", purpose="cluster")


def test_display_and_cluster_manifolds(mapped_dataset):
    ds = mapped_dataset
    display_id, cluster_id = manifolds(ds)
    n = len(ds.read_input(["id"]))
    emb = ds.latest("embedding")
    disp, clus = ds.sidecar(display_id), ds.sidecar(cluster_id)

    assert (disp["purpose"], disp["n_components"], disp["embedding_id"]) == ("display", 2, emb)
    assert (clus["purpose"], clus["n_components"], clus["min_dist"]) == ("cluster", 10, 0.0)
    assert disp["cluster_umap_id"] == cluster_id and clus["display_umap_id"] == display_id
    for side in (disp, clus):
        assert side["inputs"] == {"embedding_id": emb} and side["rows"] == n
        assert side["metric"] == "cosine" and side["seed"] == 42 and side["shared_knn"] is True
        assert {"n_neighbors", "min_dist", "seed", "cluster_dimensions"} <= set(side["params"])
        assert {"knn_s", "fit_s", "total_s"} <= set(side["timings"])
        assert len(side["min_values"]) == side["n_components"] == len(side["max_values"])

    xy = load_umap(ds, display_id)
    assert list(xy.columns) == ["x", "y"] and (xy.dtypes == np.float32).all() and len(xy) == n
    assert xy.min().tolist() == [-1.0, -1.0] and xy.max().tolist() == [1.0, 1.0]
    dims = load_umap(ds, cluster_id)
    assert list(dims.columns) == [f"dim_{i}" for i in range(10)] and (dims.dtypes == np.float32).all()
    np.testing.assert_allclose(clus["min_values"], dims.min().to_numpy(), rtol=1e-6)

    png = ds.artifact_path(display_id, ".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size < 500_000
    assert not ds.artifact_path(cluster_id, ".png").exists(), "QA image for the display manifold only"
    assert ds.status("umap", purpose="display")["status"] == "done"


def test_same_seed_gives_identical_manifolds(mapped_dataset, tmp_path):
    """The fixture fitted one manifold after the other; fitting them side by side in two
    processes (what large seeded runs do) must give the very same bytes."""
    ds = copy_dataset(mapped_dataset, tmp_path)
    first = manifolds(ds)
    assert ds.sidecar(first[0])["fits_side_by_side"] is False
    again = run_umap(ds, UmapConfig(parallel_fits="always"), embedding_id=ds.latest("embedding"))
    assert again != first and again == manifolds(ds), "new artifacts, never overwritten"
    assert ds.sidecar(again[0])["fits_side_by_side"] is True
    for old, new in zip(first, again):
        pd.testing.assert_frame_equal(load_umap(ds, old), load_umap(ds, new))
        assert ds.artifact_path(old, ".parquet").read_bytes() == ds.artifact_path(new, ".parquet").read_bytes()


@pytest.mark.parametrize("parallel_fits", ["never", "always"])
def test_cancel_during_the_fit_writes_nothing(mapped_dataset, tmp_path, parallel_fits):
    import psutil

    ds = copy_dataset(mapped_dataset, tmp_path)
    before = ds.list_ids("umap")
    children = {p.pid for p in psutil.Process().children(recursive=True)}
    progress = Progress(lambda e: "epoch" in e.message and progress.cancel())
    with pytest.raises(Cancelled):
        run_umap(ds, UmapConfig(parallel_fits=parallel_fits), progress=progress)
    # the side-by-side worker is gone with the cancel
    def workers():
        found = []
        for p in psutil.Process().children(recursive=True):
            try:
                if p.pid not in children and p.status() != psutil.STATUS_ZOMBIE and \
                        "resource_tracker" not in " ".join(p.cmdline()):
                    found.append(p)
            except psutil.NoSuchProcess:
                pass
        return found
    assert not workers()
    assert ds.list_ids("umap") == before
    # the cancel is raised inside UMAP's progress bar; tqdm's process-wide write lock must not stay
    # held, or the next job's progress bar in another thread (the studio's) waits forever
    drawn = threading.Event()
    threading.Thread(target=lambda: (tqdm(range(1), file=io.StringIO()).close(), drawn.set()), daemon=True).start()
    assert drawn.wait(20), "tqdm's lock was left held by the cancelled fit"
    assert not [p for p in (ds.path / "umaps").iterdir() if p.name.startswith(".tmp-")]


def test_missing_embedding_is_a_clear_error(sample_dataset, mapped_dataset, tmp_path):
    ds = copy_dataset(mapped_dataset, tmp_path)
    with pytest.raises(WorkspaceError, match="no embedding-077"):
        run_umap(ds, embedding_id="embedding-077")
    bare = copy_dataset(sample_dataset, tmp_path / "bare")
    shutil.rmtree(bare.path / "embeddings", ignore_errors=True)
    with pytest.raises(WorkspaceError, match="run `tweetscope embed` first"):
        run_umap(bare)


def test_small_datasets_clamp_neighbours_and_tiny_ones_are_refused():
    assert effective_n_neighbors(50_000, 25) == 25
    assert effective_n_neighbors(30, 25) == 9
    assert 2 <= effective_n_neighbors(MIN_ROWS, 25) < MIN_ROWS
    with pytest.raises(ValueError, match=f"at least {MIN_ROWS} rows"):
        effective_n_neighbors(MIN_ROWS - 1, 25)


def test_a_small_real_subset_maps(mapped_dataset, tmp_path):
    """40 real tweets: the clamped graph still gives finite, scaled coordinates."""
    import h5py

    from pipeline.stages.embed.stage import load_embeddings

    ds = copy_dataset(mapped_dataset, tmp_path)
    X = load_embeddings(ds)[:40]
    with ds.new_artifact("embedding") as art:
        with h5py.File(art.path(".h5"), "w") as h5:
            h5.create_dataset("embeddings", data=X)
        art.write_sidecar({"provider": "local", "model_id": "all-MiniLM-L6-v2-int8", "dimensions": 384},
                          inputs={"input": "subset"}, rows=40)
    display_id, cluster_id = run_umap(ds, UmapConfig(n_epochs=50), embedding_id=art.id)
    assert ds.sidecar(display_id)["n_neighbors"] < UmapConfig().n_neighbors
    assert np.isfinite(load_umap(ds, cluster_id).to_numpy()).all()
    assert len(load_umap(ds, display_id)) == 40


def test_display_scaling_keeps_far_groups_at_the_rim():
    from pipeline.stages.umap.stage import RIM, scale_to_unit

    rng = np.random.default_rng(0)
    bulk = rng.normal(0, 1, (2_000, 2))
    plain, lo, hi = scale_to_unit(bulk)  # no far group: exactly a min-max scale
    expected = (bulk - bulk.min(axis=0)) / (bulk.max(axis=0) - bulk.min(axis=0)) * 2 - 1
    assert np.allclose(plain, expected, atol=1e-6) and lo == bulk.min(axis=0).tolist()

    far = np.vstack([bulk, rng.normal(0, 0.05, (20, 2)) + [-40.0, 60.0]])  # 1 % of points, far off
    xy, lo, hi = scale_to_unit(far)
    assert xy.min(axis=0).tolist() == [-1.0, -1.0] and xy.max(axis=0).tolist() == [1.0, 1.0]
    assert lo == far.min(axis=0).tolist() and hi == far.max(axis=0).tolist()  # raw extent still recorded
    inner = xy[:2_000]
    assert inner[:, 0].min() == -1.0 + RIM and inner[:, 1].max() == pytest.approx(1.0 - RIM, abs=1e-6)
    assert (np.abs(xy[2_000:]) >= 1.0 - RIM - 1e-6).any(axis=1).all()  # the far group sits in the rim
    for j in range(2):  # every point keeps its order on each axis
        order = np.argsort(far[:, j], kind="stable")
        assert (np.diff(xy[order, j]) >= 0).all()
    assert scale_to_unit(np.ones((10, 2)))[0].tolist() == np.zeros((10, 2)).tolist()
