"""umap-learn's epoch loop on two threads (pipeline.stages.umap.epochs): reproducible, and as good."""

import numpy as np
import pytest

from pipeline.stages.umap import epochs, fit


def blob_graph(n: int = 1_500, seed: int = 0):
    rng = np.random.default_rng(seed)
    topic = rng.integers(0, 6, n)
    X = (rng.normal(size=(6, 24))[topic] + 0.5 * rng.normal(size=(n, 24))).astype(np.float32)
    graph = fit.fuzzy_graph(n, fit.exact_cosine_knn(X, 15), 15)
    init = fit.initial_layout(fit.spectral_init(X, graph, 2, 1), 2, 1)
    return X, topic, graph, init


def topic_accuracy(coords: np.ndarray, topic: np.ndarray) -> float:
    from sklearn.neighbors import NearestNeighbors

    near = NearestNeighbors(n_neighbors=11).fit(coords).kneighbors(coords)[1][:, 1:]
    return float(np.mean([np.bincount(topic[row]).argmax() == t for row, t in zip(near, topic)]))


def test_the_same_layout_on_any_number_of_threads():
    _, _, graph, init = blob_graph()
    from umap.umap_ import find_ab_params

    a, b = find_ab_params(1.0, 0.1)
    two = epochs.optimize_layout(graph, init, a=a, b=b, n_epochs=60, seed=3, parts=2)
    one = epochs.optimize_layout(graph, init, a=a, b=b, n_epochs=60, seed=3, parts=2, threads=1)
    calls = []

    def switching() -> int:  # a sibling fit finishing half way: 1 thread, then 2
        calls.append(1)
        return 1 if len(calls) < 240 else 2

    switched = epochs.optimize_layout(graph, init, a=a, b=b, n_epochs=60, seed=3, parts=2, threads=switching)
    assert two.dtype == np.float32 and two.shape == init.shape
    assert np.array_equal(one, two) and np.array_equal(switched, two) and len(calls) == 60 * epochs.SYNCS
    other_seed = epochs.optimize_layout(graph, init, a=a, b=b, n_epochs=60, seed=4, parts=2)
    assert not np.array_equal(two, other_seed)


@pytest.mark.parametrize("parts", [1, 2, 3])
def test_bands_split_the_points_by_position_and_balance_the_work(parts):
    rng = np.random.default_rng(parts)
    position, work = rng.normal(size=3_000), rng.uniform(0.5, 2.0, 3_000)
    owners = epochs.point_owners(position, work, parts)
    assert set(owners) == set(range(parts))
    for p in range(parts - 1):  # bands follow the axis
        assert position[owners == p].max() <= position[owners == p + 1].min()
    shares = np.bincount(owners, weights=work) / work.sum()
    assert np.all(np.abs(shares - 1 / parts) < 0.01)


def test_one_band_is_umaps_own_loop_and_two_bands_are_as_good():
    """Below BANDS_MIN_ROWS the loop is umap-learn's single-threaded loop, byte for byte; two bands
    separate the topics as well."""
    from umap.umap_ import find_ab_params, simplicial_set_embedding

    X, topic, graph, init = blob_graph()
    assert len(X) < epochs.BANDS_MIN_ROWS
    ours = fit.embed_graph(graph, init, min_dist=0.1, n_epochs=200, seed=42)
    a, b = find_ab_params(1.0, 0.1)
    theirs, _ = simplicial_set_embedding(None, graph.tocoo(copy=True), 2, 1.0, a, b, 1.0, 5, 200, init,
                                         np.random.RandomState(42), "cosine", {}, False, {}, False,
                                         parallel=False, verbose=False, tqdm_kwds={"disable": True})
    assert np.array_equal(ours, theirs)
    bands = epochs.optimize_layout(graph, init, a=a, b=b, n_epochs=200, seed=42, parts=2)
    assert not np.array_equal(bands, theirs)
    assert topic_accuracy(bands, topic) >= topic_accuracy(theirs, topic) - 0.02
    assert topic_accuracy(bands, topic) > 0.9
