"""The labels stage: toponymy over our clusters -> ``clusters/toponymy-NNN.parquet`` + sidecar.

``label_clusters`` is the pure compute (arrays in, table + facts out); ``run_labels`` reads
the artifacts it needs and writes the new one.
"""

from __future__ import annotations

import re
import time
import warnings
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd

from pipeline.core.errors import LineageError, NamingError
from pipeline.core.progress import Cancelled, Progress, null_progress
from pipeline.stages.embed.stage import embedder_for, load_embeddings, read_meaning_texts
from pipeline.stages.labels.audit import ClusterLabel, refresh_parents, run_audit
from pipeline.stages.labels.clusterer import (
    AdaptiveClusterLayerText,
    FixedLayersClusterer,
    contiguous_labels,
    merge_layers,
    parents_and_children,
)
from pipeline.stages.labels.config import LabelConfig
from pipeline.stages.labels.geometry import layer_geometry
from pipeline.stages.labels.keyterms import KEYPHRASE_TOKEN_PATTERN, STOP_WORDS, archive_names
from pipeline.stages.labels.namers import NamerFailure, NamingCancelled, RecordingNamer, make_namer
from pipeline.stages.labels.prompts import label_prompt_templates, prompt_key
from pipeline.stages.labels.table import arrow_table, labels_frame
from pipeline.stages.lineage import cluster_inputs
from pipeline.stages.umap.artifact import load_umap


class EmbedderAdapter:
    """toponymy's ``TextEmbedderProtocol`` over our embedder (``.embed(list[str]) -> ndarray``)."""

    def __init__(self, embedder: Any, batch_size: int = 2048, progress: Optional[Progress] = None):
        self.embedder = embedder
        self.batch_size = batch_size
        self.progress = progress
        self.texts_embedded = 0
        self.seconds = 0.0

    def encode(self, texts: Sequence[str], show_progress_bar: Optional[bool] = None, **_: Any) -> np.ndarray:
        started = time.perf_counter()
        texts = [str(t) for t in texts]
        parts = []
        for start in range(0, len(texts), self.batch_size):
            parts.append(np.asarray(self.embedder.embed(texts[start:start + self.batch_size]), dtype=np.float32))
            if self.progress is not None:
                self.progress.update(start + len(parts[-1]), len(texts), "embedding keyphrases / names")
        self.texts_embedded += len(texts)
        self.seconds += time.perf_counter() - started
        if not parts:
            dims = getattr(self.embedder, "dimensions", None) or 1
            return np.zeros((0, dims), dtype=np.float32)
        return np.vstack(parts)


@dataclass
class LabelResult:
    table: pd.DataFrame
    facts: dict   # sidecar fields: num_layers, layer_sizes, rounds, usage, ...
    timings: dict


_URL_RE = re.compile(r"https?://\S+")


def clean_text(text: Any) -> str:
    """A tweet as toponymy sees it: URLs dropped (they only add noise keyphrases such as
    "https"), on one line (prompts list exemplars one per line)."""
    return " ".join(_URL_RE.sub(" ", str(text if text is not None else "")).split())


def label_texts(dataset, embedding_id: str) -> tuple[list[str], Optional[dict]]:
    """The texts the namers see (one line each) and their normalisation record: the text for
    meaning exactly as ``embedding_id`` embedded it (an older embedding without a record: the
    raw text), so exemplars, keyphrases and the vectors they are chosen by agree."""
    norm = dataset.sidecar(embedding_id).get("text_normalisation")
    return [clean_text(t) for t in read_meaning_texts(dataset, "text", norm)], norm


def dataset_handles(dataset) -> frozenset:
    """Every account or site name of the dataset, lower case (what no label may spell): the
    @handles written in its tweets, the owner's and reply targets' screen names, and the
    host-name labels of its URLs."""
    import json

    present = set(dataset.input_columns())
    frame = dataset.read_input([c for c in ("text", "username", "in_reply_to_screen_name", "urls_json")
                                if c in present])
    urls = []
    for raw in frame.get("urls_json", pd.Series(dtype=object)).dropna():
        try:
            urls += [u for u in json.loads(raw) if isinstance(u, str)]
        except (TypeError, ValueError):
            continue
    screen = [s for col in ("username", "in_reply_to_screen_name") if col in frame
              for s in frame[col].dropna().unique().tolist()]
    return archive_names(frame["text"].tolist(), urls, screen)


