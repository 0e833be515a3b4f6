"""The sessions service as the runtime starts it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
from lectern.sessions.v1 import sessions_service_pb2 as pb
from lectern.sessions.v1 import sessions_service_pb2_grpc as pb_grpc

from runtime.server import ServiceSpec, guarded
from runtime.settings import ServerSettings
from services.sessions.database import open_pool
from services.sessions.retention import ensure_partitions, retention_loop
from services.sessions.servicer import SessionsServicer
from services.sessions.settings import SessionsSettings
from services.sessions.store import ConversationStore

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["SessionsService"].full_name


def spec(settings: SessionsSettings) -> ServiceSpec[ConversationStore]:
    @asynccontextmanager
    async def open_(server: ServerSettings) -> AsyncIterator[ConversationStore]:
        async with open_pool(settings.database_url, server.home, settings.pool_min, settings.pool_max,
                             settings.statement_timeout_ms, settings.statement_cache) as pool:
            store = ConversationStore(pool, redact=settings.redact)
            await ensure_partitions(pool, store.clock().date())
            job = asyncio.create_task(retention_loop(pool, settings.retention_days,
                                                     settings.retention_interval_seconds, store.clock))
            try:
                yield store
            finally:
                job.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await job

    def register(server: grpc.aio.Server, store: ConversationStore) -> None:
        pb_grpc.add_SessionsServiceServicer_to_server(
            guarded(SessionsServicer(store, settings.retention_days), SERVICE_NAME), server)

    async def probe(store: ConversationStore) -> bool:
        return await store.ping()

    return ServiceSpec(SERVICE_NAME, open_, register, probe)
