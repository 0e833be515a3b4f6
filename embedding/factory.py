"""Chooses the embedder from configuration."""

from __future__ import annotations

from embedding.base import Embedder
from embedding.local import LocalEmbedder
from runtime import env

EMBEDDER = env.declare(
    "LECTERN_EMBEDDER", "local", env.choice("local"),
    "Embedding model: local (all-MiniLM-L6-v2, bundled, offline).",
)


def make_embedder(kind: str) -> Embedder:
    if kind == "local":
        return LocalEmbedder()
    raise ValueError(f"unknown embedder {kind!r}")
