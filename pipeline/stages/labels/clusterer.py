"""Make toponymy's layer 0 our HDBSCAN clusters and build coarser layers by merging them.

toponymy's ``Toponymy.fit`` uses a clusterer's ``cluster_layers_`` and ``cluster_tree_``
as they are when both are already set, so :class:`FixedLayersClusterer` computes them
from given labels (never refitting HDBSCAN) with toponymy's own ``build_cluster_tree``
and ``centroids_from_labels``.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence, Type

import numpy as np
from toponymy.cluster_layer import ClusterLayer, ClusterLayerText
from toponymy.clustering import Clusterer, build_cluster_tree, centroids_from_labels

from pipeline.core.errors import LineageError
from pipeline.stages.labels.prompts import with_subtopic_sizes


def contiguous_labels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(codes 0..k-1, original label of each code); raises on noise (-1)."""
    labels = np.asarray(labels)
    if labels.size == 0:
        raise LineageError("the cluster artifact has no rows")
    if (labels < 0).any():
        raise LineageError(
            f"{int((labels < 0).sum())} points have cluster -1 (noise); the cluster stage must assign "
            "every point to a cluster — re-run `tweetscope cluster`")
    originals, codes = np.unique(labels, return_inverse=True)
    return codes.astype(np.int64), originals.astype(np.int64)


def merge_layers(
    base_labels: np.ndarray,
    manifold: np.ndarray,
    *,
    branching: float = 4.0,
    min_top_clusters: int = 3,
    max_layers: int = 5,
) -> list[np.ndarray]:
    """Layer 0 = ``base_labels`` (0..k-1); each coarser layer merges whole clusters of the finer one.

    Coarser layers are cuts of one Ward dendrogram over the size-weighted cluster centroids on
    the clustering manifold, so every layer is a partition of all points and nests in the next.
    Cluster numbers of a layer follow the smallest layer-0 cluster they contain.
    """
    base_labels = np.asarray(base_labels, dtype=np.int64)
    n0 = int(base_labels.max()) + 1
    layers = [base_labels]
    if n0 < 2 * min_top_clusters or max_layers <= 1:
        return layers
    from scipy.cluster.hierarchy import fcluster, linkage

    centroids = centroids_from_labels(base_labels, np.asarray(manifold, dtype=np.float64))
    tree = linkage(centroids, method="ward")
    target = n0
    while len(layers) < max_layers:
        target = int(math.floor(target / branching))
        if target < min_top_clusters:
            break
        cut = fcluster(tree, t=target, criterion="maxclust")  # group (1..m) of each layer-0 cluster
        if cut.max() >= int(layers[-1].max()) + 1:
            break  # the dendrogram cannot merge further at this size
        renumber = {group: i for i, group in enumerate(dict.fromkeys(cut.tolist()))}
        group_of_base = np.array([renumber[g] for g in cut.tolist()], dtype=np.int64)
        layers.append(group_of_base[base_labels])
    return layers


def adaptive_count(size: int, lo: int, hi: int, scale: float = 1.0) -> int:
    """Items to show for a cluster of ``size`` points: ~scale·√size, clipped to [lo, hi] (spec A7)."""
    lo, hi = min(lo, hi), max(lo, hi)
    return int(min(hi, max(lo, round(scale * math.sqrt(max(size, 1))))))


