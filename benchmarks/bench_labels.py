"""Benchmark of the labels stage: time and LLM calls offline at archive scale, and calls/tokens
per cluster with an API namer (OpenAI SDK against the local stub, so tokens are counted, not paid).

Data: synthetic tweets drawn from per-topic vocabularies, embedded by a hashing bag-of-words
embedder (the same embedder embeds toponymy's keyphrases, as in the real stage), clusters = the
topics. This measures toponymy + our namer/audit machinery, not a neural embedder; the real
embedder's share is reported separately as keyphrase count × its texts/s.

    .venv/bin/python benchmarks/bench_labels.py --n 212000 --clusters 500 --api-n 20000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".numba-cache"))

COMMON = ("just really think people time today good new make know like going still way thing "
          "lot maybe actually never always right much day week year").split()


class HashingEmbedder:
    """Bag of words -> sum of fixed random word vectors (one per hashed word), L2-normalised."""

    model_id = "hashing-bow-256"
    dimensions = 256
    buckets = 2 ** 18

    def __init__(self, seed: int = 0):
        from sklearn.feature_extraction.text import HashingVectorizer

        self.vectorizer = HashingVectorizer(n_features=self.buckets, alternate_sign=False, norm=None)
        self.table = np.random.default_rng(seed).standard_normal((self.buckets, self.dimensions)).astype(np.float32)

    def embed(self, texts):
        counts = self.vectorizer.transform(list(texts)).astype(np.float32)
        out = np.asarray(counts @ self.table, dtype=np.float32)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1
        return out / norms


def synthetic_corpus(n: int, n_topics: int, seed: int = 0):
    """Texts, topic labels (sizes ~ Zipf), 10-D manifold and 2-D display coordinates."""
    rng = np.random.default_rng(seed)
    syllables = ["ka", "lo", "mi", "ru", "te", "so", "ne", "vi", "da", "po", "ze", "qu", "fa", "bi"]
    vocab = ["".join(rng.choice(syllables, 3)) for _ in range(n_topics * 12)]
    topic_words = [vocab[t * 12:(t + 1) * 12] for t in range(n_topics)]
    weights = 1.0 / np.arange(1, n_topics + 1) ** 0.8
    labels = rng.choice(n_topics, size=n, p=weights / weights.sum())
    topic_words = np.array(topic_words)
    common = np.array(COMMON)
    picks = topic_words[labels[:, None], rng.integers(0, 12, (n, 6))]       # 6 topic words per tweet
    fillers = common[rng.integers(0, len(common), (n, 6))]                  # 6 common words per tweet
    n_topic, n_common = rng.integers(3, 7, n), rng.integers(3, 7, n)
    texts = [" ".join([*picks[i, :n_topic[i]], *fillers[i, :n_common[i]]]) for i in range(n)]
    centres10 = rng.normal(0, 6, (n_topics, 10))
    manifold = (centres10[labels] + rng.normal(0, 0.6, (n, 10))).astype(np.float32)
    xy = manifold[:, :2] / np.abs(manifold[:, :2]).max(axis=0)
    return texts, labels, manifold, xy.astype(np.float32)


def run(n: int, n_topics: int, provider: str, stub=None, audit_rounds: int = 2) -> dict:
    from pipeline.stages.labels import LabelConfig
    from pipeline.stages.labels.stage import label_clusters

    texts, labels, manifold, xy = synthetic_corpus(n, n_topics)
    embedder = HashingEmbedder()
    t = time.perf_counter()
    embeddings = embedder.embed(texts)
    embed_seconds = time.perf_counter() - t
    config = LabelConfig(provider=provider, audit_rounds=audit_rounds, retry_backoff=0.01,
                         base_url=(stub.openai_url if stub else ""), max_concurrency=16)
    t, cpu = time.perf_counter(), time.process_time()
    result = label_clusters(texts, embeddings, manifold, labels, xy, embedder, config)
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    facts = result.facts
    n_clusters = int(len(result.table))
    out = {
        "n_tweets": n, "n_layer0_clusters": int(len(np.unique(labels))), "n_label_rows": n_clusters,
        "layer_sizes": facts["layer_sizes"], "provider": facts["provider"], "model": facts["model"],
        "seconds_total": round(seconds, 2), "cpu_seconds_labelling": round(cpu, 2), "seconds_embedding_tweets_hashing": round(embed_seconds, 2),
        "timings": {k: round(v, 2) for k, v in result.timings.items()},
        "keyphrase_vocabulary": facts["keyphrase_vocabulary"],
        "llm_calls": facts["llm_calls"], "calls_by_kind": {k: v["calls"] for k, v in facts["usage"]["by_kind"].items()},
        "retries": facts["usage"]["retries"],
        "calls_per_cluster": round(facts["llm_calls"] / n_clusters, 3),
        "audit_rounds_run": facts["audit"]["rounds_run"],
        "audit_mean_score_final": facts["audit"]["final_mean_score"],
    }
    if stub is not None:
        out.update({
            "stub_requests": len(stub.requests),
            "input_tokens": facts["usage"]["input_tokens"], "output_tokens": facts["usage"]["output_tokens"],
            "input_tokens_per_cluster": round(facts["usage"]["input_tokens"] / n_clusters, 1),
            "output_tokens_per_cluster": round(facts["usage"]["output_tokens"] / n_clusters, 1),
            "cost_usd_estimate_gpt-4o-mini": facts["cost_usd_estimate"],
        })
    return out


def run_dataset(data_dir: Path, name: str) -> dict:
    """run_labels (offline) on a real mapped dataset; the new artifact is kept (it is a normal run)."""
    from pipeline.core.workspace import Workspace
    from pipeline.stages.labels import LabelConfig, run_labels

    ds = Workspace(data_dir).dataset(name)
    t = time.perf_counter()
    new_id = run_labels(ds, LabelConfig(provider="offline"))
    side = ds.sidecar(new_id)
    return {"dataset": name, "rows": len(ds.read_input(["id"])), "toponymy_id": new_id,
            "seconds_total": round(time.perf_counter() - t, 2), "timings": side["timings"],
            "layer_sizes": side["layer_sizes"], "llm_calls": side["llm_calls"],
            "keyphrase_vocabulary": side["keyphrase_vocabulary"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=212_000, help="tweets for the offline run")
    parser.add_argument("--clusters", type=int, default=500, help="layer-0 clusters (topics)")
    parser.add_argument("--api-n", type=int, default=20_000, help="tweets for the API-namer run (0 = skip)")
    parser.add_argument("--api-clusters", type=int, default=60)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="also time run_labels on a mapped dataset of this data dir (e.g. a 212K synth_archive "
                             "run through ingest/embed/umap/cluster)")
    parser.add_argument("--dataset", default=None, help="dataset name for --data-dir")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_labels.json")
    args = parser.parse_args()

    results = {"machine": {"cpus": os.cpu_count(), "load_avg_at_start": os.getloadavg()}}
    results["offline"] = run(args.n, args.clusters, "offline")
    print(json.dumps(results["offline"], indent=1), flush=True)
    if args.api_n:
        from pipeline.stages.labels.stubs import LLMStub

        os.environ.setdefault("OPENAI_API_KEY", "stub-key")
        with LLMStub("good") as stub:
            results["openai_stub"] = run(args.api_n, args.api_clusters, "openai", stub)
        print(json.dumps(results["openai_stub"], indent=1), flush=True)
    if args.data_dir and args.dataset:
        results["dataset"] = run_dataset(args.data_dir, args.dataset)
        print(json.dumps(results["dataset"], indent=1), flush=True)
    results["machine"]["load_avg_at_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
