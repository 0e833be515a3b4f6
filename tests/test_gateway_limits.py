"""Rate limits, CORS, metrics and bounded requests on gateways of their own (the shared one runs
unlimited)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
import pytest_asyncio
import uvicorn

from evaluation.stack import free_port
from gateway.app import create_app
from gateway.limits import RateLimiter
from gateway.server import uvicorn_config
from gateway.settings import GatewaySettings
from tests.conftest import Stack


def test_the_token_bucket_allows_a_burst_then_the_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=3, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == 1.0  # one token a second
    assert limiter.take("b") == 0.0  # clients are independent
    now[0] = 2.0
    assert limiter.take("a") == 0.0
    assert not RateLimiter(0, 1).take("a") and not RateLimiter(0, 1).enabled


@pytest_asyncio.fixture(loop_scope="session")
async def limited(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    settings = replace(GatewaySettings.from_env({}), peers=stack.peers, admin_token="t", rate_per_minute=60,
                       rate_burst=2, cors_origins=("https://docs.example.com",))
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
        yield client


async def test_public_routes_are_rate_limited_with_retry_after(limited: httpx.AsyncClient) -> None:
    replies = [await limited.post("/v1/search", json={"query": "pid"}) for _ in range(4)]
    assert [r.status_code for r in replies][:2] != [429, 429]
    last = replies[-1]
    assert last.status_code == 429 and last.json()["error"]["code"] == "RESOURCE_EXHAUSTED"
    assert int(last.headers["Retry-After"]) >= 1
    assert (await limited.get("/healthz")).status_code in (200, 503)  # never limited
    metrics = (await limited.get("/metrics")).text
    assert "lectern_rate_limited_total" in metrics and 'route="/v1/search"' in metrics


async def test_cors_only_for_configured_origins(limited: httpx.AsyncClient) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    ok = await limited.options("/v1/chat", headers={"Origin": "https://docs.example.com", **preflight})
    assert ok.headers.get("access-control-allow-origin") == "https://docs.example.com"
    other = await limited.options("/v1/chat", headers={"Origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in other.headers


# --- Bounded requests, on real uvicorn (the head's limits are the HTTP server's) -------------

READ_SECONDS = 1.0


@pytest_asyncio.fixture(loop_scope="session")
async def bounded(stack: Stack) -> AsyncIterator[tuple[str, int]]:
    settings = replace(GatewaySettings.from_env({}), port=free_port(), peers=stack.peers, rate_per_minute=0,
                       max_body_bytes=64 * 1024, max_header_bytes=8 * 1024, max_headers=50,
                       read_seconds=READ_SECONDS, idle_seconds=1)
    server = uvicorn.Server(uvicorn_config(create_app(settings), settings))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.02)
    yield settings.host, settings.port
    server.should_exit = True
    await task


async def _response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length body, as (status, headers, body)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if line)
    body = await reader.readexactly(int(headers["content-length"]))
    return int(lines[0].split()[1]), headers, body


async def _closed(reader: asyncio.StreamReader) -> bool:
    try:
        return await reader.read(1) == b""
    except ConnectionResetError:
        return True


async def test_a_chunked_body_over_the_limit_is_cut_as_it_arrives(bounded: tuple[str, int]) -> None:
    reader, writer = await asyncio.open_connection(*bounded)
    writer.write(b"POST /v1/search HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    answer = asyncio.create_task(_response(reader))
    chunk = b"x" * 16384
    sent = 0
    try:
        async with asyncio.timeout(30):
            with contextlib.suppress(ConnectionResetError, BrokenPipeError):  # closed on us: the point
                while not answer.done() and sent < 200 * 1024 * 1024:  # 200 MB, unless refused first
                    writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    await writer.drain()
                    sent += len(chunk)
            status, headers, body = await answer
    finally:
        writer.close()
    assert status == 413 and headers["connection"] == "close"
    assert json.loads(body)["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert sent < 8 * 1024 * 1024  # refused after about 64 KiB, not after reading 200 MB
    assert await _closed(reader)


async def test_a_declared_length_over_the_limit_is_refused_before_the_body(bounded: tuple[str, int]) -> None:
    reader, writer = await asyncio.open_connection(*bounded)
    writer.write(b"POST /v1/search HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 209715200\r\n\r\n")
    status, headers, _ = await asyncio.wait_for(_response(reader), 10)
    writer.close()
    assert status == 413 and headers["connection"] == "close"


@pytest.mark.parametrize("extra", [
    b"X-Big: " + b"a" * (1024 * 1024) + b"\r\n",  # a 1 MB header
    b"".join(b"X-H%d: v\r\n" % i for i in range(2000)),  # 2,000 headers
])
async def test_oversized_heads_get_431(bounded: tuple[str, int], extra: bytes) -> None:
    reader, writer = await asyncio.open_connection(*bounded)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: gw\r\n" + extra + b"\r\n")
    with contextlib.suppress(ConnectionResetError, BrokenPipeError):
        await writer.drain()
    status, headers, body = await asyncio.wait_for(_response(reader), 10)
    writer.close()
    assert status == 431 and headers["connection"] == "close"
    assert json.loads(body)["error"]["code"] == "HEADERS_TOO_LARGE"


@pytest.mark.parametrize("sent", [
    b"",  # connected, then silent
    b"POST /v1/search HTTP/1.1\r\nHost: gw\r\nContent-Ty",  # half a head
])
async def test_a_half_sent_head_is_answered_408_and_closed(bounded: tuple[str, int], sent: bytes) -> None:
    reader, writer = await asyncio.open_connection(*bounded)
    writer.write(sent)
    started = time.monotonic()
    status, headers, _ = await asyncio.wait_for(_response(reader), READ_SECONDS + 5)
    assert status == 408 and headers["connection"] == "close"
    assert await _closed(reader)
    assert time.monotonic() - started < READ_SECONDS + 2
    writer.close()


async def test_a_half_sent_body_is_answered_408_and_closed(bounded: tuple[str, int]) -> None:
    reader, writer = await asyncio.open_connection(*bounded)
    writer.write(b"POST /v1/search HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100\r\n\r\n{\"query\": ")
    started = time.monotonic()
    status, headers, body = await asyncio.wait_for(_response(reader), READ_SECONDS + 5)
    assert status == 408 and headers["connection"] == "close"
    assert json.loads(body)["error"]["code"] == "REQUEST_TIMEOUT"
    assert await _closed(reader)
    assert time.monotonic() - started < READ_SECONDS + 2
    writer.close()


async def test_an_idle_kept_alive_connection_is_closed(bounded: tuple[str, int]) -> None:
    reader, writer = await asyncio.open_connection(*bounded)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: gw\r\n\r\n")
    status, _, _ = await asyncio.wait_for(_response(reader), 10)
    assert status == 200
    assert await asyncio.wait_for(_closed(reader), 5)  # idle_seconds=1
    writer.close()


async def test_an_unusable_request_id_is_replaced(bounded: tuple[str, int]) -> None:
    host, port = bounded
    reader, writer = await asyncio.open_connection(host, port)
    body = b'{"query": "pid"}'
    writer.write(b"POST /v1/search HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
                 b"X-Request-ID: \xff\xfe<script>\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    status, headers, _ = await asyncio.wait_for(_response(reader), 30)
    writer.close()
    assert status == 200
    assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
        kept = await client.get("/metrics", headers={"X-Request-ID": "trace-42.a_b:c"})
        too_long = await client.get("/metrics", headers={"X-Request-ID": "a" * 129})
    assert kept.headers["x-request-id"] == "trace-42.a_b:c"
    assert too_long.headers["x-request-id"] != "a" * 129 and len(too_long.headers["x-request-id"]) == 32
