"""Does the map group tweets by what they say? Text-for-meaning variants, measured end to end.

For each variant of the embed stage's text settings, runs the offline pipeline
(ingest → embed → UMAP → cluster, and ``--labels``: the offline namer) in a scratch folder and
measures

* mention-dominated clusters — clusters where >= 50 % of the tweets start with the same
  @handle (judged on the ORIGINAL text; "RT @x:" starts with @x): how many, and the share
  of tweets in them;
* same-parent precision@1/@10 of the embeddings (``bench_embedders.sibling_probe``: for each
  reply with a sibling, the share of its nearest neighbours replying to the same tweet).
  Replies to one tweet start with the same @handle, so the raw text scores this partly by
  the handle: read it next to the mention share, not alone;
* on a synthetic archive: AMI of the clusters against the generator's topics;
* with ``--labels``: label-rule problems (handle / number / URL / date-only labels) and
  distinct sibling names.

    .venv/bin/python benchmarks/bench_map_quality.py                      # the bundled sample
    .venv/bin/python benchmarks/bench_map_quality.py --synthetic 50000    # a synth_archive.py archive

writes ``benchmarks/results/map-quality-<archive>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".numba-cache"))
os.environ.setdefault("TWEETSCOPE_QUIET", "1")

_LEADING_HANDLE = re.compile(r"^\s*(?:RT\s+)?\.?@([A-Za-z0-9_]{1,15})")  # a retweet starts with its author

#: embed-stage settings compared; "raw" is the text as served (the behaviour before issue 19)
VARIANTS = {
    "raw": {"normalise": False},
    "meaning-keep-handles": {"normalise": True, "inner_handles": "keep"},
    "meaning": {"normalise": True, "inner_handles": "name"},
    "meaning-drop-handles": {"normalise": True, "inner_handles": "drop"},
    "meaning+parent": {"normalise": True, "inner_handles": "name", "parent_context": True},
}


def first_handles(texts) -> np.ndarray:
    """The @handle each original text starts with, lower-cased ('' when it starts otherwise)."""
    out = []
    for t in texts:
        m = _LEADING_HANDLE.match(t if isinstance(t, str) else "")
        out.append(m.group(1).lower() if m else "")
    return np.array(out, dtype=object)


def mention_dominated(handles: np.ndarray, clusters: np.ndarray, threshold: float = 0.5) -> dict:
    """Clusters where >= ``threshold`` of the tweets start with one @handle, and their share of tweets."""
    dominated, tweets = [], 0
    for c in np.unique(clusters):
        members = handles[clusters == c]
        named = members[members != ""]
        if not len(named):
            continue
        values, counts = np.unique(named, return_counts=True)
        if counts.max() >= threshold * len(members):
            dominated.append({"cluster": int(c), "size": int(len(members)), "handle": str(values[counts.argmax()]),
                              "handle_share": round(float(counts.max() / len(members)), 3)})
            tweets += len(members)
    return {"clusters": int(len(np.unique(clusters))), "dominated_clusters": len(dominated),
            "tweet_share": round(tweets / max(len(clusters), 1), 4), "dominated": dominated}


def label_checks(ds, toponymy_id: str) -> dict:
    from pipeline.stages.labels.keyterms import NameGuard, content_word_count, label_problem
    from pipeline.stages.labels.stage import dataset_handles
    from pipeline.stages.labels.table import load_labels

    table = load_labels(ds, toponymy_id)
    problems = {row.cluster: (row.label, label_problem(row.label)) for row in table.itertuples()
                if label_problem(row.label)}
    sibling_clashes = 0
    for _, group in table.groupby(table["parent_cluster"].fillna("top")):
        names = group["label"].str.lower().tolist()
        sibling_clashes += len(names) - len(set(names))
    guard = NameGuard(dataset_handles(ds))
    terms = {row.cluster: [t.strip() for t in row.label.split(",")] for row in table.itertuples()}
    by_id = table.set_index("cluster")
    parents = table[table["children"].map(len) > 1]
    from_children = sum(all(t.lower() in " , ".join(by_id.loc[list(row.children), "label"]).lower()
                            for t in terms[row.cluster]) for row in parents.itertuples())
    top = table[table["layer"] == table["layer"].max()]
    return {"labels": int(len(table)), "rule_problems": len(problems), "problem_labels": problems,
            "sibling_name_clashes": int(sibling_clashes),
            "disguised_name_labels": [c for c, ts in terms.items() if any(guard.spells_name(t) for t in ts)],
            "weak_term_labels": [c for c, ts in terms.items() if any(content_word_count(t) == 0 for t in ts)],
            "multi_child_parents": int(len(parents)), "parents_named_from_children": int(from_children),
            "layer0": table[table["layer"] == 0]["label"].tolist(), "top_layer": top["label"].tolist()}


def run_variant(archive: Path, settings: dict, labels: bool, truth_fn) -> dict:
    from bench_embedders import sibling_probe

    from pipeline.core.workspace import Workspace
    from pipeline.stages.cluster.stage import load_clusters, run_cluster
    from pipeline.stages.embed.stage import EmbedConfig, load_embeddings, run_embed
    from pipeline.stages.ingest import ingest_archive
    from pipeline.stages.labels import LabelConfig, run_labels
    from pipeline.stages.umap.stage import run_umap

    timings = {}
    with tempfile.TemporaryDirectory() as scratch:
        ds = ingest_archive(archive, Workspace(scratch), "bench")
        frame = ds.read_input(["text", "in_reply_to_status_id"])
        t = time.perf_counter()
        emb = run_embed(ds, EmbedConfig(provider="local", **settings))
        timings["embed_s"] = round(time.perf_counter() - t, 1)
        t = time.perf_counter()
        run_umap(ds)
        cluster_id = run_cluster(ds)
        timings["umap_cluster_s"] = round(time.perf_counter() - t, 1)
        clusters = load_clusters(ds, cluster_id)["cluster"].to_numpy()
        vectors = load_embeddings(ds, emb)
        out = {"settings": settings, "text_normalisation": ds.sidecar(emb).get("text_normalisation"),
               "mention_dominated": mention_dominated(first_handles(frame["text"]), clusters)}
        parents = frame["in_reply_to_status_id"].fillna("").astype(str).to_numpy()
        if len(vectors) <= 20_000:
            out["same_parent"] = sibling_probe(vectors, parents)
        else:  # the probe is N×N: a fixed sample of rows keeps it in memory
            keep = np.sort(np.random.default_rng(0).choice(len(vectors), 20_000, replace=False))
            out["same_parent"] = {**sibling_probe(vectors[keep], parents[keep]), "sampled_rows": 20_000}
        if truth_fn is not None:
            from sklearn.metrics import adjusted_mutual_info_score

            truth = np.array([truth_fn(t) for t in frame["text"]])
            known = truth >= 0
            out["ami_topics"] = round(float(adjusted_mutual_info_score(truth[known], clusters[known])), 4)
        if labels:
            t = time.perf_counter()
            top = run_labels(ds, LabelConfig(provider="offline"))
            timings["labels_s"] = round(time.perf_counter() - t, 1)
            out["labels"] = label_checks(ds, top)
        out["timings"] = timings
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive", type=Path, default=ROOT / "assets" / "sample" / "twitter-archive.zip")
    parser.add_argument("--synthetic", type=int, default=0, help="generate a synth_archive.py archive of N tweets")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated: " + ", ".join(VARIANTS))
    parser.add_argument("--labels", action="store_true", help="also run the offline namer and check its labels")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    truth_fn = None
    with tempfile.TemporaryDirectory() as gen_dir:
        archive, name = args.archive, args.archive.stem
        if args.synthetic:
            from synth_archive import dominant_topic, generate_archive

            archive = Path(gen_dir) / f"synth-{args.synthetic}.zip"
            generate_archive(archive, n_tweets=args.synthetic, seed=0)
            name, truth_fn = f"synth-{args.synthetic}", dominant_topic
        results = {}
        for variant in args.variants.split(","):
            started = time.perf_counter()
            results[variant] = run_variant(archive, VARIANTS[variant], args.labels, truth_fn)
            md = results[variant]["mention_dominated"]
            sp = results[variant]["same_parent"]
            print(f"{variant:22s} mention-dominated {md['dominated_clusters']:3d}/{md['clusters']:3d} clusters "
                  f"{md['tweet_share']:.1%} of tweets  P@1 {sp['precision_at_1']:.3f} P@10 {sp['precision_at_10']:.3f}"
                  + (f"  AMI {results[variant]['ami_topics']:.3f}" if "ami_topics" in results[variant] else "")
                  + (f"  label problems {results[variant]['labels']['rule_problems']}"
                     f" disguised {len(results[variant]['labels']['disguised_name_labels'])}"
                     f" weak {len(results[variant]['labels']['weak_term_labels'])}" if args.labels else "")
                  + f"  ({time.perf_counter() - started:.0f} s)", flush=True)
    result = {
        "benchmark": "map_quality", "archive": name, "variants": results,
        "machine": {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2), "shared": True,
                    "python": platform.python_version(), "platform": platform.platform()},
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out = args.out or HERE / "results" / f"map-quality-{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
