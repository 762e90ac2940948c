"""Embed stage: tweet texts -> ``embeddings/embedding-NNN.h5`` (float32 N×d) + sidecar JSON.

Providers live in :mod:`pipeline.stages.embed.embedders` (``local`` offline ONNX, ``voyage`` API). Texts
are embedded in length-sorted chunks (short tweets pad less) and written back in row
order, so row i of the matrix is ``ls_index`` i. A resumable provider (Voyage) keeps each
finished request in ``embeddings/.partial-<key>/``; a rerun over the same input and model
sends only what is missing, and the folder is removed once the artifact is written.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import param

from pipeline.core import textnorm
from pipeline.core.config import StageConfig
from pipeline.core.errors import ConfigError, LineageError
from pipeline.core.progress import Progress, null_progress
from pipeline.core.workspace import Dataset, WorkspaceError, atomic_path
from pipeline.stages.embed.embedders import Embedder, EmbedderError, default_provider, get_embedder
from pipeline.stages.embed.reuse import plan_reuse
from pipeline.stages.links import build_edges

__all__ = [
    "EmbedConfig", "run_embed", "get_embedder", "embedder_for", "load_embeddings",
    "EmbedderError", "Embedder", "texts_to_embed", "meaning_texts", "read_meaning_texts", "frame_meaning_texts",
    "with_prefix",
]

H5_DATASET = "embeddings"
PARTIAL_PREFIX = ".partial-"


class EmbedConfig(StageConfig):
    """How tweet texts become vectors."""

    provider = param.Selector(
        default="auto", objects=["auto", "local", "voyage"],
        doc="embedding provider: 'local' (offline, weights bundled), 'voyage' (API, needs "
            "VOYAGE_API_KEY), 'auto' = voyage when VOYAGE_API_KEY is set, else local")
    model = param.String(
        default="", doc="model id; empty = the provider's default (local: wordllama-l2-supercat-256, or "
                        "all-MiniLM-L6-v2-int8 for a transformer ~200x slower; voyage: voyage-4-lite)")
    text_column = param.String(default="text", doc="input.parquet column to embed")
    prefix = param.String(default="", doc="text put before every tweet (e.g. an instruction)")
    normalise = param.Boolean(
        default=True, doc="embed the text for meaning: leading reply @handles, 'RT @x:' and URLs removed "
                          "(served text is unchanged); off = the column as it is")
    inner_handles = param.Selector(
        default="name", objects=list(textnorm.INNER_HANDLES),
        doc="@handles inside the sentence: 'name' = the name without '@', 'keep' as written, 'drop'")
    parent_context = param.Boolean(
        default=False, doc="add the text of a reply's in-archive parent (self-thread, quoted tweet) to it")
    batch_size = param.Integer(default=64, bounds=(1, 1024),
                               doc="local ONNX models: texts per inference batch")
    max_batch_tokens = param.Integer(
        default=100_000, bounds=(1_000, 1_000_000),
        doc="voyage: estimated tokens per request (lower it on a rate-limited free tier)")


class _Ticker:
    """What an embedder sees of the stage progress: cancel checks and notes at the current count."""

    def __init__(self, progress: Progress, total: int):
        self.progress, self.total, self.done = progress, total, 0

    def check(self) -> None:
        self.progress.check()

    def note(self, message: str) -> None:
        self.progress.update(self.done, self.total, message)


def _resolve_embedder(config: EmbedConfig) -> Embedder:
    provider = default_provider() if config.provider == "auto" else config.provider
    options = {"batch_size": config.batch_size} if provider == "local" else {"max_tokens": config.max_batch_tokens}
    embedder = get_embedder(provider, config.model or None, **options)
    if provider == "voyage":
        embedder._get_client()  # no VOYAGE_API_KEY: stop here, before any chunk is planned or sent
    return embedder


def normalisation(config: EmbedConfig) -> Optional[dict]:
    """The sidecar record of how the config turns tweets into text (None: the column as it is)."""
    return textnorm.describe(config.inner_handles, config.parent_context) if config.normalise else None


def parent_rows(frame) -> np.ndarray:
    """Row of each row's in-archive parent: the tweet it replies to, else the one it quotes (-1: none)."""
    edges = build_edges(frame)
    edges = edges[edges["internal_target"]]
    parent = np.full(len(frame), -1, dtype=np.int64)
    # quotes first, so a reply edge (the conversation) overwrites a quote of the same row
    for kind in ("quote", "reply"):
        part = edges[edges["edge_type"] == kind]
        parent[part["src_ls_index"].to_numpy(np.int64)] = part["dst_ls_index"].to_numpy(np.int64)
    return parent


