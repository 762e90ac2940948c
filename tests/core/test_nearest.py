"""Exact cosine neighbours (pipeline.core.nearest) against a brute-force sort."""

import numpy as np
import pytest

from pipeline.core import nearest


def brute_force(base: np.ndarray, queries: np.ndarray, k: int, self_first: bool = False):
    """Indices and similarities by a full sort: most similar first, ties by the lower index."""
    sims = queries @ base.T
    if self_first:
        np.fill_diagonal(sims, np.inf)
    order = np.lexsort((np.broadcast_to(np.arange(len(base)), sims.shape), -sims), axis=1)[:, :k]
    return order, np.take_along_axis(sims, order, axis=1)


def clustered(n: int, dim: int, seed: int, duplicates: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(12, dim))
    X = centres[rng.integers(0, 12, n)] + 0.4 * rng.normal(size=(n, dim))
    if duplicates:  # exact repeats, as repeated tweet texts give
        X[rng.choice(n, duplicates, replace=False)] = X[0]
    return X.astype(np.float32)


@pytest.mark.parametrize("n", [40, nearest.SELF_BLOCK + 517, 2 * nearest.SELF_BLOCK + 3])
def test_self_knn_is_the_brute_force_graph_across_blocks(n):
    X = clustered(n, 24, seed=n, duplicates=max(4, n // 100))
    idx, sims = nearest.self_knn(X, 10)
    want_idx, want_sims = brute_force(nearest.unit_rows(X), nearest.unit_rows(X), 10, self_first=True)
    assert idx.dtype == np.int32 and sims.dtype == np.float32
    assert np.array_equal(idx[:, 0], np.arange(n))  # itself first, even ahead of its duplicates
    np.testing.assert_allclose(sims[:, 1:], want_sims[:, 1:], atol=1e-5)
    # the returned rows really have those similarities, and no row appears twice
    full = nearest.unit_rows(X) @ nearest.unit_rows(X).T
    np.testing.assert_allclose(np.take_along_axis(full, idx, axis=1)[:, 1:], sims[:, 1:], atol=1e-5)
    assert all(len(set(row)) == 10 for row in idx)
    assert (idx == want_idx).mean() > 0.8  # the rest differ only among float-level ties


def test_exact_ties_go_to_the_lower_index_in_every_block():
    """Unit basis vectors give similarities of exactly 1 and 0: each row's list is itself, then
    the rows of its own class in index order, whichever block they sit in."""
    n = nearest.SELF_BLOCK + 10
    X = np.eye(4, dtype=np.float32)[np.arange(n) % 4]
    idx, sims = nearest.self_knn(X, 6)
    for row in (0, 3, n - 1, nearest.SELF_BLOCK + 2):
        same = [r for r in range(row % 4, n, 4) if r != row][:5]
        assert list(idx[row]) == [row] + same
    assert np.all(sims == 1.0)


def test_query_knn_matches_brute_force_and_bounds_memory(monkeypatch):
    base = nearest.unit_rows(clustered(3000, 16, seed=1))
    queries = nearest.unit_rows(clustered(700, 16, seed=2))
    monkeypatch.setattr(nearest, "QUERY_BLOCK_CELLS", 3000 * 64)  # 11 blocks of 64 queries
    idx, sims = nearest.query_knn(base, queries, 15)
    want_idx, want_sims = brute_force(base, queries, 15)
    assert idx.dtype == np.int64
    np.testing.assert_allclose(sims, want_sims, atol=1e-5)
    assert (idx == want_idx).mean() > 0.99
    assert nearest.query_knn(base[:5], queries[:3], 15)[0].shape == (3, 5)  # k capped at the base size


def test_results_do_not_depend_on_the_thread_count():
    import numba

    X = clustered(nearest.SELF_BLOCK + 300, 8, seed=3, duplicates=100)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = nearest.self_knn(X, 12)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = nearest.self_knn(X, 12)
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(one[0], many[0]) and np.array_equal(one[1], many[1])


def test_self_knn_refuses_more_neighbours_than_rows():
    with pytest.raises(ValueError, match="k=5 neighbours asked of 4 rows"):
        nearest.self_knn(np.ones((4, 3), dtype=np.float32), 5)


def test_cell_self_knn_finds_nearly_the_exact_graph_and_is_seeded():
    X = clustered(6_000, 32, seed=4, duplicates=40)
    exact_idx, exact_sims = nearest.self_knn(X, 10)
    idx, sims = nearest.cell_self_knn(X, 10, n_probe=16, seed=1)
    assert np.array_equal(idx[:, 0], np.arange(len(X)))  # itself first, its duplicates after
    assert len(set(idx[X[:, 0] == X[0, 0]][:, 0])) == (X[:, 0] == X[0, 0]).sum()
    assert all(len(set(row)) == 10 for row in idx[:500])
    full_sims = np.einsum("nd,nkd->nk", nearest.unit_rows(X), nearest.unit_rows(X)[idx])
    np.testing.assert_allclose(full_sims[:, 1:], sims[:, 1:], atol=1e-5)  # sims belong to the rows
    quality = (sims[:, 1:] >= exact_sims[:, -1:] - 1e-6).mean()
    assert quality > 0.99
    again = nearest.cell_self_knn(X, 10, n_probe=16, seed=1)
    assert np.array_equal(idx, again[0]) and np.array_equal(sims, again[1])
    narrow = (nearest.cell_self_knn(X, 10, n_probe=1, seed=1)[1][:, 1:] >= exact_sims[:, -1:] - 1e-6).mean()
    assert narrow < quality  # the cells really bound the search


def test_cell_search_falls_back_to_the_exact_search_where_cells_hold_too_few_rows():
    X = nearest.unit_rows(clustered(400, 8, seed=5))
    centres = nearest.cell_centres(X, 64, np.random.default_rng(0))  # ~6 rows a cell
    idx, sims = nearest.cell_search(X, X, 12, centres, 1, queries_are_base=True, index_dtype=np.int32)
    assert np.isfinite(sims).all() and (idx >= 0).all()
    assert np.array_equal(idx[:, 0], np.arange(400))
    assert all(len(set(row)) == 12 for row in idx)
