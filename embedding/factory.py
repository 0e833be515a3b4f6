"""Chooses the embedder from configuration."""

from __future__ import annotations

import os
from collections.abc import Mapping

from embedding.base import Embedder
from embedding.local import LocalEmbedder
from runtime import env

EMBEDDER = env.declare(
    "LECTERN_EMBEDDER", "local", env.choice("local", "gemini"),
    "Embedding model: local (all-MiniLM-L6-v2, bundled, offline) or gemini (gemini-embedding-001, 768 dims; "
    "needs GEMINI_API_KEY).",
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


def make_embedder(kind: str, environ: Mapping[str, str] | None = None) -> Embedder:
    if kind == "local":
        return LocalEmbedder()
    if kind == "gemini":
        from embedding.gemini import GeminiEmbedder

        environ = os.environ if environ is None else environ
        return GeminiEmbedder(GEMINI_API_KEY.read(environ), GEMINI_BASE_URL.read(environ))
    raise ValueError(f"unknown embedder {kind!r}")
