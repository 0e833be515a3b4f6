"""Opens the configured vector index backend."""

from __future__ import annotations

from pathlib import Path

from services.retrieval.index.base import VectorIndex
from services.retrieval.index.edge import EdgeIndex
from services.retrieval.index.pgvector import PgVectorIndex
from services.retrieval.index.qdrant_server import ClusterLayout, QdrantServerIndex
from services.retrieval.settings import RetrievalSettings


async def open_index(settings: RetrievalSettings, home: Path) -> VectorIndex:
    if settings.backend == "qdrant":
        q = settings.qdrant
        layout = ClusterLayout(q.shard_number, q.replication_factor, q.write_consistency_factor)
        return QdrantServerIndex.connect(q.url, q.api_key, settings.collection, layout)
    if settings.backend == "pgvector":
        p = settings.pgvector
        return await PgVectorIndex.connect(p.url, settings.collection, keyword_ranker=p.keyword, ann=p.ann,
                                           statement_cache=p.statement_cache)
    if settings.backend == "edge":
        return EdgeIndex(home / "qdrant-edge", settings.collection)
    raise ValueError(f"unknown index backend {settings.backend!r}")
