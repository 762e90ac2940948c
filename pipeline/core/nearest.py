"""Cosine nearest neighbours: exact (blocked matrix products) or by coarse cells, with a compiled top-k.

Both the UMAP stage (a tweet's neighbours among all tweets) and an update's placement (new
tweets' neighbours among old ones) need the exact top-``k`` of dot products of unit vectors.
NumPy's ``argpartition`` over every block of similarities cost more than the products
themselves (50K tweets: 16 s of 25 s); a compiled scan that keeps each row's ``k`` best in
a small sorted buffer reads every similarity once, on all cores (2 s). For a graph of one
set with itself, ``sims`` is symmetric, so only blocks on and above the diagonal are
multiplied and each off-diagonal block is offered to both its rows and its columns.

Too many rows for the exact product, the search goes by coarse cells (an inverted file): a
few rounds of spherical k-means on a sample give ~2·sqrt(n) cell centres, every base row
joins its nearest centre, and each query is compared only with the rows of its ``n_probe``
nearest cells (an update's 12K new tweets against 200K old ones: 2 s instead of 43 s).

Ties are broken by the order candidates are offered (index order within a block, cells in
order), and a later equal one never displaces an earlier one, so results are deterministic
at any thread count.
"""

from __future__ import annotations

# isort: off
import pipeline.core.numba_env  # noqa: F401  (before numba: kernels cache in NUMBA_CACHE_DIR)
# isort: on
import numba
import numpy as np

#: square blocks of the self-graph: 4,096 x 4,096 float32 similarities (64 MB) per product
SELF_BLOCK = 4096
#: (query rows x base rows) similarities per block of a query-vs-base search: 256 MB of float32
QUERY_BLOCK_CELLS = 64_000_000
#: cells each query searches: 32 of ~900 found 99.4 % of exact-quality neighbours at 200K
DEFAULT_PROBE = 32
_ASSIGN_ROWS = 50_000
_COLUMN_CHUNK = 256  # columns scanned together: a block row segment of 1 KB per read (page-friendly)


def unit_rows(X: np.ndarray) -> np.ndarray:
    """float32 rows scaled to unit length (zero rows stay zero)."""
    X = np.asarray(X, dtype=np.float32)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(norms > 0, norms, 1.0)


