"""Voyage AI embeddings (``voyage-4-lite``, 1024-d) with our own batching and backoff.

Batches stay within the API's limits (≤ 1000 texts and a conservative token estimate per
request; ``count_tokens`` is never called because it reaches a model hub). The client's
own retries are off: 429 and 5xx are retried here with exponential backoff, and the
first rate limit is reported through ``progress`` so the curator knows why it is slow.
The key comes from ``VOYAGE_API_KEY`` only and is never stored.
"""

from __future__ import annotations

import os
import random
import time
from typing import Iterator, Optional, Sequence

import numpy as np

from pipeline.stages.embed.embedders.base import Embedder, EmbedderError, l2_normalise

DEFAULT_VOYAGE_MODEL = "voyage-4-lite"
MODEL_DIMENSIONS = {"voyage-4-lite": 1024, "voyage-4": 1024, "voyage-4-large": 1024,
                    "voyage-3.5-lite": 1024, "voyage-3.5": 1024}
MAX_TEXTS_PER_REQUEST = 1000
#: tokens per request we aim for; well under the API's per-request limit for the lite models
DEFAULT_MAX_BATCH_TOKENS = 100_000
RETRY_STATUSES = {429, 500, 502, 503, 504}
BLANK_TEXT = "(no text)"  # the API rejects empty strings


def estimate_tokens(text: str) -> int:
    """A generous token estimate (≈ 1 token per 3 characters, + 2), so batches never exceed limits."""
    return len(text) // 3 + 2


def plan_batches(texts: Sequence[str], max_texts: int, max_tokens: int) -> Iterator[tuple[int, int]]:
    """Consecutive ``[start, end)`` ranges that respect both the row and the token budget."""
    start, tokens = 0, 0
    for i, text in enumerate(texts):
        cost = estimate_tokens(text)
        if i > start and (i - start >= max_texts or tokens + cost > max_tokens):
            yield start, i
            start, tokens = i, 0
        tokens += cost
    if start < len(texts):
        yield start, len(texts)


class VoyageEmbedder(Embedder):
    provider = "voyage"
    resumable = True
    chunk_size = 8000  # texts per progress step (several requests)

    def __init__(
        self,
        model: Optional[str] = None,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        dimensions: Optional[int] = None,
        max_texts: int = MAX_TEXTS_PER_REQUEST,
        max_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
        max_retries: int = 8,
        base_delay: float = 1.0,
        max_delay: float = 60.0,
        timeout: float = 120.0,
        input_type: str = "document",
    ):
        self.model_id = model or DEFAULT_VOYAGE_MODEL
        self.dimensions = int(dimensions or MODEL_DIMENSIONS.get(self.model_id, 1024))
        # The key is held in memory only; it never goes into a sidecar, log or repr.
        self._api_key = api_key or os.environ.get("VOYAGE_API_KEY")
        self.base_url = base_url or os.environ.get("VOYAGE_BASE_URL") or None
        self.max_texts = max(1, min(int(max_texts), MAX_TEXTS_PER_REQUEST))
        self.max_tokens = int(max_tokens)
        self.max_retries = int(max_retries)
        self.base_delay = float(base_delay)
        self.max_delay = float(max_delay)
        self.timeout = timeout
        self.input_type = input_type
        self._client = None
        self.requests_sent = 0
        self.rate_limited = 0

    def _get_client(self):
        if self._client is None:
            if not self._api_key:
                raise EmbedderError(
                    "the voyage provider needs VOYAGE_API_KEY in the environment "
                    "(or choose provider 'local' for the offline embedder)"
                )
            try:
                import voyageai
            except ImportError as exc:  # pragma: no cover - a dependency of the project
                raise EmbedderError("the voyage provider needs the 'voyageai' package") from exc
            self._client = voyageai.Client(api_key=self._api_key, max_retries=0,
                                           timeout=self.timeout, base_url=self.base_url)
        return self._client

    def embed(self, texts: Sequence[str], progress=None, input_type: Optional[str] = None) -> np.ndarray:
        texts = [t if isinstance(t, str) and t.strip() else BLANK_TEXT for t in texts]
        out = np.empty((len(texts), self.dimensions), dtype=np.float32)
        for start, end in plan_batches(texts, self.max_texts, self.max_tokens):
            out[start:end] = self._embed_batch(texts[start:end], progress, input_type or self.input_type)
        return l2_normalise(out)

    def plan_chunks(self, texts: Sequence[str]) -> list[tuple[int, int]]:
        """One chunk per API request, so a resumed run re-sends only unfinished requests."""
        texts = [t if isinstance(t, str) and t.strip() else BLANK_TEXT for t in texts]
        return list(plan_batches(texts, self.max_texts, self.max_tokens))

    def embed_query(self, text: str) -> np.ndarray:
        """One search query, embedded as a query (Voyage distinguishes documents and queries)."""
        return self.embed([text], input_type="query")[0]

    def _embed_batch(self, texts: list[str], progress, input_type: str) -> np.ndarray:
        from voyageai import error as verr

        client = self._get_client()
        attempt = 0
        while True:
            try:
                self.requests_sent += 1
                result = client.embed(texts, model=self.model_id, input_type=input_type,
                                      truncation=True, output_dimension=self.dimensions)
                vectors = np.asarray(result.embeddings, dtype=np.float32)
                if vectors.shape != (len(texts), self.dimensions):
                    raise EmbedderError(
                        f"Voyage returned {vectors.shape} for {len(texts)} texts, expected {self.dimensions}-d"
                    )
                return vectors
            except (verr.AuthenticationError, verr.InvalidRequestError, verr.MalformedRequestError) as exc:
                raise EmbedderError(f"Voyage rejected the request ({_status(exc)}): {_short(exc)}") from None
            except (verr.VoyageError, OSError) as exc:
                status = _status(exc)
                retryable = status in RETRY_STATUSES or status is None
                if not retryable or attempt >= self.max_retries:
                    raise EmbedderError(
                        f"Voyage embeddings failed after {attempt + 1} attempt(s) "
                        f"(last error: HTTP {status or 'connection'}: {_short(exc)}); "
                        "finished batches are kept, run the stage again to resume"
                    ) from None
                delay = min(self.max_delay, self.base_delay * 2 ** attempt) * (1 + 0.1 * random.random())
                retry_after = _retry_after(exc)
                if retry_after is not None:
                    delay = max(delay, min(retry_after, self.max_delay))
                attempt += 1
                if status == 429:
                    self.rate_limited += 1
                    hint = ("Voyage is rate limiting (HTTP 429): waiting %.0f s. Without a payment method "
                            "Voyage allows 3 requests and 10K tokens a minute, so large archives take hours."
                            % delay)
                else:
                    hint = f"Voyage error (HTTP {status or 'connection'}): retry {attempt} in {delay:.0f} s"
                _tell(progress, hint)
                _sleep(delay, progress)


def _tell(progress, message: str) -> None:
    if progress is None:
        return
    note = getattr(progress, "note", None)
    if note is not None:
        note(message)
    else:
        progress.message(message)


def _status(exc) -> Optional[int]:
    status = getattr(exc, "http_status", None)
    return int(status) if status else None


def _short(exc) -> str:
    text = getattr(exc, "user_message", None) or str(exc)
    return " ".join(str(text).split())[:200]


def _retry_after(exc) -> Optional[float]:
    headers = getattr(exc, "headers", None) or {}
    value = headers.get("retry-after") or headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _sleep(seconds: float, progress) -> None:
    """Sleep in short steps so a cancel is honoured during a long backoff."""
    deadline = time.monotonic() + seconds
    while True:
        if progress is not None:
            progress.check()
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.25))