class AdaptiveClusterLayerText(ClusterLayerText):
    """toponymy's text layer, with exemplar and keyphrase counts that grow with cluster size.

    toponymy selects ``n_exemplars``/``n_keyphrases`` (the maxima) per cluster; each cluster's
    lists are then cut to its own size-dependent count, which is what the prompts show.
    """

    def __init__(self, *args: Any, min_exemplars: int = 4, min_keyphrases: int = 8,
                 layer_sizes: Optional[Sequence[np.ndarray]] = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.min_exemplars = min_exemplars
        self.min_keyphrases = min_keyphrases
        self.cluster_sizes = np.bincount(self.cluster_labels[self.cluster_labels >= 0],
                                         minlength=self.centroid_vectors.shape[0])
        self.layer_sizes = list(layer_sizes) if layer_sizes is not None else None  # every layer's cluster sizes

    def make_prompts(self, detail_level, all_topic_names, object_description, corpus_description,
                     cluster_tree=None, *args: Any, **kwargs: Any):
        """toponymy's prompts, each carrying its subtopics' sizes (see ``prompts.SUBTOPIC_SIZES``)."""
        prompts = super().make_prompts(detail_level, all_topic_names, object_description, corpus_description,
                                       cluster_tree, *args, **kwargs)
        if self.layer_sizes is not None:
            self.prompts = [with_subtopic_sizes(p, self.layer_id, c, all_topic_names, cluster_tree, self.layer_sizes)
                            for c, p in enumerate(self.prompts)]
            prompts = self.prompts
        return prompts

    def exemplar_count(self, cluster: int) -> int:
        return adaptive_count(int(self.cluster_sizes[cluster]), self.min_exemplars, self.n_exemplars)

    def keyphrase_count(self, cluster: int) -> int:
        return adaptive_count(int(self.cluster_sizes[cluster]), self.min_keyphrases, self.n_keyphrases, 2.0)

    def make_exemplar_texts(self, object_list, object_vectors, method="central"):
        super().make_exemplar_texts(object_list, object_vectors, method=method)
        self.exemplars = [list(ex[: self.exemplar_count(i)]) for i, ex in enumerate(self.exemplars)]
        self.exemplar_indices = [list(ix[: self.exemplar_count(i)]) for i, ix in enumerate(self.exemplar_indices)]
        return self.exemplars, self.exemplar_indices

    def make_keyphrases(self, keyphrase_list, object_x_keyphrase_matrix, keyphrase_vectors,
                        embedding_model=None, method="information_weighted"):
        super().make_keyphrases(keyphrase_list, object_x_keyphrase_matrix, keyphrase_vectors,
                                embedding_model, method=method)
        self.keyphrases = [list(kp[: self.keyphrase_count(i)]) for i, kp in enumerate(self.keyphrases)]
        return self.keyphrases


class FixedLayersClusterer(Clusterer):
    """A toponymy clusterer whose layers are given (layer 0 = our HDBSCAN clusters), never refit."""

    def __init__(self, layer_labels: Sequence[np.ndarray], layer_class: Type[ClusterLayer] = AdaptiveClusterLayerText,
                 **layer_kwargs: Any):
        super().__init__()
        self.layer_labels = [np.asarray(lab, dtype=np.int64) for lab in layer_labels]
        self.layer_class = layer_class
        self.layer_kwargs = layer_kwargs

    def fit(self, clusterable_vectors: Optional[np.ndarray], embedding_vectors: np.ndarray,
            layer_class: Optional[Type[ClusterLayer]] = None, **layer_kwargs: Any) -> "FixedLayersClusterer":
        cls = layer_class or self.layer_class
        kwargs = {**self.layer_kwargs, **layer_kwargs}
        kwargs.setdefault("verbose", False)
        kwargs.setdefault("show_progress_bar", False)
        self.cluster_tree_ = build_cluster_tree(self.layer_labels)
        if issubclass(cls, AdaptiveClusterLayerText):
            kwargs.setdefault("layer_sizes", [np.bincount(lab) for lab in self.layer_labels])
        self.cluster_layers_ = [
            cls(labels, centroids_from_labels(labels, embedding_vectors), layer_id=i, **kwargs)
            for i, labels in enumerate(self.layer_labels)
        ]
        return self

    def fit_predict(self, clusterable_vectors, embedding_vectors, layer_class=None, **layer_kwargs):
        self.fit(clusterable_vectors, embedding_vectors, layer_class, **layer_kwargs)
        return self.cluster_layers_, self.cluster_tree_


def parents_and_children(layer_labels: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[list[list[int]]]]:
    """For each layer: parent number (in the next layer) of each cluster, or -1 at the top; and
    the children (in the previous layer) of each cluster, [] at layer 0."""
    parents, children = [], []
    for i, labels in enumerate(layer_labels):
        n = int(labels.max()) + 1
        if i + 1 < len(layer_labels):
            upper = layer_labels[i + 1]
            parent = np.full(n, -1, dtype=np.int64)
            parent[labels] = upper
            parents.append(parent)
        else:
            parents.append(np.full(n, -1, dtype=np.int64))
        if i == 0:
            children.append([[] for _ in range(n)])
        else:
            kids: list[list[int]] = [[] for _ in range(n)]
            for child, par in enumerate(parents[i - 1]):
                kids[int(par)].append(child)
            children.append(kids)
    return parents, children
