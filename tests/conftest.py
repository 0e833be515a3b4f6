"""Shared fixtures: a temporary $LECTERN_HOME, the real embedded Postgres, and the four
services started in-process on free loopback ports (session-scoped: start-up is slow)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import pytest_asyncio
import uvicorn
from lectern.ingest.v1 import ingest_service_pb2 as ipb
from lectern.ingest.v1 import ingest_service_pb2_grpc as ipb_grpc
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from evaluation.stack import free_port
from runtime.server import RunningService, start_service
from runtime.settings import ServerSettings

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "examples" / "book" / "docs"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
ADMIN = "test-admin-token"


def server_settings(service: str, home: Path, peers: dict[str, str] | None = None) -> ServerSettings:
    return ServerSettings(
        service=service, host="127.0.0.1", port=0, home=home, grace_seconds=2.0, call_timeout_seconds=20.0,
        health_interval_seconds=0.2, log_level="INFO", otlp_endpoint="", event_loop="uvloop", peers=peers or {},
    )


@pytest.fixture(scope="session")
def spans() -> InMemorySpanExporter:
    """Tracing on for the whole session, before any service starts (tracing that is off puts no
    interceptors on servers and channels), with spans kept in memory for the tests to read."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from runtime import telemetry

    exporter = InMemorySpanExporter()
    telemetry.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture(scope="session")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lectern-home")


@pytest.fixture(scope="session")
def postgres_url(home: Path) -> Iterator[str]:
    from services.sessions.embedded_postgres import start_embedded

    server, url = start_embedded(home)
    yield url
    server.cleanup()


async def new_database(postgres_url: str) -> str:
    """A URL to a new, empty database on the embedded server, for tests whose counts or schema
    must not see the shared database's rows."""
    import uuid

    import asyncpg

    name = f"t{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return postgres_url.replace("/lectern?", f"/{name}?")


@dataclass
class Stack:
    retrieval: RunningService[Any]
    sessions: RunningService[Any]
    ingest: RunningService[Any]
    chat: RunningService[Any]

    @property
    def peers(self) -> dict[str, str]:
        return {n: getattr(self, n).address for n in ("retrieval", "sessions", "ingest", "chat")}


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def stack(home: Path, postgres_url: str, spans: InMemorySpanExporter) -> AsyncIterator[Stack]:
    from services.chat.service import spec as chat_spec
    from services.chat.settings import ChatSettings
    from services.ingest.service import spec as ingest_spec
    from services.ingest.settings import IngestSettings
    from services.retrieval.service import spec as retrieval_spec
    from services.retrieval.settings import RetrievalSettings
    from services.sessions.service import spec as sessions_spec
    from services.sessions.settings import SessionsSettings

    async with AsyncExitStack() as stack:
        # Defaults as a fresh machine has them; only the listening side is test-specific.
        retrieval_settings = replace(RetrievalSettings.from_env({}), server=server_settings("retrieval", home))
        retrieval = await stack.enter_async_context(start_service(retrieval_spec(retrieval_settings),
                                                                  retrieval_settings.server))
        sessions_settings = SessionsSettings(server_settings("sessions", home), postgres_url, 1, 5, 5000)
        sessions = await stack.enter_async_context(start_service(sessions_spec(sessions_settings),
                                                                 sessions_settings.server))
        peers = {"retrieval": retrieval.address, "sessions": sessions.address}
        (home / "books").mkdir(exist_ok=True)
        ingest_settings = IngestSettings(server_settings("ingest", home, peers), (ROOT, FIXTURES, home / "books"),
                                         "local", 512)
        ingest = await stack.enter_async_context(start_service(ingest_spec(ingest_settings),
                                                               ingest_settings.server))
        chat_settings = replace(ChatSettings.from_env({}), server=server_settings("chat", home, peers))
        chat = await stack.enter_async_context(start_service(chat_spec(chat_settings), chat_settings.server))
        yield Stack(retrieval, sessions, ingest, chat)


async def ingest(stack: Stack, source: Path, book: str, dry_run: bool = False) -> ipb.IngestSummary:
    async with grpc.aio.insecure_channel(stack.ingest.address) as ch:
        events = [e async for e in ipb_grpc.IngestServiceStub(ch).Ingest(
            ipb.IngestRequest(source_dir=str(source), book=book, dry_run=dry_run))]
    assert events[-1].WhichOneof("event") == "summary"
    assert all(e.WhichOneof("event") in ("progress", "embedding") for e in events[:-1])
    summary: ipb.IngestSummary = events[-1].summary
    return summary


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def sample_book(stack: Stack) -> ipb.IngestSummary:
    return await ingest(stack, BOOK, "sample")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def gateway(stack: Stack) -> AsyncIterator[str]:
    port = free_port()
    from gateway.app import create_app
    from gateway.settings import GatewaySettings

    settings = GatewaySettings("127.0.0.1", port, ADMIN, 64 * 1024, stack.peers, 30.0, "INFO", "", rate_per_minute=0)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None,
                                           access_log=False))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def ingested(gateway: str) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=gateway, timeout=120) as client:
        reply = await client.post("/v1/ingest", json={"source_dir": str(BOOK), "book": "default"},
                                  headers={"Authorization": f"Bearer {ADMIN}", "Accept": "application/json"})
    assert reply.status_code == 200, reply.text
    body: dict[str, object] = reply.json()
    return body
