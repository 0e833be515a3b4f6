"""The ingest service as the runtime starts it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import grpc
from lectern.ingest.v1 import ingest_service_pb2 as pb
from lectern.ingest.v1 import ingest_service_pb2_grpc as pb_grpc

from embedding.base import Embedder
from embedding.factory import make_embedder
from runtime.channels import peer_channel
from runtime.server import Guard, ServiceSpec
from runtime.settings import ServerSettings
from services.ingest.index_client import RetrievalIndexClient
from services.ingest.push.servicer import PushingIngestServicer
from services.ingest.push.store import PushStore
from services.ingest.settings import IngestSettings
from services.ingest.sync import Ingestor

SERVICE = pb.DESCRIPTOR.services_by_name["IngestService"]


@dataclass
class Resources:
    ingestor: Ingestor
    embedder: Embedder
    pushes: PushStore


def spec(settings: IngestSettings) -> ServiceSpec[Resources]:
    @asynccontextmanager
    async def open_(server: ServerSettings) -> AsyncIterator[Resources]:
        # Ingest runs for minutes on a large book; its retrieval calls get the default
        # deadline each, not one deadline for the whole job.
        channel = peer_channel(server, "retrieval")
        embedder = make_embedder(settings.embedder, sources=settings.models, home=server.home)
        ingestor = Ingestor(RetrievalIndexClient(channel), embedder, settings.max_chunk_tokens)
        pushes = PushStore(server.home, settings.push, ingestor)
        await asyncio.to_thread(pushes.sweep)  # what a crash or lapsed pushes left under $LECTERN_HOME/pushes
        try:
            yield Resources(ingestor, embedder, pushes)
        finally:
            await pushes.close()
            await embedder.close()
            await channel.close()

    def register(server: grpc.aio.Server, res: Resources, guard: Guard) -> None:
        pb_grpc.add_IngestServiceServicer_to_server(
            guard.servicer(PushingIngestServicer(res.ingestor, settings.roots, res.pushes), SERVICE), server)

    async def probe(res: Resources) -> bool:
        return await res.embedder.ready()

    return ServiceSpec(SERVICE.full_name, open_, register, probe)
