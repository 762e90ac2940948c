"""Exact cosine nearest neighbours: blocked matrix products and a compiled top-k.

Both the UMAP stage (a tweet's neighbours among all tweets) and an update's placement (new
tweets' neighbours among old ones) need the exact top-``k`` of dot products of unit vectors.
NumPy's ``argpartition`` over every block of similarities cost more than the products
themselves (50K tweets: 16 s of 25 s); a compiled scan that keeps each row's ``k`` best in
a small sorted buffer reads every similarity once, on all cores (2 s). For a graph of one
set with itself, ``sims`` is symmetric, so only blocks on and above the diagonal are
multiplied and each off-diagonal block is offered to both its rows and its columns.

Ties are broken by the lower index (candidates are offered in index order and a later equal
one never displaces an earlier one), so results are deterministic at any thread count.
"""

from __future__ import annotations

import numba
import numpy as np

#: square blocks of the self-graph: 4,096 x 4,096 float32 similarities (64 MB) per product
SELF_BLOCK = 4096
#: (query rows x base rows) similarities per block of a query-vs-base search: 256 MB of float32
QUERY_BLOCK_CELLS = 64_000_000
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
