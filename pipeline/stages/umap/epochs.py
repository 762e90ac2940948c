"""umap-learn's epoch loop on two threads, with the same result at any core count.

umap-learn's own parallel loop lets threads write each other's points at will (Hogwild), so
a seeded fit used to run on one thread. Here the points are split in ``PARTITIONS`` bands
along the initial layout's first axis (so most edges stay inside a band), each band's edges
(those whose head it owns) go through umap-learn's single-epoch function (the very function,
compiled without the GIL) on their own copy of the layout, and after every ``1/SYNCS`` of an
epoch the copies' moves are added to the layout. Within a band a point sees the band's moves
at once, and the other band's a moment later; the sum does not depend on which thread finished first, nor on
how many cores there are. Everything else is umap-learn's: the graph pruning, the sampling
schedule, the per-point random streams and the learning-rate decay.
"""

from __future__ import annotations

import functools
import types
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional, Union

import numpy as np

#: bands of points optimised side by side (fixed, so results do not depend on the machine)
PARTITIONS = 2
#: smaller graphs keep one band: exactly umap-learn's single-threaded loop (a fit takes seconds)
BANDS_MIN_ROWS = 20_000
#: merges per epoch: each band's edges go in this many pieces, the bands' moves merged after each.
#: 50K realistic tweets, share of map neighbours as similar as the 24th embedding neighbour
#: (seeds 42/7): umap-learn's loop 0.1465/0.1475 in 22.6 s; here 1 merge 0.1421/0.1427 in 12 s,
#: 4 merges 0.1463/0.1470 in 14 s, 8 merges 0.1466 in 12.7 s, 16 merges 0.1477 in 16 s.
SYNCS = 8


@functools.cache
def epoch_kernel():
    """umap-learn's ``_optimize_layout_euclidean_single_epoch``, compiled with ``nogil`` (cached on disk).

    A renamed clone of the same function, so its cache entries do not mix with umap-learn's
    own (numba keys cache files by function name, not by compile flags).
    """
    import numba
    from umap import layouts

    source = layouts._optimize_layout_euclidean_single_epoch
    clone = types.FunctionType(source.__code__, source.__globals__, source.__name__ + "_nogil",
                               source.__defaults__, source.__closure__)
    clone.__qualname__ = clone.__name__
    clone.__module__ = source.__module__
    return numba.njit(clone, fastmath=True, nogil=True, cache=True)


def prepare_graph(graph, n_epochs: int):
    """The graph as umap-learn's ``simplicial_set_embedding`` hands it to the epoch loop:
    COO, duplicates summed, edges too weak to be sampled in ``n_epochs`` dropped."""
    graph = graph.tocoo()
    graph.sum_duplicates()
    if n_epochs > 10:
        graph.data[graph.data < graph.data.max() / float(n_epochs)] = 0.0
    else:
        graph.data[graph.data < graph.data.max() / (500.0 if graph.shape[0] <= 10_000 else 200.0)] = 0.0
    graph.eliminate_zeros()
    return graph


def scale_layout(init: np.ndarray) -> np.ndarray:
    """umap-learn's rescale of a given initial layout to [0, 10] per axis (float32)."""
    low, high = np.min(init, 0), np.max(init, 0)
    return (10.0 * (init - low) / (high - low)).astype(np.float32, order="C")


def point_owners(position: np.ndarray, work: np.ndarray, parts: int) -> np.ndarray:
    """Which run owns each point: ``parts`` bands along ``position`` (the initial layout's first
    axis) holding about equal sampling ``work``, so most edges stay inside one band."""
    order = np.argsort(position, kind="stable")
    done = np.cumsum(work[order])
    band = np.minimum((done / max(done[-1], 1e-300) * parts).astype(np.int64), parts - 1) if len(done) else done
    owners = np.empty(len(position), dtype=np.int64)
    owners[order] = band
    return owners


def optimize_layout(graph, init: np.ndarray, *, a: float, b: float, n_epochs: int, seed: int,
                    gamma: float = 1.0, initial_alpha: float = 1.0, negative_sample_rate: float = 5.0,
                    tqdm_kwds: Optional[dict] = None, parts: Optional[int] = None,
                    threads: Union[int, Callable[[], int], None] = None, syncs: int = SYNCS) -> np.ndarray:
    """UMAP's epochs over ``graph`` from ``init`` (N x dim), reproducibly.

    ``parts`` bands (default: ``PARTITIONS`` from ``BANDS_MIN_ROWS`` points, else one) run on
    ``threads`` threads: a number, or a function asked before every merge (a fit beside another
    one on a 2-core machine takes the second core when the other finishes). The result is the
    same for any thread count.
    """
    from tqdm.auto import tqdm
    from umap.umap_ import INT32_MAX, INT32_MIN, make_epochs_per_sample

    kernel = epoch_kernel()
    graph = prepare_graph(graph, n_epochs)
    n_vertices = graph.shape[1]
    if parts is None:
        parts = PARTITIONS if n_vertices >= BANDS_MIN_ROWS else 1
    epochs_per_sample = make_epochs_per_sample(graph.data, n_epochs)
    head, tail = graph.row, graph.col
    random_state = np.random.RandomState(seed)
    rng_state = random_state.randint(INT32_MIN, INT32_MAX, 3).astype(np.int64)
    layout = scale_layout(init)
    rng_per_point = (np.full((layout.shape[0], len(rng_state)), rng_state, dtype=np.int64)
                     + layout[:, 0].astype(np.float64).view(np.int64).reshape(-1, 1))
    no_density = np.zeros(1, dtype=np.float32)
    dim = layout.shape[1]

    # each run: the edges whose head it owns, with their own sampling state
    work = np.bincount(head, weights=1.0 / epochs_per_sample, minlength=n_vertices)
    owner = point_owners(layout[:, 0], work, parts)[head]
    steps = [[] for _ in range(syncs)]  # step s: piece s of every band's edges, then a merge
    for p in range(parts):
        mine = np.flatnonzero(owner == p)
        for step, piece in zip(steps, np.array_split(mine, syncs)):
            if len(piece):
                every = epochs_per_sample[piece]
                step.append((head[piece], tail[piece], every, every / negative_sample_rate,
                             every / negative_sample_rate, every.copy()))

    def one_epoch(run: tuple, copy: np.ndarray, n: int, alpha: float) -> None:
        heads, tails, every, every_negative, next_negative, next_sample = run
        kernel(copy, copy, heads, tails, n_vertices, every, a, b, rng_per_point, gamma, dim, True, alpha,
               every_negative, next_negative, next_sample, n, False,
               no_density, no_density, 0, 0, 0, 0, no_density, no_density, 0)

    def thread_count() -> int:
        wanted = threads() if callable(threads) else (threads or parts)
        return max(1, int(wanted))

    alpha = initial_alpha
    with ThreadPoolExecutor(max_workers=parts) as pool:
        for n in tqdm(range(n_epochs), **(tqdm_kwds or {"disable": True})):
            for step in steps:
                copies = [layout.copy() for _ in step]
                if len(step) > 1 and thread_count() > 1:
                    for future in [pool.submit(one_epoch, run, copy, n, alpha) for run, copy in zip(step, copies)]:
                        future.result()
                else:
                    for run, copy in zip(step, copies):
                        one_epoch(run, copy, n, alpha)
                moved = copies[0]
                for copy in copies[1:]:
                    moved += copy - layout  # fixed order: the same float sum on any machine
                layout = moved
            alpha = initial_alpha * (1.0 - float(n) / float(n_epochs))
    return layout