def _fail(exc: BaseException, namer: RecordingNamer) -> BaseException:
    """Turn toponymy's fail-fast wrapper into our errors."""
    original = getattr(exc, "original_exception", None) or exc
    if isinstance(original, NamingCancelled):
        return Cancelled(str(original))
    return NamingError(f"labelling stopped: {original}")


def label_clusters(
    texts: Sequence[str],
    embeddings: np.ndarray,
    manifold: np.ndarray,
    cluster_labels: np.ndarray,
    xy: np.ndarray,
    embedder: Any,
    config: Optional[LabelConfig] = None,
    namer: Optional[RecordingNamer] = None,
    progress: Optional[Progress] = None,
    handles: frozenset = frozenset(),
) -> LabelResult:
    """Name our clusters (layer 0) and coarser merged layers with toponymy; audit; geometry.

    ``handles``: the archive's account and site names (lower case, :func:`dataset_handles`), which
    the offline namer never uses as a name."""
    from toponymy import Toponymy
    from toponymy.keyphrases import KeyphraseBuilder

    config = config or LabelConfig()
    progress = progress or null_progress("labels")
    namer = namer or make_namer(config)
    n = len(texts)
    for name, arr in (("embeddings", embeddings), ("manifold", manifold), ("cluster labels", cluster_labels),
                      ("display coordinates", xy)):
        if len(arr) != n:
            raise LineageError(f"{name} have {len(arr)} rows but the dataset has {n} tweets; re-run the stages")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    codes, originals = contiguous_labels(np.asarray(cluster_labels))
    layers = merge_layers(codes, manifold, branching=config.branching, min_top_clusters=config.min_top_clusters,
                          max_layers=config.max_layers)
    layer_sizes = [int(lab.max()) + 1 for lab in layers]
    timings["hierarchy_s"] = time.perf_counter() - t0

    def cluster_name(layer: int, number: int) -> str:
        return f"0_{int(originals[number])}" if layer == 0 else f"{layer}_{number}"

    objects = [clean_text(t) for t in texts]
    namer.prepare(objects, handles)
    adapter = EmbedderAdapter(embedder, progress=progress.for_stage("labels: embedding keyphrases"))
    clusterer = FixedLayersClusterer(
        layers, AdaptiveClusterLayerText,
        n_exemplars=config.max_exemplars, n_keyphrases=config.max_keyphrases,
        min_exemplars=config.min_exemplars, min_keyphrases=config.min_keyphrases,
        prompt_template=label_prompt_templates(),
    ).fit(manifold, np.asarray(embeddings, dtype=np.float32))
    topo = Toponymy(
        llm_wrapper=namer, text_embedding_model=adapter, clusterer=clusterer,
        layer_class=AdaptiveClusterLayerText,
        keyphrase_builder=KeyphraseBuilder(max_features=keyphrase_budget(config, layer_sizes[0]), n_jobs=1,
                                           stop_words=STOP_WORDS, token_pattern=KEYPHRASE_TOKEN_PATTERN,
                                           verbose=False),
        object_description=config.object_description, corpus_description=config.corpus_description,
        verbose=False,
    )
    expected_calls = sum(layer_sizes)
    namer.on_call = lambda usage: progress.update(usage["calls"], None,
                                                  f"{usage['calls']} LLM calls (~{expected_calls} names)")
    progress.update(0, None, f"naming {expected_calls} clusters in {len(layers)} layers")
    t1 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # toponymy warns per fallback; we check the names below
            topo.fit(objects, np.asarray(embeddings, dtype=np.float32), np.asarray(manifold, dtype=np.float32),
                     exemplar_method=config.exemplar_method, keyphrase_method=config.keyphrase_method)
    except NamerFailure as exc:
        raise _fail(exc, namer) from None
    except Exception as exc:
        if isinstance(getattr(exc, "original_exception", None), NamerFailure):
            raise _fail(exc, namer) from None
        raise
    timings["toponymy_fit_s"] = time.perf_counter() - t1
    timings["embedding_keyphrases_and_names_s"] = adapter.seconds
    progress.check()

    labels = _collect_labels(topo, namer, cluster_name)

    t2 = time.perf_counter()
    try:
        rounds = run_audit(
            topo, namer, objects, layers, labels, rounds=config.audit_rounds, threshold=config.audit_threshold,
            sample_size=config.audit_sample_size, audit_layers=config.audit_layers, seed=config.seed,
            cluster_name=cluster_name, progress=progress.for_stage("labels audit"))
        parents_renamed = refresh_parents(topo, namer, labels, cluster_name)
    except NamerFailure as exc:
        raise _fail(exc, namer) from None
    timings["audit_s"] = time.perf_counter() - t2

    t3 = time.perf_counter()
    table = build_table(layers, labels, xy, cluster_name)
    timings["geometry_s"] = time.perf_counter() - t3

    counts = [[len(ex) for ex in lay.exemplars] for lay in topo.cluster_layers_]
    kp_counts = [[len(kp) for kp in lay.keyphrases] for lay in topo.cluster_layers_]
    usage = dict(namer.usage)
    facts = {
        "num_layers": len(layers),
        "layer_sizes": layer_sizes,
        **namer.describe(),
        "rounds": rounds,
        "parents_renamed": parents_renamed,
        "audit": {"rounds_run": len(rounds), "threshold": config.audit_threshold,
                  "final_mean_score": _mean([lab.score for lab in labels.values() if lab.score is not None])},
        "usage": usage,
        "llm_calls": usage["calls"],
        "tokens_estimated": namer.provider == "offline",
        "cost_usd_estimate": namer.cost_estimate(),
        "exemplars_per_cluster": {"min": int(min(map(min, counts))), "max": int(max(map(max, counts)))},
        "keyphrases_per_cluster": {"min": int(min(map(min, kp_counts))), "max": int(max(map(max, kp_counts)))},
        "keyphrase_vocabulary": len(topo.keyphrase_list_),
        "statuses": {cid: "auto" for cid in table["cluster"]},
        "n_clusters": int(len(table)),
    }
    return LabelResult(table, facts, timings)