def meaning_texts(texts: Sequence, norm: Optional[dict], parents: Optional[np.ndarray] = None) -> list[str]:
    """Row texts as ``norm`` (a :func:`normalisation` record) says: normalised, with parent context."""
    texts = [t if isinstance(t, str) else "" for t in texts]
    if not norm:
        return texts
    out = [textnorm.normalise(t, norm.get("inner_handles", "name")) for t in texts]
    if norm.get("parent_context") and parents is not None:
        out = [textnorm.with_context(t, out[p] if p >= 0 else None) for t, p in zip(out, parents)]
    return out


def read_meaning_texts(dataset: Dataset, text_column: str, norm: Optional[dict]) -> list[str]:
    """The texts of ``dataset`` as ``norm`` says (the embed stage and the labels stage read the same)."""
    columns = [text_column]
    if norm and norm.get("parent_context"):
        columns += [c for c in ("id", "in_reply_to_status_id", "urls_json", "tweet_type", "is_retweet", "is_like")
                    if c != text_column and c in dataset.input_columns()]
    try:
        frame = dataset.read_input(columns)
    except (KeyError, ValueError) as exc:
        raise ConfigError(
            f"dataset '{dataset.name}' input.parquet has no column '{text_column}' "
            f"to embed ({exc}); set text_column to an existing text column"
        ) from None
    return frame_meaning_texts(frame, text_column, norm)


def frame_meaning_texts(frame, text_column: str, norm: Optional[dict]) -> list[str]:
    """:func:`meaning_texts` of a frame's rows; parent context looks for parents within the frame."""
    parents = parent_rows(frame) if norm and norm.get("parent_context") and "id" in frame.columns else None
    return meaning_texts(frame[text_column].tolist(), norm, parents)


def with_prefix(texts: list[str], config: EmbedConfig) -> list[str]:
    """The strings the embedder is sent: ``config.prefix`` before each text for meaning."""
    return [config.prefix + t for t in texts] if config.prefix else texts


def texts_to_embed(dataset: Dataset, config: EmbedConfig) -> list[str]:
    """The exact strings sent to the embedder, row i = ``ls_index`` i (normalised, prefix added)."""
    texts = read_meaning_texts(dataset, config.text_column, normalisation(config))
    if not texts:
        raise LineageError(f"dataset '{dataset.name}' has no rows to embed; ingest an archive with tweets")
    return with_prefix(texts, config)


def _partial_key(dataset: Dataset, embedder: Embedder, texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for part in (dataset.input_fingerprint() or "", embedder.provider, embedder.model_id,
                 str(embedder.dimensions)):
        digest.update(part.encode() + b"\x00")
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass") + b"\x00")
    return digest.hexdigest()[:20]


class _PartialStore:
    """Finished chunks of a resumable run: ``rows-<start>-<end>.npy`` over the length-sorted rows."""

    def __init__(self, folder: Path):
        self.folder = folder

    def load(self, out: np.ndarray) -> np.ndarray:
        """Fill ``out`` with finished chunks; returns the mask of rows already embedded."""
        covered = np.zeros(len(out), dtype=bool)
        if not self.folder.is_dir():
            return covered
        for path in sorted(self.folder.glob("rows-*.npy")):
            try:
                start, end = (int(x) for x in path.stem.split("-")[1:3])
                block = np.load(path)
            except (ValueError, OSError):
                continue  # a damaged chunk is simply embedded again
            if block.shape == (end - start, out.shape[1]) and 0 <= start < end <= len(out):
                out[start:end] = block
                covered[start:end] = True
        return covered

    def save(self, start: int, end: int, block: np.ndarray) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.folder / f"rows-{start}-{end}.npy") as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, block)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _uncovered_chunks(embedder: Embedder, texts: Sequence[str], covered: np.ndarray) -> list[tuple[int, int]]:
    """Chunks over each run of not-yet-embedded rows (the whole range on a fresh run)."""
    chunks = []
    n = len(texts)
    i = 0
    while i < n:
        if covered[i]:
            i += 1
            continue
        j = i
        while j < n and not covered[j]:
            j += 1
        chunks += [(i + s, i + e) for s, e in embedder.plan_chunks(texts[i:j])]
        i = j
    return chunks


