"""Long streams live: one keepalive policy for channels and servers, so a server stream that stays
quiet for several keepalive periods (an ingest while it embeds) is not cut by "too many pings".

The periods are shortened by configuration to 1 s; a stream then stays quiet for 5 of them. A
gRPC server with its default ping policy (at most one ping per 5 minutes without data, 2 strikes)
drops the same stream after about 3 s, which is what the control test shows.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import pytest

from runtime.channels import open_channel
from runtime.server import build_server
from runtime.settings import Keepalive, ServerSettings
from tests.conftest import server_settings

FAST = Keepalive(interval_seconds=1.0, timeout_seconds=1.0)
QUIET_SECONDS = 5.0  # five keepalive periods without a message


async def _quiet_stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
    yield b"started"
    await asyncio.sleep(QUIET_SECONDS)
    yield b"finished"


_HANDLER = grpc.method_handlers_generic_handler(
    "lectern.test.v1.Quiet", {"Stream": grpc.unary_stream_rpc_method_handler(_quiet_stream)})


async def _stream_through(server: grpc.aio.Server, port: int) -> tuple[list[bytes], float]:
    server.add_generic_rpc_handlers((_HANDLER,))
    await server.start()
    channel = open_channel(f"127.0.0.1:{port}", 30.0, name="quiet", keepalive=FAST)
    started = time.monotonic()
    try:
        return [m async for m in channel.unary_stream("/lectern.test.v1.Quiet/Stream")(b"")], started
    finally:
        await channel.close()
        await server.stop(0)


def test_the_policy_is_read_from_the_environment() -> None:
    settings = ServerSettings.from_env("ingest", {"LECTERN_KEEPALIVE_SECONDS": "1",
                                                  "LECTERN_KEEPALIVE_TIMEOUT_SECONDS": "2"})
    assert settings.keepalive == Keepalive(1.0, 2.0)
    assert ServerSettings.from_env("ingest", {}).keepalive == Keepalive(30.0, 10.0)


async def test_a_quiet_server_stream_outlives_several_keepalive_periods(tmp_path: Path) -> None:
    settings = replace(server_settings("ingest", tmp_path), keepalive=FAST)
    server, port = build_server(settings)
    messages, started = await _stream_through(server, port)
    assert messages == [b"started", b"finished"]
    assert time.monotonic() - started >= QUIET_SECONDS


async def test_a_server_with_grpcs_default_ping_policy_drops_the_same_stream() -> None:
    # The control: without the shared policy the clients' pings are abuse, GOAWAY too_many_pings.
    server = grpc.aio.server()
    port = server.add_insecure_port("127.0.0.1:0")
    with pytest.raises(grpc.aio.AioRpcError) as dropped:
        await _stream_through(server, port)
    assert dropped.value.code() == grpc.StatusCode.UNAVAILABLE
    # The failure names the peer the channel was opened for, never its address.
    assert dropped.value.details() == "quiet is unreachable; try again shortly"


async def test_a_real_ingest_stream_outlives_several_keepalive_periods(tmp_path: Path) -> None:
    """The case that failed in production: an ingest stream that is quiet while a batch of chunks
    is embedded. Retrieval and ingest run with 1 s keepalive on both ends; the book's sections are
    long enough that the stream goes quiet for several periods between events."""
    from lectern.ingest.v1 import ingest_service_pb2 as ipb
    from lectern.ingest.v1 import ingest_service_pb2_grpc as ipb_grpc

    from runtime.server import start_service
    from services.ingest.service import spec as ingest_spec
    from services.ingest.settings import IngestSettings
    from services.retrieval.service import spec as retrieval_spec
    from services.retrieval.settings import RetrievalSettings

    docs = tmp_path / "book" / "docs"
    docs.mkdir(parents=True)
    # One batch of 64 sections of about 150 tokens: several seconds of embedding with no event.
    paragraph = " ".join(f"The motor controller adjusts duty {n} while the encoder counts ticks." for n in range(10))
    sections = "\n\n".join(f"## Section {s}\n\n{paragraph}" for s in range(64))
    (docs / "page.md").write_text(f"# Page\n\n{sections}\n")
    home = tmp_path / "home"
    retrieval_settings = replace(RetrievalSettings.from_env({}),
                                 server=replace(server_settings("retrieval", home), keepalive=FAST))
    async with start_service(retrieval_spec(retrieval_settings), retrieval_settings.server) as retrieval:
        ingest_server = replace(server_settings("ingest", home, {"retrieval": retrieval.address}), keepalive=FAST)
        ingest_settings = IngestSettings(ingest_server, (tmp_path,), "local", 512)
        async with start_service(ingest_spec(ingest_settings), ingest_server) as ingest:
            channel = open_channel(ingest.address, 30.0, name="ingest", keepalive=FAST)
            try:
                stub = ipb_grpc.IngestServiceStub(channel)
                arrivals: list[float] = []
                events = []
                async for event in stub.Ingest(ipb.IngestRequest(source_dir=str(docs), book="long"), timeout=600):
                    arrivals.append(time.monotonic())
                    events.append(event)
            finally:
                await channel.close()
    assert events[-1].WhichOneof("event") == "summary"
    assert events[-1].summary.chunks_new == 64
    # The test proves something only if the stream was really quiet for more than two periods.
    longest_quiet = max(b - a for a, b in itertools.pairwise(arrivals))
    assert longest_quiet > 2 * FAST.interval_seconds, f"the stream was never quiet long enough ({longest_quiet:.2f}s)"
