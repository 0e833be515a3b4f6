"""Retrieval settings, read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from embedding.factory import EMBEDDER, QUERY_ENCODER, RERANK_CANDIDATES, ModelSources, RerankerSettings
from runtime import env
from runtime.postgres import STATEMENT_CACHE
from runtime.settings import ServerSettings
from services.retrieval.scope import RERANK_SCOPE_LOGIT

COLLECTION = env.declare(
    "LECTERN_COLLECTION", "docusaurus-book", env.text, "Name of the single vector collection."
)
SEARCH_MODE = env.declare(
    "LECTERN_SEARCH_MODE", "hybrid", env.choice("dense", "keyword", "hybrid"),
    "Default search mode when a request names none.",
)
OUT_OF_SCOPE_THRESHOLD: env.EnvVar[float | None] = env.declare(
    "LECTERN_OUT_OF_SCOPE_THRESHOLD", None, env.number(-1.0, 1.0),
    "Best dense similarity below which the book is judged to have no answer; each embedder has its own "
    "scale, so the default is the embedder's (services/retrieval/scope.py).",
    "(the embedder's: 0.30 MiniLM, 0.60 bge-small)",
)
RERANK = env.declare(
    "LECTERN_RERANK", True, env.boolean,
    "Rerank search results with the cross-encoder when a request does not say (chat leaves it to this).",
)
RERANK_OUT_OF_SCOPE = env.declare(
    "LECTERN_RERANK_OUT_OF_SCOPE_THRESHOLD", RERANK_SCOPE_LOGIT, env.number(-20.0, 20.0),
    "Best cross-encoder logit among the reranked candidates below which a reranked search is judged out of "
    "scope.",
)
INDEX_BACKEND = env.declare(
    "LECTERN_INDEX_BACKEND", "auto", env.choice("auto", "edge", "qdrant", "pgvector"),
    "Vector store: edge (embedded Qdrant Edge), qdrant (QDRANT_URL), pgvector (LECTERN_PGVECTOR_URL); "
    "auto picks qdrant when QDRANT_URL is set, else edge.",
)
QDRANT_URL = env.declare(
    "QDRANT_URL", "", env.text,
    "Qdrant server, cluster or Cloud URL (e.g. https://xyz.cloud.qdrant.io:6333); ':memory:' or "
    "'path:DIR' run qdrant-client's local mode.",
    "(unset: embedded Qdrant Edge)",
)
QDRANT_API_KEY = env.declare(
    "QDRANT_API_KEY", "", env.text, "API key for Qdrant Cloud or a secured server.", "(unset)"
)
QDRANT_SHARD_NUMBER = env.declare(
    "QDRANT_SHARD_NUMBER", 1, env.integer(1, 1024), "Shards of a newly created Qdrant collection."
)
QDRANT_REPLICATION_FACTOR = env.declare(
    "QDRANT_REPLICATION_FACTOR", 1, env.integer(1, 16), "Replicas of each shard of a new Qdrant collection."
)
QDRANT_WRITE_CONSISTENCY_FACTOR = env.declare(
    "QDRANT_WRITE_CONSISTENCY_FACTOR", 1, env.integer(1, 16),
    "Replicas that must acknowledge a write to a new Qdrant collection.",
)
PGVECTOR_URL = env.declare(
    "LECTERN_PGVECTOR_URL", "", env.text,
    "Postgres URL for the pgvector backend (its own database or schema; sslmode honoured).", "(unset)",
)
PGVECTOR_ANN = env.declare(
    "LECTERN_PGVECTOR_ANN", "auto", env.choice("auto", "hnsw", "exact"),
    "pgvector search: hnsw index, exact scan, or auto (exact only on a local server whose CPU "
    "cannot run the embedded pgvector's index code).",
)
PGVECTOR_KEYWORD = env.declare(
    "LECTERN_PGVECTOR_KEYWORD", "bm25", env.choice("bm25", "ts_rank"),
    "Keyword ranking on pgvector: BM25 in SQL or Postgres ts_rank_cd.",
)


@dataclass(frozen=True)
class PgVectorSettings:
    url: str
    """Postgres URL; the index lives in the lectern_index schema."""
    ann: str
    """auto, hnsw or exact."""
    keyword: str
    """bm25 or ts_rank."""
    statement_cache: int = STATEMENT_CACHE.default
    """Prepared statements kept per connection (0 for a pooler without protocol-level ones)."""


@dataclass(frozen=True)
class QdrantSettings:
    url: str
    """Server URL, or ':memory:' / 'path:DIR' for qdrant-client's local mode."""
    api_key: str
    """Sent as the api-key header; empty for an open server."""
    shard_number: int
    """Shards when the collection is created."""
    replication_factor: int
    """Replicas per shard when the collection is created."""
    write_consistency_factor: int
    """Replicas that must confirm each write."""


