"""Retrieval settings, read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from embedding.factory import EMBEDDER
from runtime import env
from runtime.settings import ServerSettings

COLLECTION = env.declare(
    "LECTERN_COLLECTION", "docusaurus-book", env.text, "Name of the single vector collection."
)
SEARCH_MODE = env.declare(
    "LECTERN_SEARCH_MODE", "hybrid", env.choice("dense", "keyword", "hybrid"),
    "Default search mode when a request names none.",
)
OUT_OF_SCOPE_THRESHOLD = env.declare(
    "LECTERN_OUT_OF_SCOPE_THRESHOLD", 0.30, env.number(-1.0, 1.0),
    "Best dense similarity below which the book is judged to have no answer.",
)


@dataclass(frozen=True)
class RetrievalSettings:
    server: ServerSettings
    """How the service listens."""
    collection: str
    """Collection (or table) holding every chunk."""
    embedder: str
    """Query embedder; must be the one that built the index."""
    default_mode: str
    """dense, keyword or hybrid."""
    out_of_scope_threshold: float
    """Similarity under which evidence counts as too weak."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RetrievalSettings:
        environ = os.environ if environ is None else environ
        return cls(
            server=ServerSettings.from_env("retrieval", environ),
            collection=COLLECTION.read(environ),
            embedder=EMBEDDER.read(environ),
            default_mode=SEARCH_MODE.read(environ),
            out_of_scope_threshold=OUT_OF_SCOPE_THRESHOLD.read(environ),
        )