def keyphrase_budget(config: LabelConfig, n_clusters: int) -> int:
    """Keyphrase vocabulary size: enough candidates per cluster, but each one is embedded with the
    tweets' model (the stage's main cost on small archives), so it grows with the cluster count."""
    return int(min(config.keyphrase_max_features, max(4000, 24 * n_clusters)))


def _mean(values: list) -> Optional[float]:
    return round(float(np.mean(values)), 4) if values else None


def _collect_labels(topo, namer: RecordingNamer, cluster_name) -> dict[tuple[int, int], ClusterLabel]:
    """Final names from toponymy plus the description/specificity our namer captured."""
    labels: dict[tuple[int, int], ClusterLabel] = {}
    for layer_no, layer in enumerate(topo.cluster_layers_):
        names = topo.topic_names_[layer_no]
        for c, name in enumerate(names):
            if not isinstance(name, str) or not name.strip():
                raise NamingError(f"labelling stopped: cluster {cluster_name(layer_no, c)} got no name from "
                                  f"{namer.provider} model '{namer.model}'")
            prompt = layer.prompts[c]
            desc, spec = None, namer.specificity_by_name.get(name)
            if isinstance(prompt, dict):
                answer = namer.named.get(prompt_key(prompt))
                if answer is not None:
                    desc = answer["topic_description"]
                    if answer["topic_name"] == name:
                        spec = answer["topic_specificity"]
            else:  # a single-child cluster carries its child's name, description and specificity
                kids = topo.cluster_tree_.get((layer_no, c), [])
                if len(kids) == 1 and tuple(kids[0]) in labels:
                    child = labels[tuple(kids[0])]
                    desc, spec = child.description, child.specificity
            labels[(layer_no, c)] = ClusterLabel(layer_no, c, name.strip(), desc, spec)
    return labels