@dataclass(frozen=True)
class RetrievalSettings:
    server: ServerSettings
    """How the service listens."""
    collection: str
    """Collection (or table) holding every chunk."""
    embedder: str
    """Query embedder; must be the one that built the index."""
    query_encoder: str
    """How the local embedder runs queries: onnx (float), onnx-int8 or torch."""
    default_mode: str
    """dense, keyword or hybrid."""
    out_of_scope_threshold: float | None
    """Similarity under which evidence counts as too weak; None: the embedder's own."""
    rerank: bool
    """Whether searches that do not say are reranked."""
    rerank_candidates: int
    """Fused results the cross-encoder rescores."""
    rerank_out_of_scope: float
    """Best cross-encoder logit under which a reranked search is out of scope."""
    reranker: RerankerSettings
    """How the cross-encoder reads and runs."""
    models: ModelSources
    """Where the embedder's and the cross-encoder's models come from."""
    backend: str
    """edge, qdrant or pgvector (auto already resolved)."""
    qdrant: QdrantSettings
    """Where and how to reach a Qdrant server."""
    pgvector: PgVectorSettings
    """Where and how to reach the pgvector database."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RetrievalSettings:
        environ = os.environ if environ is None else environ
        return cls(
            server=ServerSettings.from_env("retrieval", environ),
            collection=COLLECTION.read(environ),
            embedder=EMBEDDER.read(environ),
            query_encoder=QUERY_ENCODER.read(environ),
            default_mode=SEARCH_MODE.read(environ),
            out_of_scope_threshold=OUT_OF_SCOPE_THRESHOLD.read(environ),
            rerank=RERANK.read(environ),
            rerank_candidates=RERANK_CANDIDATES.read(environ),
            rerank_out_of_scope=RERANK_OUT_OF_SCOPE.read(environ),
            reranker=RerankerSettings.from_env(environ),
            models=ModelSources.from_env(environ),
            backend=resolve_backend(INDEX_BACKEND.read(environ), QDRANT_URL.read(environ),
                                    PGVECTOR_URL.read(environ)),
            qdrant=QdrantSettings(
                url=QDRANT_URL.read(environ),
                api_key=QDRANT_API_KEY.read(environ),
                shard_number=QDRANT_SHARD_NUMBER.read(environ),
                replication_factor=QDRANT_REPLICATION_FACTOR.read(environ),
                write_consistency_factor=QDRANT_WRITE_CONSISTENCY_FACTOR.read(environ),
            ),
            pgvector=PgVectorSettings(
                url=PGVECTOR_URL.read(environ), ann=PGVECTOR_ANN.read(environ), keyword=PGVECTOR_KEYWORD.read(environ),
                statement_cache=STATEMENT_CACHE.read(environ),
            ),
        )


def resolve_backend(chosen: str, qdrant_url: str, pgvector_url: str) -> str:
    if chosen == "auto":
        return "qdrant" if qdrant_url else "edge"
    if chosen == "qdrant" and not qdrant_url:
        raise env.SettingsError("LECTERN_INDEX_BACKEND=qdrant needs QDRANT_URL")
    if chosen == "pgvector" and not pgvector_url:
        raise env.SettingsError("LECTERN_INDEX_BACKEND=pgvector needs LECTERN_PGVECTOR_URL")
    return chosen
