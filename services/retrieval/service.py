"""The retrieval service as the runtime starts it: its index and embedder, its servicer,
and the probe behind its health status."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import grpc
from lectern.retrieval.v1 import retrieval_service_pb2 as pb
from lectern.retrieval.v1 import retrieval_service_pb2_grpc as pb_grpc

from embedding.base import Embedder
from embedding.factory import make_embedder, make_reranker
from embedding.reranker import CrossEncoder
from runtime import postgres
from runtime.server import Guard, ServiceSpec
from runtime.settings import ServerSettings
from runtime.status import NETWORK
from services.retrieval.index.base import VectorIndex
from services.retrieval.index.factory import open_index
from services.retrieval.outlines import OutlineStore
from services.retrieval.scope import dense_scope
from services.retrieval.search import Mode, Reranking, Retriever
from services.retrieval.servicer import RetrievalServicer
from services.retrieval.settings import RetrievalSettings

RERANKER = "reranker"
SERVICE = pb.DESCRIPTOR.services_by_name["RetrievalService"]
SERVICE_NAME = SERVICE.full_name


@dataclass
class Resources:
    index: VectorIndex
    embedder: Embedder
    retriever: Retriever
    outlines: OutlineStore
    reranker: CrossEncoder


async def _ready(check: Awaitable[bool]) -> bool:
    """One dependency's probe; a probe that raises means not ready (the others still report)."""
    try:
        return await check
    except Exception:
        return False


def spec(settings: RetrievalSettings) -> ServiceSpec[Resources]:
    @asynccontextmanager
    async def open_(server: ServerSettings) -> AsyncIterator[Resources]:
        index = await open_index(settings, server.home)
        embedder = make_embedder(settings.embedder, sources=settings.models, home=server.home,
                                 query_encoder=settings.query_encoder)
        scope = dense_scope(embedder.spec.name, settings.out_of_scope_threshold)
        # Built whatever the default, since a request may still ask for reranking; nothing is
        # loaded until the first probe or search.
        reranker = make_reranker(settings.reranker, settings.models)
        retriever = Retriever(index, embedder, Mode(settings.default_mode), scope.floor, scope.named_term_ceiling,
                              Reranking(reranker, settings.rerank_candidates, settings.rerank,
                                        settings.rerank_out_of_scope))
        try:
            yield Resources(index, embedder, retriever, OutlineStore(server.home / "outlines"), reranker)
        finally:
            reranker.close()
            await embedder.close()
            await index.close()

    def register(server: grpc.aio.Server, res: Resources, guard: Guard) -> None:
        pb_grpc.add_RetrievalServiceServicer_to_server(
            guard.servicer(RetrievalServicer(res.index, res.retriever, res.outlines), SERVICE), server)

    async def probe(res: Resources) -> dict[str, bool]:
        # The reranker is optional: without it searches keep the fused order, degraded.
        return {"vector index": await _ready(res.index.ping()), "embedder": await _ready(res.embedder.ready()),
                RERANKER: await _ready(res.reranker.ready())}

    # The pgvector index is a Postgres database: losing it is an outage, not an internal error.
    unreachable = postgres.UNREACHABLE if settings.backend == "pgvector" else NETWORK
    return ServiceSpec(SERVICE_NAME, open_, register, probe, optional=frozenset({RERANKER}), unreachable=unreachable)