def build_table(layers: list[np.ndarray], labels: dict[tuple[int, int], ClusterLabel], xy: np.ndarray,
                cluster_name) -> pd.DataFrame:
    """The 12 spec §6 columns, one row per cluster of every layer (layer 0 first)."""
    parents, children = parents_and_children(layers)
    rows = []
    for layer_no, lab in enumerate(layers):
        hulls, centroids = layer_geometry(xy, lab)
        order = np.argsort(lab, kind="stable")
        members = np.split(order, np.cumsum(np.bincount(lab))[:-1])
        for c, idx in enumerate(members):
            label = labels[(layer_no, c)]
            parent = int(parents[layer_no][c])
            rows.append({
                "cluster": cluster_name(layer_no, c),
                "layer": layer_no,
                "label": label.name,
                "description": label.description,
                "hull": hulls[c],
                "count": int(len(idx)),
                "parent_cluster": cluster_name(layer_no + 1, parent) if parent >= 0 else None,
                "children": [cluster_name(layer_no - 1, k) for k in children[layer_no][c]],
                "centroid_x": float(centroids[c][0]),
                "centroid_y": float(centroids[c][1]),
                "indices": np.sort(idx).astype(np.int64).tolist(),
                "topic_specificity": None if label.specificity is None else float(label.specificity),
            })
    return labels_frame(rows)


# --------------------------------------------------------------------------- I/O edge

def run_labels(dataset, config: Optional[LabelConfig] = None, progress: Optional[Progress] = None,
               cluster_id: Optional[str] = None, *, namer: Optional[RecordingNamer] = None) -> str:
    """Label the clusters of ``cluster_id`` (default: the latest) -> new ``toponymy-NNN`` id."""
    from pipeline.stages.cluster.stage import load_clusters

    config = config or LabelConfig()
    progress = progress or null_progress("labels")
    t0 = time.perf_counter()
    ids = cluster_inputs(dataset, cluster_id)
    progress.update(0, None, f"loading {ids['cluster_id']}")
    texts, norm = label_texts(dataset, ids["embedding_id"])
    clusters = load_clusters(dataset, ids["cluster_id"])
    display = load_umap(dataset, ids["umap_id"])
    manifold = load_umap(dataset, ids["clustering_umap_id"])
    manifold = manifold[[c for c in manifold.columns if c.startswith("dim_")]].to_numpy(np.float32)
    embeddings = load_embeddings(dataset, ids["embedding_id"])
    embedder = embedder_for(dataset, ids["embedding_id"])
    namer = namer or make_namer(config)
    load_time = time.perf_counter() - t0

    result = label_clusters(texts, embeddings, manifold, clusters["cluster"].to_numpy(),
                            display[["x", "y"]].to_numpy(np.float64), embedder, config, namer, progress,
                            handles=dataset_handles(dataset))
    with dataset.new_artifact("toponymy") as art:
        art.write_parquet(arrow_table(result.table))
        timings = {"load_s": round(load_time, 3), **{k: round(v, 3) for k, v in result.timings.items()},
                   "total_s": round(time.perf_counter() - t0, 3)}
        # what ran, not what was asked for ('auto', an empty model)
        params = {**config.to_dict(), "provider": result.facts["provider"], "model": result.facts["model"]}
        art.write_sidecar(
            {**ids, **result.facts, "text_normalisation": norm, "edited_from": None},
            params=params,
            inputs={**ids, "input": dataset.input_fingerprint()},
            rows=len(result.table), timings=timings)
    progress.update(1, 1, f"{art.id}: {len(result.table)} labels in {result.facts['num_layers']} layers")
    return art.id
