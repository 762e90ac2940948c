"""latentscope 1.0's pipeline, one stage per process (run by benchmarks/.peers-venv/bin/python).

    python latentscope_stages.py STAGE --result R.json --dataset NAME [stage options]

Stages call the same functions as latentscope's console scripts (``ls-ingest``, the embedding
importer, ``ls-umap``, ``ls-cluster``, ``ls-scope``) against ``$LATENT_SCOPE_DATA``:

- ``ingest``   ``--path input.parquet``: ``ingest_file`` (latentscope reads tables, not X archives)
- ``import``   ``--npy embeddings.npy``: ``import_embeddings`` (our vectors, so both sides
  cluster the same embedding; latentscope's own embed step never runs and nothing is downloaded)
- ``umap``     ``--neighbors --min-dist --seed``: ``umapper`` → 2-D map (its only manifold)
- ``cluster``  ``--min-cluster-size --min-samples --epsilon``: ``clusterer(method="hdbscan")``
  on the 2-D map, noise assigned to the nearest centroid (as ours does, on its 10-D manifold)
- ``scope``    ``scope(..., "default", ...)``: scope files + its LanceDB table (IVF_PQ, BTREE)
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import Timer, child_main  # noqa: E402

EMBEDDING_ID, UMAP_ID, CLUSTER_ID = "embedding-001", "umap-001", "cluster-001"


def _data_dir() -> Path:
    return Path(os.environ["LATENT_SCOPE_DATA"])


def ingest(dataset: str, path: str) -> dict:
    from latentscope.scripts.ingest import ingest_file

    with Timer() as t:
        ingest_file(dataset, path, "text")
    meta = json.loads((_data_dir() / dataset / "meta.json").read_text())
    return {"work_s": t.seconds, "rows": meta["length"], "columns": len(meta["columns"])}


def import_(dataset: str, npy: str) -> dict:
    import numpy as np
    from latentscope.scripts.embed import import_embeddings

    with Timer() as t:
        vectors = np.load(npy)
        import_embeddings(dataset, vectors, model_id="tweetscope-imported", text_column="text")
    return {"work_s": t.seconds, "shape": list(vectors.shape), "embedding_id": EMBEDDING_ID}


def umap(dataset: str, neighbors: str = "25", min_dist: str = "0.1", seed: str = "42") -> dict:
    from latentscope.scripts.umapper import umapper

    with Timer() as t:
        umapper(dataset, EMBEDDING_ID, neighbors=int(neighbors), min_dist=float(min_dist),
                seed=int(seed) if seed != "none" else None, dimensions=2)
    return {"work_s": t.seconds, "umap_id": UMAP_ID, "dimensions": 2}


def cluster(dataset: str, min_cluster_size: str, min_samples: str, epsilon: str = "0.0") -> dict:
    from latentscope.scripts.cluster import clusterer

    with Timer() as t:
        clusterer(dataset, UMAP_ID, int(min_cluster_size), int(min_samples), float(epsilon), None,
                  method="hdbscan", assign_noise=True)
    meta = json.loads((_data_dir() / dataset / "clusters" / f"{CLUSTER_ID}.json").read_text())
    return {"work_s": t.seconds, "n_clusters": meta["n_clusters"], "n_noise": meta["n_noise"],
            "cluster_on": meta["cluster_on"]}


def scope(dataset: str) -> dict:
    from latentscope.scripts.scope import scope as make_scope

    with Timer() as t:
        make_scope(dataset, EMBEDDING_ID, UMAP_ID, CLUSTER_ID, "default", "benchmark", "benchmark scope")
    scopes = _data_dir() / dataset / "scopes"
    sizes = {p.name: p.stat().st_size for p in scopes.glob("scopes-001*.parquet")}
    return {"work_s": t.seconds, "scope_files_bytes": sizes, "includes_lancedb_export": True}


STAGES = {"ingest": ingest, "import": import_, "umap": umap, "cluster": cluster, "scope": scope}

if __name__ == "__main__":
    child_main(STAGES)
