"""The Voyage provider against a local stub of the embeddings API (no network, no key)."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from pipeline.core.progress import Progress
from pipeline.stages.embed.embedders import EmbedderError, get_embedder
from pipeline.stages.embed.embedders.voyage import VoyageEmbedder, plan_batches
from pipeline.stages.embed.stage import EmbedConfig, load_embeddings, run_embed, texts_to_embed
from support import copy_dataset

KEY = "test-voyage-key-do-not-store"
DIMS = 1024


def fake_vector(text: str) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
    return np.random.default_rng(seed).standard_normal(DIMS).astype(np.float32)


class VoyageStub:
    """``POST /v1/embeddings`` like Voyage's API; ``script`` holds statuses to answer first."""

    def __init__(self):
        self.script: list[int] = []
        self.fail_after: int | None = None  # answer 500 after this many successful requests
        self.requests: list[list[str]] = []  # texts of every successful request
        self.statuses: list[int] = []
        self.auth: set[str] = set()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.auth.add(self.headers.get("Authorization", ""))
                if self.path != "/v1/embeddings":
                    return self._send(404, {"detail": "not found"})
                if stub.script:
                    status = stub.script.pop(0)
                    return self._send(status, {"detail": f"stub says {status}"})
                if stub.fail_after is not None and len(stub.requests) >= stub.fail_after:
                    return self._send(500, {"detail": "stub storm"})
                texts = body["input"]
                stub.requests.append(texts)
                data = []
                for i, text in enumerate(texts):
                    vec = fake_vector(text)
                    emb = (base64.b64encode(vec.tobytes()).decode()
                           if body.get("encoding_format") == "base64" else vec.tolist())
                    data.append({"object": "embedding", "embedding": emb, "index": i})
                self._send(200, {"object": "list", "data": data, "model": body["model"],
                                 "usage": {"total_tokens": sum(len(t) // 4 for t in texts)}})

            def _send(self, status, payload):
                stub.statuses.append(status)
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub():
    server = VoyageStub()
    yield server
    server.close()


@pytest.fixture
def dataset(sample_dataset, tmp_path):
    """A private copy without embeddings (the session dataset may be mapped already)."""
    ds = copy_dataset(sample_dataset, tmp_path)
    shutil.rmtree(ds.path / "embeddings", ignore_errors=True)
    return ds


def voyage(stub, **kw) -> VoyageEmbedder:
    kw.setdefault("max_texts", 500)
    return VoyageEmbedder(api_key=KEY, base_url=stub.url, base_delay=0.01, max_delay=0.05, **kw)


def expected_vectors(dataset) -> np.ndarray:
    """What the stub returns for the exact strings the stage sends (the text for meaning, not the raw text)."""
    texts = texts_to_embed(dataset, EmbedConfig(provider="voyage"))
    vecs = np.vstack([fake_vector(t if t.strip() else "(no text)") for t in texts])
    return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


def all_files_text(dataset) -> str:
    return "".join(p.read_bytes().decode("latin-1") for p in dataset.path.rglob("*") if p.is_file())


def test_voyage_batches_respect_row_and_token_limits():
    texts = ["x" * 300] * 2500 + ["short"] * 10
    batches = list(plan_batches(texts, 1000, 30_000))
    assert batches[0][0] == 0 and batches[-1][1] == len(texts)
    assert all(a < b for a, b in batches) and all(b1 == a2 for (_, b1), (a2, _) in zip(batches, batches[1:]))
    for a, b in batches:
        assert b - a <= 1000
        assert sum(len(t) // 3 + 2 for t in texts[a:b]) <= 30_000


def test_rate_limit_is_retried_and_reported(stub, dataset):
    stub.script = [429]
    events = []
    emb_id = run_embed(dataset, EmbedConfig(provider="voyage"), Progress(events.append),
                       embedder=voyage(stub))
    side = dataset.sidecar(emb_id)
    assert (side["provider"], side["model_id"], side["dimensions"]) == ("voyage", "voyage-4-lite", DIMS)
    assert side["rate_limited"] == 1
    assert any("rate limit" in e.message for e in events), "the curator must hear about 429s"
    assert stub.statuses[0] == 429 and stub.auth == {f"Bearer {KEY}"}
    np.testing.assert_allclose(load_embeddings(dataset, emb_id), expected_vectors(dataset), atol=1e-6)
    assert KEY not in all_files_text(dataset), "the API key must never be written"


def test_server_error_storm_fails_clearly_and_writes_nothing(stub, dataset):
    stub.fail_after = 0
    with pytest.raises(EmbedderError, match=r"failed after 3 attempt\(s\).*HTTP 500.*resume"):
        run_embed(dataset, EmbedConfig(provider="voyage"), embedder=voyage(stub, max_retries=2))
    assert dataset.list_ids("embedding") == []
    assert stub.statuses == [500, 500, 500]


def test_crash_mid_run_resumes_with_only_the_missing_batches(stub, dataset):
    n = len(dataset.read_input(["id"]))
    stub.fail_after = 2
    with pytest.raises(EmbedderError):
        run_embed(dataset, EmbedConfig(provider="voyage"), embedder=voyage(stub, max_retries=1))
    assert dataset.list_ids("embedding") == []
    partial = list((dataset.path / "embeddings").glob(".partial-*"))
    assert len(partial) == 1 and len(list(partial[0].glob("rows-*.npy"))) == 2
    first_run_texts = sum(len(r) for r in stub.requests)

    stub.fail_after, stub.requests = None, []
    emb_id = run_embed(dataset, EmbedConfig(provider="voyage"), embedder=voyage(stub))
    resent = sum(len(r) for r in stub.requests)
    assert resent == n - first_run_texts, "only the unfinished batches are sent again"
    assert dataset.sidecar(emb_id)["resumed_rows"] == first_run_texts
    np.testing.assert_allclose(load_embeddings(dataset, emb_id), expected_vectors(dataset), atol=1e-6)
    assert not list((dataset.path / "embeddings").glob(".partial-*")), "partial state is removed on success"


def test_key_and_endpoint_come_from_the_environment(stub, dataset, monkeypatch):
    monkeypatch.setenv("VOYAGE_API_KEY", KEY)
    monkeypatch.setenv("VOYAGE_BASE_URL", stub.url)
    emb_id = run_embed(dataset, EmbedConfig(provider="auto", max_batch_tokens=20_000))
    side = dataset.sidecar(emb_id)
    assert side["provider"] == "voyage" and side["params"]["provider"] == "voyage"
    assert max(len(r) for r in stub.requests) < len(dataset.read_input(["id"]))
    assert KEY not in all_files_text(dataset)


def test_missing_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("VOYAGE_API_KEY", raising=False)
    with pytest.raises(EmbedderError, match="VOYAGE_API_KEY"):
        get_embedder("voyage").embed(["hello"])


def test_bad_key_is_not_retried(stub):
    stub.script = [401]
    with pytest.raises(EmbedderError, match="rejected"):
        voyage(stub).embed(["hello"])
    assert stub.statuses == [401]
