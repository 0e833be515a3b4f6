"""The MCP server at /mcp, driven by the official SDK's own client over streamable HTTP against
a real gateway on loopback and the real stack: tools, the outline resource, the token, the
public API's limits, and bad input as tool errors rather than crashes."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import httpx
import pytest
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_types import CallToolResult, TextContent, TextResourceContents

from evaluation.stack import free_port
from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.conftest import ADMIN, Stack

pytestmark = pytest.mark.asyncio(loop_scope="session")

GYRO = "How do I calibrate the gyroscope?"


@asynccontextmanager
async def serve(stack: Stack, **changes: Any) -> AsyncIterator[str]:
    """A gateway of its own, for settings the shared one does not have (a token, a rate limit)."""
    port = free_port()
    settings = replace(GatewaySettings("127.0.0.1", port, ADMIN, 64 * 1024, stack.peers, 30.0, "INFO", "",
                                       rate_per_minute=0), **changes)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None,
                                           access_log=False))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def connect(base: str, token: str | None = None) -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return Client(streamable_http_client(f"{base}/mcp", http_client=create_mcp_http_client(headers=headers)),
                  read_timeout_seconds=60)


def messages(exc: BaseException) -> list[str]:
    """The messages of an exception and of everything in its groups and causes."""
    found = [str(exc)]
    for inner in [*getattr(exc, "exceptions", ()), exc.__cause__, exc.__context__]:
        if inner is not None:
            found += messages(inner)
    return found


def text_of(result: CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, TextContent))


async def test_tools_are_listed_with_the_api_bounds(gateway: str, ingested: dict[str, object]) -> None:
    async with connect(gateway) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == {"search_book", "ask_book"}
    search = tools["search_book"].input_schema
    assert search["required"] == ["query"]
    assert search["properties"]["query"]["maxLength"] == 8192 and search["properties"]["query"]["minLength"] == 1
    assert search["properties"]["top_k"]["maximum"] == 50
    assert set(search["properties"]) == {"query", "book", "version", "locale", "top_k"}
    assert tools["ask_book"].input_schema["required"] == ["question"]
    assert tools["search_book"].annotations is not None and tools["search_book"].annotations.read_only_hint


async def test_search_book_returns_the_sections_v1_search_returns(gateway: str, ingested: dict[str, object]) -> None:
    async with connect(gateway) as client:
        result = await client.call_tool("search_book", {"query": GYRO, "top_k": 3})
    assert not result.is_error, text_of(result)
    found = result.structured_content
    assert found is not None and not found["out_of_scope"]
    hits = found["results"]
    assert len(hits) == 3
    assert hits[0]["title"] == "The inertial measurement unit"
    assert hits[0]["url"].startswith("/docs/sensors/imu#") and "gyroscope" in hits[0]["text"].lower()
    assert all(h["section"] == h["section"] and isinstance(h["section"], list) for h in hits)
    # The same sections, in the same order, as the REST API's search.
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as http:
        rest = (await http.post("/v1/search", json={"query": GYRO, "top_k": 3})).json()["results"]
    assert [h["url"] for h in hits] == [r["url"] for r in rest]
    assert [h["text"] for h in hits] == [r["content"] for r in rest]


async def test_ask_book_answers_with_citations(gateway: str, ingested: dict[str, object]) -> None:
    async with connect(gateway) as client:
        result = await client.call_tool("ask_book", {"question": GYRO})
        refused = await client.call_tool("ask_book", {"question": "What is the capital of Peru?"})
    assert not result.is_error, text_of(result)
    answer = result.structured_content
    assert answer is not None and answer["answer"] and not answer["out_of_scope"]
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", answer["answer"])}
    numbers = {s["n"] for s in answer["sources"]}
    assert cited and cited <= numbers
    assert any(s["url"].startswith("/docs/sensors/imu") for s in answer["sources"])
    assert not refused.is_error and refused.structured_content is not None
    refusal = refused.structured_content
    assert refusal["out_of_scope"] and not re.search(r"\[\d+\]", refusal["answer"])


async def test_outline_resource_lists_pages_in_order(gateway: str, ingested: dict[str, object]) -> None:
    async with connect(gateway) as client:
        listed = {str(r.uri): r for r in (await client.list_resources()).resources}
        templates = [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
        read = await client.read_resource("lectern://books/default/outline")
    assert "lectern://books/default/outline" in listed
    assert listed["lectern://books/default/outline"].mime_type == "application/json"
    assert templates == ["lectern://books/{book}/outline"]
    content = read.contents[0]
    assert isinstance(content, TextResourceContents)
    outline = json.loads(content.text)
    pages = outline["pages"]
    files = [p["file_path"] for p in pages]
    assert len(files) == len(set(files)) > 10
    assert files[0] == "intro.md" and outline["title"] == "Welcome to Build a Home Robot"
    assert "Rover" in outline["summary"]
    # Number prefixes order a folder (01-, 02-, 03-), whatever the names say.
    started = [f for f in files if f.startswith("getting-started/")]
    assert started == ["getting-started/01-parts-list.md", "getting-started/02-assembly.mdx",
                       "getting-started/03-first-boot.md"]
    # A folder's own page leads it.
    assert files.index("status-lights/README.md") < files.index("status-lights/buzzer.md")
    pid = next(p for p in pages if p["file_path"] == "motion/pid-tuning.md")
    assert pid["url"] == "/docs/motion/pid-tuning" and pid["description"]
    assert [s["headings"][-1] for s in pid["sections"]][:2] == ["The three terms", "Tuning procedure"]
    assert all(s["url"].startswith("/docs/motion/pid-tuning#") for s in pid["sections"])


async def test_bad_input_is_a_tool_error_not_a_crash(gateway: str, ingested: dict[str, object]) -> None:
    async with connect(gateway) as client:
        empty = await client.call_tool("search_book", {"query": ""})
        huge = await client.call_tool("search_book", {"query": "x" * 9000})
        top = await client.call_tool("search_book", {"query": GYRO, "top_k": 500})
        nul = await client.call_tool("search_book", {"query": "gyro\x00scope"})
        wrong_type = await client.call_tool("ask_book", {"question": ["not", "text"]})
        unknown = await client.call_tool("delete_book", {"book": "default"})
        missing_book = await client.call_tool("search_book", {"query": GYRO, "book": "no-such-book"})
        # After all that, the server still answers.
        fine = await client.call_tool("search_book", {"query": GYRO, "top_k": 1})
    for bad in (empty, huge, top, nul, wrong_type, unknown):
        assert bad.is_error, text_of(bad)
    assert "query" in text_of(empty) and "top_k" in text_of(top)
    assert "delete_book" in text_of(unknown)
    assert "NUL" in text_of(nul) or "stored" in text_of(nul)
    # A book the index does not hold is named as such, as its outline resource is (not an empty answer).
    assert missing_book.is_error and "no-such-book" in text_of(missing_book)
    assert "ingest it first" in text_of(missing_book)
    assert not fine.is_error and fine.structured_content is not None and len(fine.structured_content["results"]) == 1


async def test_unknown_book_outline_is_not_found(gateway: str, ingested: dict[str, object]) -> None:
    from mcp.shared.exceptions import MCPError

    async with connect(gateway) as client:
        with pytest.raises(MCPError, match="no indexed pages"):
            await client.read_resource("lectern://books/no-such-book/outline")
        assert (await client.call_tool("search_book", {"query": GYRO, "top_k": 1})).is_error is False


async def test_malformed_messages_get_a_4xx(gateway: str, ingested: dict[str, object]) -> None:
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as http:
        garbage = await http.post("/mcp", content=b"{not json", headers=headers)
        not_rpc = await http.post("/mcp", json={"hello": "world"}, headers=headers)
        too_big = await http.post("/mcp", content=b"[" + b" " * (70 * 1024) + b"]", headers=headers)
        foreign = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                  headers={**headers, "Origin": "https://evil.example"})
    assert 400 <= garbage.status_code < 500 and 400 <= not_rpc.status_code < 500, (garbage.text, not_rpc.text)
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "PERMISSION_DENIED"


async def test_token_is_required_when_set(stack: Stack, ingested: dict[str, object]) -> None:
    async with serve(stack, mcp_token="s3cret") as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            bare = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
            wrong = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                    headers={"Authorization": "Bearer nope"})
            api = await http.post("/v1/search", json={"query": GYRO, "top_k": 1})
        assert bare.status_code == wrong.status_code == 401
        assert bare.json()["error"]["code"] == "UNAUTHENTICATED" and "Bearer" in bare.headers["www-authenticate"]
        assert api.status_code == 200  # the token guards /mcp only
        # The SDK's client refuses to go on (it reports the 401 as an error response, in a group).
        with pytest.raises(BaseException) as refused:
            async with connect(base) as client:
                await client.list_tools()
        assert "Server returned an error response" in messages(refused.value)
        async with connect(base, "s3cret") as client:
            result = await client.call_tool("search_book", {"query": GYRO, "top_k": 1})
        assert not result.is_error and result.structured_content is not None
        assert result.structured_content["results"][0]["url"].startswith("/docs/sensors/imu")


async def test_mcp_shares_the_public_rate_limit(stack: Stack, ingested: dict[str, object]) -> None:
    async with serve(stack, rate_per_minute=60, rate_burst=3) as base:
        body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        headers = {"Accept": "application/json, text/event-stream"}
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            replies = [await http.post("/mcp", json=body, headers=headers) for _ in range(4)]
            search = await http.post("/v1/search", json={"query": GYRO})
    assert [r.status_code for r in replies[:3]] != [429] * 3
    assert replies[-1].status_code == 429 and int(replies[-1].headers["retry-after"]) >= 1
    assert search.status_code == 429  # one bucket per client across /mcp and the REST API


async def test_a_handshake_era_client_is_served(gateway: str, ingested: dict[str, object]) -> None:
    """Clients of the 2025 protocol (initialize, then calls with MCP-Protocol-Version), as plain JSON-RPC."""
    headers = {"Accept": "application/json, text/event-stream"}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "raw", "version": "0"}}}
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as http:
        hello = await http.post("/mcp", json=init, headers=headers)
        assert hello.status_code == 200, hello.text
        assert hello.json()["result"]["serverInfo"]["name"] == "lectern"
        version = {**headers, "MCP-Protocol-Version": hello.json()["result"]["protocolVersion"]}
        await http.post("/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=version)
        call = await http.post("/mcp", headers=version, json={
            "jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "search_book", "arguments": {"query": GYRO, "top_k": 2}}})
    assert call.status_code == 200 and call.headers["content-type"].startswith("application/json")
    result = call.json()["result"]
    assert not result["isError"] and len(result["structuredContent"]["results"]) == 2