def run_embed(
    dataset: Dataset,
    config: Optional[EmbedConfig] = None,
    progress: Optional[Progress] = None,
    embedder: Optional[Embedder] = None,
) -> str:
    """Embed every row's text; returns the new ``embedding-NNN`` id.

    ``embedder`` overrides the one the config names (tests and benchmarks pass a
    configured instance); its provider and model are what the sidecar records.
    """
    config = config or EmbedConfig()
    progress = progress or null_progress("embed")
    started = time.perf_counter()
    texts = texts_to_embed(dataset, config)
    embedder = embedder or _resolve_embedder(config)
    n = len(texts)

    # Length-sorted order: transformer batches pad less and API batches fill evenly.
    order = np.argsort(np.fromiter((len(t) for t in texts), dtype=np.int64, count=n), kind="stable")
    sorted_texts = [texts[i] for i in order]
    dims = int(embedder.dimensions)
    vectors = np.empty((n, dims), dtype=np.float32)

    store = None
    covered = np.zeros(n, dtype=bool)
    if embedder.resumable:
        key = _partial_key(dataset, embedder, sorted_texts)
        store = _PartialStore(dataset.artifact_dir("embedding") / f"{PARTIAL_PREFIX}{key}")
        covered = store.load(vectors)
    resumed = int(covered.sum())
    # unchanged tweets (same id, same string) keep the vector of an earlier embedding
    reuse = plan_reuse(dataset, embedder.provider, embedder.model_id, dims, texts, load_embeddings)
    covered |= reuse.fill(vectors, order)
    already = int(covered.sum())
    ticker = _Ticker(progress, n)
    ticker.done = already
    progress.update(resumed, n, f"embedding with {embedder.provider}/{embedder.model_id}"
                    + (f" (resuming: {resumed} rows already done)" if resumed else ""))

    embed_started = time.perf_counter()
    for start, end in _uncovered_chunks(embedder, sorted_texts, covered):
        progress.check()
        block = np.asarray(embedder.embed(sorted_texts[start:end], progress=ticker), dtype=np.float32)
        if block.shape != (end - start, dims):
            raise EmbedderError(f"{embedder!r} returned {block.shape} for {end - start} texts")
        vectors[start:end] = block
        if store is not None:
            store.save(start, end, block)
        ticker.done += end - start
        rate = (ticker.done - already) / max(time.perf_counter() - embed_started, 1e-9)
        progress.update(ticker.done, n, f"{rate:.0f} texts/s")
    embed_seconds = time.perf_counter() - embed_started

    embeddings = np.empty_like(vectors)
    embeddings[order] = vectors  # back to row (ls_index) order
    del vectors
    progress.check()

    import h5py

    write_started = time.perf_counter()
    with dataset.new_artifact("embedding") as art:
        with h5py.File(art.path(".h5"), "w") as h5:
            h5.create_dataset(H5_DATASET, data=embeddings)
        fields = {
            "model_id": embedder.model_id,
            "provider": embedder.provider,
            "dimensions": dims,
            "dtype": "float32",
            "normalized": True,
            "text_column": config.text_column,
            "prefix": config.prefix,
            "text_normalisation": normalisation(config),
            "min_values": embeddings.min(axis=0).tolist(),
            "max_values": embeddings.max(axis=0).tolist(),
            "resumed_rows": resumed,
            "texts_per_s": round((n - already) / max(embed_seconds, 1e-9), 1),
            **reuse.sidecar_fields(n),
        }
        reuse.write(art)
        if embedder.provider == "voyage":
            fields["requests"] = getattr(embedder, "requests_sent", None)
            fields["rate_limited"] = getattr(embedder, "rate_limited", None)
        params = config.to_dict()
        params["provider"] = embedder.provider  # what 'auto' resolved to
        params["model"] = embedder.model_id
        art.write_sidecar(
            fields, params=params, inputs={"input": dataset.input_fingerprint()}, rows=n,
            timings={
                "embed_s": round(embed_seconds, 3),
                "write_s": round(time.perf_counter() - write_started, 3),
                "total_s": round(time.perf_counter() - started, 3),
            },
        )
    if store is not None:
        store.remove()
    progress.update(n, n, f"{art.id}: {n} × {dims}")
    return art.id


def _embedding_id(dataset: Dataset, embedding_id: Optional[str]) -> str:
    return dataset.require("embedding", embedding_id)


def load_embeddings(dataset: Dataset, embedding_id: Optional[str] = None) -> np.ndarray:
    """The float32 N×d matrix of an embedding artifact (the latest when ``embedding_id`` is None)."""
    import h5py

    embedding_id = _embedding_id(dataset, embedding_id)
    path = dataset.artifact_path(embedding_id, ".h5")
    if not path.is_file():
        raise WorkspaceError(f"{embedding_id} of dataset '{dataset.name}' has no {path.name}; embed again")
    with h5py.File(path, "r") as h5:
        return np.asarray(h5[H5_DATASET][...], dtype=np.float32)


def embedder_for(dataset: Dataset, embedding_id: Optional[str] = None, **options) -> Embedder:
    """The embedder that made ``embedding_id`` (same space: for labels and query search)."""
    embedding_id = _embedding_id(dataset, embedding_id)
    side = dataset.sidecar(embedding_id)
    embedder = get_embedder(side.get("provider"), side.get("model_id"), **options)
    if side.get("dimensions") and embedder.provider == "voyage":
        embedder.dimensions = int(side["dimensions"])
    return embedder


def run(dataset: Dataset, config: EmbedConfig, inputs: dict, progress: Progress) -> str:
    """The stage contract (:mod:`pipeline.stages.registry`): embed the dataset's input -> ``embedding-NNN``."""
    return run_embed(dataset, config, progress, **inputs)
