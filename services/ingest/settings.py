"""Ingest settings, read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from embedding.factory import BUNDLED, EMBEDDER, ModelSources
from runtime import env
from runtime.settings import ServerSettings
from services.ingest.push.limits import DEFAULT_PUSH_LIMITS, PushLimits

DEFAULT_ROOTS: tuple[Path, ...] = (Path("."),)
INGEST_ROOTS = env.declare(
    "LECTERN_INGEST_ROOTS", DEFAULT_ROOTS, env.paths,
    "Folders (comma-separated) that Ingest may read; any other source_dir is refused.", "the working directory",
)
MAX_CHUNK_TOKENS = env.declare(
    "LECTERN_MAX_CHUNK_TOKENS", 512, env.integer(64, 8192),
    "Most cl100k_base tokens per chunk (the embedder's own limit also applies).",
)


@dataclass(frozen=True)
class IngestSettings:
    server: ServerSettings
    """How the service listens and reaches retrieval."""
    roots: tuple[Path, ...]
    """Folders ingest may read."""
    embedder: str
    """Document embedder; must match the one retrieval embeds queries with."""
    max_chunk_tokens: int
    """Chunk size limit in cl100k_base tokens."""
    push: PushLimits = DEFAULT_PUSH_LIMITS
    """What one `lectern push` may hold, and how long it holds its book."""
    models: ModelSources = BUNDLED
    """Where the embedder's model comes from."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> IngestSettings:
        environ = os.environ if environ is None else environ
        return cls(
            server=ServerSettings.from_env("ingest", environ),
            roots=tuple(p.resolve() for p in INGEST_ROOTS.read(environ)),
            embedder=EMBEDDER.read(environ),
            max_chunk_tokens=MAX_CHUNK_TOKENS.read(environ),
            push=PushLimits.from_env(environ),
            models=ModelSources.from_env(environ),
        )
