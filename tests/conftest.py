"""Shared fixtures: a temporary $LECTERN_HOME, the real embedded Postgres, and the four
services started in-process on free loopback ports (session-scoped: start-up is slow)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import httpx
import pytest
import pytest_asyncio
from lectern.ingest.v1 import ingest_service_pb2 as ipb
from lectern.ingest.v1 import ingest_service_pb2_grpc as ipb_grpc
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from evaluation import stack as builder
from runtime.settings import ServerSettings

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "examples" / "book" / "docs"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
ADMIN = "test-admin-token"
ENV = {"LECTERN_GRACE_SECONDS": "2", "LECTERN_CALL_TIMEOUT_SECONDS": "20", "LECTERN_HEALTH_INTERVAL_SECONDS": "0.2",
       "LECTERN_DB_POOL_MAX": "5"}
"""The services' environment in the tests: defaults as a fresh machine has them, except quicker
shutdowns and health checks, and fewer connections on the shared Postgres."""

Stack = builder.Services


def server_settings(service: str, home: Path, peers: dict[str, str] | None = None) -> ServerSettings:
    return builder.server_settings(service, home, ENV, peers)


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


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def stack(home: Path, postgres_url: str, spans: InMemorySpanExporter) -> AsyncIterator[Stack]:
    (home / "books").mkdir(exist_ok=True)
    async with builder.start_services(home, postgres_url, (ROOT, FIXTURES, home / "books"), ENV) as services:
        yield services


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
    async with builder.serve_gateway(builder.gateway_settings(stack.peers, ADMIN)) as url:
        yield url


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def ingested(gateway: str) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=gateway, timeout=120) as client:
        reply = await client.post("/v1/ingest", json={"source_dir": str(BOOK), "book": "default"},
                                  headers={"Authorization": f"Bearer {ADMIN}", "Accept": "application/json"})
    assert reply.status_code == 200, reply.text
    body: dict[str, object] = reply.json()
    return body
