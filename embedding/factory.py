"""Chooses the embedder from configuration."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from embedding.base import Embedder
from embedding.local import LocalEmbedder
from runtime import env

EMBEDDER = env.declare(
    "LECTERN_EMBEDDER", "local", env.choice("local", "gemini"),
    "Embedding model: local (all-MiniLM-L6-v2, bundled, offline) or gemini (gemini-embedding-001, 768 dims; "
    "needs GEMINI_API_KEY).",
)
QUERY_ENCODER = env.declare(
    "LECTERN_QUERY_ENCODER", "onnx-int8", env.choice("onnx", "onnx-int8", "torch"),
    "How the local embedder encodes search queries: onnx-int8 (per-channel int8; about 1.5x faster than float, "
    "same Redux dev-set quality; falls back to float if its vectors disagree), onnx (float) or torch. "
    "Models are exported once and cached under $LECTERN_HOME/models.",
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
    if kind == "gemini":
        from embedding.gemini import GeminiEmbedder

        return GeminiEmbedder(GEMINI_API_KEY.read(environ), GEMINI_BASE_URL.read(environ))
    raise ValueError(f"unknown embedder {kind!r}")
