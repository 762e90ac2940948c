"""A small synthetic dataset with a complete artifact chain, written through the workspace API.

Used by the scope/links/validate/tombstone unit tests so they run in a second without the
compute stages; the end-to-end tests use the conftest fixtures on the real sample archive.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from pipeline.core.workspace import Workspace, atomic_write_json, write_parquet

N_CLUSTERS = 4


def fake_input(n: int, seed: int = 0) -> pd.DataFrame:
    """An input.parquet-shaped frame (21 columns): a reply thread, quotes, a retweet and a like."""
    rng = np.random.default_rng(seed)
    ids = [str(1_500_000_000_000_000_000 + i * 7) for i in range(n)]
    tweet_type = np.array(["tweet"] * n, dtype=object)
    reply_to = [None] * n
    urls = ["[]"] * n
    # thread: 1 -> 2 -> 3 -> 4 (row 1 replies to row 0 ... depth 4 at row 4)
    for child in range(1, 5):
        reply_to[child] = ids[child - 1]
        tweet_type[child] = "reply"
    reply_to[5] = "42"  # reply to someone outside the dataset
    tweet_type[5] = "reply"
    urls[6] = json.dumps([f"https://twitter.com/me/status/{ids[0]}", "https://example.com/a"])
    tweet_type[6] = "quote"
    urls[7] = json.dumps(["https://x.com/other/status/99?s=20"])
    tweet_type[7] = "quote"
    tweet_type[8] = "retweet"
    urls[8] = json.dumps([f"https://twitter.com/me/status/{ids[1]}"])  # retweets are not sources
    tweet_type[9] = "like"
    created = pd.date_range("2020-01-01", periods=n, freq="h", tz="UTC")
    return pd.DataFrame({
        "id": ids,
        "liked_tweet_id": [None] * n,
        "text": [f"tweet number {i} about topic {i % N_CLUSTERS} with some words" for i in range(n)],
        "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "created_at_raw": created.strftime("%a %b %d %H:%M:%S +0000 %Y"),
        "favorites": rng.integers(0, 50, n),
        "retweets": rng.integers(0, 5, n),
        "replies": rng.integers(0, 3, n),
        "lang": "en",
        "source": "web",
        "username": "me",
        "display_name": "Me Myself",
        "in_reply_to_status_id": reply_to,
        "in_reply_to_screen_name": [None] * n,
        "is_reply": [t == "reply" for t in tweet_type],
        "is_retweet": [t == "retweet" for t in tweet_type],
        "is_like": [t == "like" for t in tweet_type],
        "urls_json": urls,
        "media_urls_json": ["[]"] * n,
        "tweet_type": tweet_type.astype(str),
        "archive_source": "x_archive",
    })


def make_fake_dataset(tmp_path, n: int = 60, name: str = "fake", with_toponymy: bool = True):
    ws = Workspace(tmp_path / "data")
    with ws.creating_dataset(name) as ds:
        df = fake_input(n)
        write_parquet(df, ds.input_path)
        atomic_write_json(ds.meta_path, {"id": name, "length": n, "columns": list(df.columns),
                                         "text_column": "text", "input_fingerprint": "fp-1"})
    ds = ws.dataset(name)
    rng = np.random.default_rng(1)
    cluster = np.arange(n) % N_CLUSTERS
    raw = cluster.copy()
    raw[::7] = -1
    centres = np.array([[-0.5, -0.5], [0.5, -0.5], [-0.5, 0.5], [0.5, 0.5]])
    xy = np.clip(centres[cluster] + rng.normal(0, 0.1, (n, 2)), -1, 1).astype(np.float32)
    xy[0] = [1.0, 1.0]  # the clamped corner of the tile grid
    xy[1] = [-1.0, -1.0]

    with ds.new_artifact("embedding") as art:
        art.path(".h5").write_bytes(b"")
        art.write_sidecar({"model_id": "fake", "dimensions": 8, "min_values": [0.0] * 8},
                          inputs={"input": "fp-1"}, rows=n)
        emb = art.id
    with ds.new_artifact("umap") as art:
        write_parquet(pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1]}), art.path(".parquet"))
        art.write_sidecar({"purpose": "display", "n_components": 2, "embedding_id": emb},
                          inputs={"embedding_id": emb}, rows=n)
        display = art.id
    with ds.new_artifact("umap") as art:
        write_parquet(pd.DataFrame({f"dim_{i}": rng.normal(size=n).astype(np.float32) for i in range(10)}),
                      art.path(".parquet"))
        art.write_sidecar({"purpose": "cluster", "n_components": 10, "min_dist": 0.0, "embedding_id": emb},
                          inputs={"embedding_id": emb}, rows=n)
        cluster_umap = art.id
    hulls = [[[float(c[0]) - 0.2, float(c[1]) - 0.2], [float(c[0]) + 0.2, float(c[1]) - 0.2],
              [float(c[0]), float(c[1]) + 0.2]] for c in centres]
    with ds.new_artifact("cluster") as art:
        write_parquet(pd.DataFrame({"cluster": cluster, "raw_cluster": raw}), art.path(".parquet"))
        write_parquet(pd.DataFrame({
            "label": [f"Default {k}" for k in range(N_CLUSTERS)],
            "description": [""] * N_CLUSTERS,
            "indices": [np.flatnonzero(cluster == k).tolist() for k in range(N_CLUSTERS)],
            "hull": hulls,
        }), art.path("-labels-default.parquet"))
        art.write_json({"id": f"{art.id}-labels-default", "cluster_id": art.id}, "-labels-default.json")
        art.write_sidecar({"umap_id": display, "clustering_umap_id": cluster_umap, "embedding_id": emb,
                           "n_clusters": N_CLUSTERS, "n_noise": int((raw < 0).sum())},
                          inputs={"umap_id": display, "clustering_umap_id": cluster_umap}, rows=n)
        cid = art.id
    if with_toponymy:
        rows = []
        for k in range(N_CLUSTERS):
            members = np.flatnonzero(cluster == k)
            rows.append({"cluster": f"0_{k}", "layer": 0, "label": f"Topic {k}", "description": f"about {k}",
                         "hull": hulls[k], "count": len(members), "parent_cluster": f"1_{k // 2}",
                         "children": [], "centroid_x": float(xy[members, 0].mean()),
                         "centroid_y": float(xy[members, 1].mean()), "indices": members.tolist(),
                         "topic_specificity": 0.5 + k / 10})
        for j in range(2):
            members = np.flatnonzero(cluster // 2 == j)
            rows.append({"cluster": f"1_{j}", "layer": 1, "label": f"Theme {j}", "description": "",
                         "hull": hulls[2 * j], "count": len(members), "parent_cluster": None,
                         "children": [f"0_{2 * j}", f"0_{2 * j + 1}"], "centroid_x": 0.0, "centroid_y": 0.0,
                         "indices": members.tolist(), "topic_specificity": None})
        with ds.new_artifact("toponymy") as art:
            write_parquet(pd.DataFrame(rows), art.path(".parquet"))
            art.write_sidecar({"cluster_id": cid, "umap_id": display, "embedding_id": emb, "num_layers": 2,
                               "provider": "offline", "exemplars": {"0_0": ["tweet number 0"]}},
                              inputs={"cluster_id": cid}, rows=len(rows))
    return ds
