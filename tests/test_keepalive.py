"""Long streams live: one keepalive policy for channels and servers, so a server stream that stays
quiet for several keepalive periods (an ingest while it embeds) is not cut by "too many pings".

The periods are shortened by configuration to 1 s; a stream then stays quiet for 5 of them. A
gRPC server with its default ping policy (at most one ping per 5 minutes without data, 2 strikes)
drops the same stream after about 3 s, which is what the control test shows.
"""

from __future__ import annotations

import asyncio
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
