"""The sessions service as the runtime starts it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import grpc
from lectern.sessions.v1 import sessions_service_pb2 as pb
from lectern.sessions.v1 import sessions_service_pb2_grpc as pb_grpc

from runtime import postgres
from runtime.server import Guard, ServiceSpec, bounded
from runtime.settings import ServerSettings
from services.sessions.database import open_pool
from services.sessions.servicer import SessionsServicer
from services.sessions.settings import SessionsSettings
from services.sessions.store import ConversationStore

SERVICE = pb.DESCRIPTOR.services_by_name["SessionsService"]


@dataclass
class Resources:
    store: ConversationStore
    servicer: SessionsServicer
    """Built with the store, not at registration, so that its batches of turns are closed
    before the pool they write to."""


def spec(settings: SessionsSettings) -> ServiceSpec[Resources]:
    @asynccontextmanager
    async def open_(server: ServerSettings) -> AsyncIterator[Resources]:
        async with open_pool(settings.database_url, server.home, settings.pool_min, settings.pool_max,
                             settings.statement_timeout_ms, settings.statement_cache) as pool:
            store = ConversationStore(pool, redact=settings.redact)
            await store.ensure_partitions()
            job = asyncio.create_task(store.retention_loop(settings.retention_days,
                                                           settings.retention_interval_seconds))
            servicer = SessionsServicer(store, settings.retention_days)
            try:
                yield Resources(store, servicer)
            finally:
                await bounded(servicer.turns.close(), 5, "turn batches")
                job.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await job

    def register(server: grpc.aio.Server, res: Resources, guard: Guard) -> None:
        pb_grpc.add_SessionsServiceServicer_to_server(guard.servicer(res.servicer, SERVICE), server)

    async def probe(res: Resources) -> bool:
        return await res.store.ping()

    # Every call goes to Postgres: a database that is down or restarting is an outage.
    return ServiceSpec(SERVICE.full_name, open_, register, probe, unreachable=postgres.UNREACHABLE)
