"""Honest health and errors: chat's health covers every dependency its calls need (retrieval and
sessions, each reported in /healthz), every 503 says when to retry, and no error message
carries an internal address."""

from __future__ import annotations

import asyncio
import re
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from gateway.app import create_app
from gateway.settings import GatewaySettings
from runtime import errors
from runtime.server import start_service
from runtime.status import NETWORK, scrub
from tests.conftest import ADMIN, Stack, server_settings

ADDRESS = re.compile(r"\d+\.\d+\.\d+\.\d+|ipv[46]:|localhost:\d|\[::")


def test_addresses_are_scrubbed_from_messages() -> None:
    grpc_message = ("failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:28054: "
                    "Failed to connect to remote host: Connection refused")
    assert scrub(grpc_message) == ("failed to connect to all addresses; last error: UNKNOWN: (address) "
                                   "Failed to connect to remote host: Connection refused")
    for message in ("Connect call failed ('10.0.3.7', 5432)", "ipv6:[::1]:50054 closed", "GOAWAY from [fe80::1]:80",
                    "Qdrant at http://qdrant.internal:6333/collections is unreachable", "db.example.com:5432 refused",
                    "localhost:8080 refused"):
        assert not ADDRESS.search(scrub(message)) and "5432" not in scrub(message), scrub(message)
    assert scrub("chunk 3 of guide/intro.md: 12 tokens") == "chunk 3 of guide/intro.md: 12 tokens"


def test_an_unreachable_datastore_is_named_not_located() -> None:
    class DriverDown(ConnectionError):
        pass

    declared = NETWORK.plus(DriverDown, dependency="the test store")
    assert declared.dependency(DriverDown("10.0.0.1:5432 refused")) == "the test store"
    assert declared.dependency(ConnectionRefusedError()) == "a dependency"  # any OSError
    assert declared.dependency(ValueError()) is None
    assert NETWORK.dependency(DriverDown()) == "a dependency"  # declaring made a new mapping


async def _wait_for(client: httpx.AsyncClient, ready: Any, seconds: float = 60) -> httpx.Response:
    async with asyncio.timeout(seconds):
        while True:
            reply = await client.get("/healthz")
            if ready(reply):
                return reply
            await asyncio.sleep(0.1)


