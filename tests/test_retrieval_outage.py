"""The index's store goes away under a running retrieval service (pgvector on an embedded
Postgres of its own, so other tests are untouched): searches fail UNAVAILABLE with a clear
message, health turns NOT_SERVING, and both recover when the store returns, with no restart."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2
from lectern.common.v1 import common_pb2
from lectern.retrieval.v1 import retrieval_service_pb2 as rpb
from lectern.retrieval.v1 import retrieval_service_pb2_grpc as rpb_grpc

from runtime.server import start_service
from services.retrieval.service import spec
from services.retrieval.settings import RetrievalSettings
from services.sessions.embedded_postgres import start_embedded
from tests.conftest import server_settings
from tests.test_runtime import wait_for_status

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def add_a_chunk(address: str) -> None:
    """An empty index answers without asking its store; one chunk makes every search ask."""
    chunk = common_pb2.Chunk(chunk_id="5f0c3a52-8d1e-4a57-9a43-1f2d3c4b5a60", book="book", file_path="pid.md",
                             heading_path=["PID", "Tuning"], section_depth=2, content="Tune the gain first.",
                             url="/docs/pid#tuning")
    async with grpc.aio.insecure_channel(address) as channel:
        await rpb_grpc.RetrievalServiceStub(channel).UpsertChunks(rpb.UpsertChunksRequest(
            book="book", embedder=common_pb2.EmbedderInfo(name="local:all-MiniLM-L6-v2", dimension=384),
            chunks=[common_pb2.EmbeddedChunk(chunk=chunk, vector=[1.0] + [0.0] * 383)]), timeout=20)


async def search(address: str) -> rpb.SearchResponse:
    async with grpc.aio.insecure_channel(address) as channel:
        request = rpb.SearchRequest(query="How do I tune the PID controller?", top_k=3,
                                    filter=common_pb2.SearchFilter(book="book"))
        reply: rpb.SearchResponse = await rpb_grpc.RetrievalServiceStub(channel).Search(request, timeout=20)
        return reply


async def test_search_is_unavailable_while_the_store_is_down_and_recovers_without_a_restart(
        home: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    database_home = tmp_path_factory.mktemp("pgvector-outage")
    database, url = start_embedded(database_home)
    settings = RetrievalSettings.from_env({"LECTERN_INDEX_BACKEND": "pgvector", "LECTERN_PGVECTOR_URL": url})
    settings = replace(settings, server=server_settings("retrieval", home))  # the shared model cache
    try:
        async with start_service(spec(settings), settings.server) as service:
            await wait_for_status(service.address, SERVING, 300)  # the first start may export the encoder
            await add_a_chunk(service.address)
            assert len((await search(service.address)).results) == 1

            database.cleanup()  # the database goes away
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await search(service.address)
            assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "unreachable" in (failed.value.details() or "")
            await wait_for_status(service.address, NOT_SERVING)

            database, _ = start_embedded(database_home)  # and comes back
            await wait_for_status(service.address, SERVING, 30)
            assert len((await search(service.address)).results) == 1
    finally:
        database.cleanup()
