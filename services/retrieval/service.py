"""The retrieval service as the runtime starts it: its index and embedder, its servicer,
and the probe behind its health status."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import grpc
from lectern.retrieval.v1 import retrieval_service_pb2 as pb
from lectern.retrieval.v1 import retrieval_service_pb2_grpc as pb_grpc

from embedding.base import Embedder
from embedding.factory import make_embedder
from runtime.server import ServiceSpec, guarded
from runtime.settings import ServerSettings
from services.retrieval.index.base import VectorIndex
from services.retrieval.index.factory import open_index
from services.retrieval.search import Mode, Retriever
from services.retrieval.servicer import RetrievalServicer
from services.retrieval.settings import RetrievalSettings

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["RetrievalService"].full_name


@dataclass
class Resources:
    index: VectorIndex
    embedder: Embedder
    retriever: Retriever


def spec(settings: RetrievalSettings) -> ServiceSpec[Resources]:
    @asynccontextmanager
    async def open_(server: ServerSettings) -> AsyncIterator[Resources]:
        index = await open_index(settings, server.home)
        embedder = make_embedder(settings.embedder, home=server.home, query_encoder=settings.query_encoder)
        retriever = Retriever(index, embedder, Mode(settings.default_mode), settings.out_of_scope_threshold)
        try:
            yield Resources(index, embedder, retriever)
        finally:
            await index.close()

    def register(server: grpc.aio.Server, res: Resources) -> None:
        pb_grpc.add_RetrievalServiceServicer_to_server(
            guarded(RetrievalServicer(res.index, res.retriever), SERVICE_NAME), server)

    async def probe(res: Resources) -> bool:
        return await res.index.ping() and await res.embedder.ready()

    return ServiceSpec(SERVICE_NAME, open_, register, probe)