async def test_healthz_shows_chats_sessions_dependency_down_with_retry_after(
        stack: Stack, home: Path, postgres_url: str) -> None:
    from services.chat.service import spec as chat_spec
    from services.chat.settings import ChatSettings
    from services.sessions.service import spec as sessions_spec
    from services.sessions.settings import SessionsSettings

    async with AsyncExitStack() as running:
        # A sessions and a chat of this test's own, so that stopping sessions leaves the shared stack alone.
        sessions_settings = SessionsSettings(server_settings("sessions", home), postgres_url, 1, 2, 5000)
        sessions_ctx = start_service(sessions_spec(sessions_settings), sessions_settings.server)
        sessions = await sessions_ctx.__aenter__()
        try:
            peers = {"retrieval": stack.retrieval.address, "sessions": sessions.address}
            chat_settings = replace(ChatSettings.from_env({}), server=server_settings("chat", home, peers))
            chat = await running.enter_async_context(start_service(chat_spec(chat_settings), chat_settings.server))
            settings = replace(GatewaySettings.from_env({}), admin_token=ADMIN, rate_per_minute=0,
                               peers={**stack.peers, "sessions": sessions.address, "chat": chat.address})
            app = create_app(settings)
            client = await running.enter_async_context(httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://gw", timeout=30))
            await running.enter_async_context(app.router.lifespan_context(app))

            healthy = await _wait_for(client, lambda r: r.status_code == 200)
            services = healthy.json()["services"]
            assert services["chat"] == {"status": "SERVING",
                                        "dependencies": {"retrieval": "SERVING", "sessions": "SERVING"}}
            assert services["sessions"] == {"status": "SERVING", "dependencies": {"postgres": "SERVING"}}
        finally:
            await sessions_ctx.__aexit__(None, None, None)

        down = await _wait_for(client, lambda r: r.json()["services"]["chat"]["dependencies"].get("sessions")
                               == "NOT_SERVING", seconds=15)
        body = down.json()
        assert down.status_code == 503 and int(down.headers["Retry-After"]) >= 1
        assert body["status"] == "degraded"
        assert body["services"]["sessions"]["status"] == "UNREACHABLE"
        assert body["services"]["chat"] == {"status": "NOT_SERVING",
                                            "dependencies": {"retrieval": "SERVING", "sessions": "NOT_SERVING"}}

        # Calls that need sessions fail as 503 naming it, with Retry-After and no address.
        read = await client.get("/v1/conversations/abc", headers={"X-Conversation-Token": "t"})
        rated = await client.post("/v1/feedback", json={"conversation_id": "abc", "message_id": "m", "rating": "up"},
                                  headers={"X-Conversation-Token": "t"})
        for reply in (read, rated):
            assert reply.status_code == 503, reply.text
            assert int(reply.headers["Retry-After"]) >= 1
            error = reply.json()["error"]
            assert error["code"] == "UNAVAILABLE"
            assert error["message"] == "sessions is unreachable; try again shortly", error
            assert not ADDRESS.search(reply.text), reply.text


async def test_every_503_carries_retry_after() -> None:
    # An upstream that is not there at all: the gateway's own 503 path, and the domain error's.
    settings = replace(GatewaySettings.from_env({}), rate_per_minute=0,
                       peers={n: "127.0.0.1:9" for n in ("retrieval", "sessions", "ingest", "chat")})
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gw", timeout=30) as client:
        health = await client.get("/healthz")
        search = await client.post("/v1/search", json={"query": "pid"})
    assert health.status_code == 503 and int(health.headers["Retry-After"]) >= 1
    assert search.status_code == 503 and int(search.headers["Retry-After"]) >= 1
    assert search.json()["error"]["message"] == "retrieval is unreachable; try again shortly"
    assert not ADDRESS.search(search.text) and not ADDRESS.search(health.text)
    assert errors.Unavailable.code == "UNAVAILABLE"


async def _models_server(delay: float) -> tuple[asyncio.Server, str, list[str]]:
    """A loopback HTTP server answering an OpenAI-compatible GET /models after ``delay`` seconds."""
    paths: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        paths.append(request.split()[1].decode())
        await asyncio.sleep(delay)
        body = b'{"object": "list", "data": [{"id": "m", "object": "model", "created": 0, "owned_by": "x"}]}'
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/v1", paths


async def test_llm_liveness_answers_times_out_and_caches() -> None:
    from services.chat.llm import liveness as lv
    from services.chat.llm.openai import OpenAIModel

    server, url, paths = await _models_server(0.0)
    model = OpenAIModel("m", url)
    try:
        check = lv.Liveness(model.ping)
        first, second = await asyncio.gather(check.check(), check.check())
        assert first == second == lv.LlmHealth(True) and paths == ["/v1/models"]  # one shared call
        assert await check.check() == lv.LlmHealth(True) and len(paths) == 1  # cached
    finally:
        await model.close()
        server.close()
    slow, slow_url, _ = await _models_server(lv.CHECK_SECONDS + 3)
    model = OpenAIModel("m", slow_url)
    try:
        started = asyncio.get_running_loop().time()
        health = await lv.Liveness(model.ping).check()
        assert health.answers is False and health.error  # bounded, never a hang
        assert asyncio.get_running_loop().time() - started < lv.CHECK_SECONDS + 1
    finally:
        await model.close()
        slow.close()
    gone = OpenAIModel("m", url)  # the first server is closed: nothing listens there now
    try:
        health = await lv.Liveness(gone.ping).check()
        assert health.answers is False and health.error == "APIConnectionError"
    finally:
        await gone.close()
    assert await lv.Liveness(None, unchecked=True).check() == lv.LlmHealth(None)