def self_knn(X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` most cosine-similar rows of ``X``, itself first: (int32 indices, float32 sims).

    A row always comes first in its own list, ahead of exact duplicates of it.
    """
    Xn = unit_rows(X)
    n = len(Xn)
    if not 0 < k <= n:
        raise ValueError(f"k={k} neighbours asked of {n} rows")
    idx = np.full((n, k), -1, dtype=np.int32)
    sims = np.full((n, k), -np.inf, dtype=np.float32)
    for row0 in range(0, n, SELF_BLOCK):
        rows = Xn[row0:row0 + SELF_BLOCK]
        for col0 in range(row0, n, SELF_BLOCK):
            block = rows @ Xn[col0:col0 + SELF_BLOCK].T
            if col0 == row0:
                np.fill_diagonal(block, np.inf)  # a point is its own nearest neighbour
            _offer_rows(block, row0, col0, idx, sims)
            if col0 != row0:
                _offer_columns(block, row0, col0, idx, sims)
    sims[:, 0] = 1.0
    return idx, sims


def cell_self_knn(X: np.ndarray, k: int, n_probe: int = DEFAULT_PROBE,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """:func:`self_knn` by coarse cells: each row searches its ``n_probe`` nearest cells (seeded)."""
    Xn = unit_rows(X)
    if not 0 < k <= len(Xn):
        raise ValueError(f"k={k} neighbours asked of {len(Xn)} rows")
    centres = cell_centres(Xn, n_cells(len(Xn)), np.random.default_rng(seed))
    return cell_search(Xn, Xn, k, centres, n_probe, queries_are_base=True, index_dtype=np.int32)


def query_knn(base: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each query row's ``k`` most similar ``base`` rows by dot product (pass unit rows for cosine).

    Returns (int64 indices, float32 similarities), most similar first; memory stays bounded
    at any size.
    """
    base = np.ascontiguousarray(base, dtype=np.float32)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    k = int(min(k, len(base)))
    idx = np.full((len(queries), k), -1, dtype=np.int64)
    sims = np.full((len(queries), k), -np.inf, dtype=np.float32)
    step = max(1, QUERY_BLOCK_CELLS // max(len(base), 1))
    for row0 in range(0, len(queries), step):
        _offer_rows(queries[row0:row0 + step] @ base.T, row0, 0, idx, sims)
    return idx, sims


def n_cells(n_base: int) -> int:
    """Coarse cells for ``n_base`` rows: ~2·sqrt(n), so a cell holds ~sqrt(n)/2 rows."""
    return int(min(max(16, 2 * np.sqrt(n_base)), 4096))


def cell_centres(base: np.ndarray, cells: int, rng: np.random.Generator, rounds: int = 3) -> np.ndarray:
    """Unit cell centres from a few rounds of spherical k-means on a sample of (unit) ``base`` rows."""
    sample = base[np.sort(rng.choice(len(base), min(len(base), 40 * cells), replace=False))]
    centres = sample[rng.choice(len(sample), min(cells, len(sample)), replace=False)].copy()
    for _ in range(rounds):
        nearest = np.argmax(sample @ centres.T, axis=1)
        sums = np.zeros_like(centres)
        np.add.at(sums, nearest, sample)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        # a centre nobody chose keeps its place rather than collapsing to zero
        centres = np.where(norms > 0, sums / np.maximum(norms, 1e-12), centres)
    return centres


def cell_search(base: np.ndarray, queries: np.ndarray, k: int, centres: np.ndarray, n_probe: int, *,
                queries_are_base: bool = False, index_dtype=np.int64) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` base rows of each query among the rows of its ``n_probe`` nearest cells (unit rows).

    With ``queries_are_base`` (a self-graph) each row comes first in its own list. A query whose
    probed cells hold fewer than ``k`` rows gets the exact search instead.
    """
    base = np.ascontiguousarray(base, dtype=np.float32)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    cells = len(centres)
    home = np.concatenate([np.argmax(base[s:s + _ASSIGN_ROWS] @ centres.T, axis=1)
                           for s in range(0, len(base), _ASSIGN_ROWS)])
    members, member_bounds = _grouped(home, cells)
    probes = query_knn(centres, queries, min(n_probe, cells))[0]
    askers, asker_bounds = _grouped(probes.ravel(), cells)
    asking = askers // probes.shape[1]  # the query behind each (query, probe) pair
    idx = np.full((len(queries), k), -1, dtype=index_dtype)
    sims = np.full((len(queries), k), -np.inf, dtype=np.float32)
    if queries_are_base:
        idx[:, 0] = np.arange(len(queries))
        sims[:, 0] = np.inf
    for cell in range(cells):
        rows = members[member_bounds[cell]:member_bounds[cell + 1]]
        who = asking[asker_bounds[cell]:asker_bounds[cell + 1]]
        if len(rows) and len(who):
            _offer_rows_at(queries[who] @ base[rows].T, who, rows.astype(index_dtype), idx, sims, queries_are_base)
    short = np.flatnonzero(sims[:, -1] == -np.inf)
    if len(short) and queries_are_base:
        found, found_sims = query_knn(base, queries[short], k + 1)
        others = np.argsort(found == short[:, None], axis=1, kind="stable")[:, :k - 1]  # all but itself
        idx[short, 1:] = np.take_along_axis(found, others, axis=1)
        sims[short, 1:] = np.take_along_axis(found_sims, others, axis=1)
    elif len(short):
        idx[short], sims[short] = query_knn(base, queries[short], k)
    if queries_are_base:
        sims[:, 0] = 1.0
    return idx, sims


def _grouped(keys: np.ndarray, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of ``keys`` sorted by key, and where each key's run starts (``groups + 1`` bounds)."""
    order = np.argsort(keys, kind="stable")
    return order, np.searchsorted(keys[order], np.arange(groups + 1))


@numba.njit(inline="always", nogil=True)
def _offer(sims, idx, s, j):
    """Insert candidate ``j`` of similarity ``s`` into one row's descending buffer, if it beats the last."""
    pos = sims.shape[0] - 1
    while pos > 0 and s > sims[pos - 1]:
        sims[pos] = sims[pos - 1]
        idx[pos] = idx[pos - 1]
        pos -= 1
    sims[pos] = s
    idx[pos] = j


@numba.njit(parallel=True, cache=True, nogil=True)
def _offer_rows(block, row0, col0, idx, sims):  # pragma: no cover - compiled
    last = sims.shape[1] - 1
    for r in numba.prange(block.shape[0]):
        row_sims = sims[row0 + r]
        row_idx = idx[row0 + r]
        for c in range(block.shape[1]):
            s = block[r, c]
            if s > row_sims[last]:
                _offer(row_sims, row_idx, s, col0 + c)


@numba.njit(cache=True, nogil=True)
def _offer_rows_at(block, rows, cols, idx, sims, skip_self):  # pragma: no cover - compiled
    """Offer ``block[r, c]`` as candidate ``cols[c]`` of row ``rows[r]`` (``rows`` distinct).

    Serial on purpose: called once per cell between BLAS products, a parallel region's
    spinning threads fought BLAS's own: an update's 12K x 200K placement search took 9.2 s,
    serially 2.1 s; the 212K self-graph 16.8 s, serially 11.6 s.
    """
    last = sims.shape[1] - 1
    for r in range(block.shape[0]):
        row = rows[r]
        row_sims = sims[row]
        row_idx = idx[row]
        for c in range(block.shape[1]):
            s = block[r, c]
            if s > row_sims[last] and not (skip_self and cols[c] == row):
                _offer(row_sims, row_idx, s, cols[c])


@numba.njit(parallel=True, cache=True, nogil=True)
def _offer_columns(block, row0, col0, idx, sims):  # pragma: no cover - compiled
    last = sims.shape[1] - 1
    n_cols = block.shape[1]
    for chunk in numba.prange((n_cols + _COLUMN_CHUNK - 1) // _COLUMN_CHUNK):
        lo = chunk * _COLUMN_CHUNK
        hi = min(lo + _COLUMN_CHUNK, n_cols)
        bar = sims[col0 + lo:col0 + hi, last].copy()  # each column's current k-th best
        for r in range(block.shape[0]):
            for c in range(lo, hi):
                s = block[r, c]
                if s > bar[c - lo]:
                    _offer(sims[col0 + c], idx[col0 + c], s, row0 + r)
                    bar[c - lo] = sims[col0 + c, last]
