"""Opens the configured vector index backend, with versioned books on top."""

from __future__ import annotations

from pathlib import Path

from services.retrieval.index.base import VectorIndex
from services.retrieval.index.edge import EdgeShelf
from services.retrieval.index.pgvector import PgShelf
from services.retrieval.index.qdrant_server import ClusterLayout, QdrantShelf
from services.retrieval.index.versioned import Shelf, VersionedIndex
from services.retrieval.settings import RetrievalSettings


async def open_shelf(settings: RetrievalSettings, home: Path) -> Shelf:
    if settings.backend == "qdrant":
        q = settings.qdrant
        layout = ClusterLayout(q.shard_number, q.replication_factor, q.write_consistency_factor)
        return QdrantShelf(q.url, q.api_key, settings.collection, layout)
    if settings.backend == "pgvector":
        p = settings.pgvector
        return await PgShelf.connect(p.url, settings.collection, keyword_ranker=p.keyword, ann=p.ann,
                                     statement_cache=p.statement_cache)
    if settings.backend == "edge":
        return EdgeShelf(home / "qdrant-edge", settings.collection)
    raise ValueError(f"unknown index backend {settings.backend!r}")


async def open_index(settings: RetrievalSettings, home: Path) -> VectorIndex:
    return VersionedIndex(await open_shelf(settings, home))
