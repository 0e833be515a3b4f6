"""The gateway's page previews: every citation of a book whose base URL points at the gateway
lands on a page with the cited section's anchor; nothing else is served or shadowed."""

from __future__ import annotations

import asyncio
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import grpc
import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from lectern.ingest.v1 import ingest_service_pb2 as ipb
from lectern.ingest.v1 import ingest_service_pb2_grpc as ipb_grpc
from lectern.retrieval.v1 import retrieval_service_pb2 as rpb
from lectern.retrieval.v1 import retrieval_service_pb2_grpc as rpb_grpc

from evaluation.stack import free_port
from gateway.app import create_app
from gateway.routes.preview import PageTable
from gateway.settings import GatewaySettings
from tests.conftest import ADMIN, Stack, ingest

pytestmark = pytest.mark.asyncio(loop_scope="session")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

ESCAPE_PAGE = """---
title: Escaping <script>alert(1)</script>
---

Intro with <script>alert("intro")</script>, <img src=x onerror="alert(2)"> and [a link](javascript:alert(3)).

## Section with <b>bold</b> & "quotes"

Text with `<script>alert(4)</script>` in code and a tag <iframe src="https://evil.example"></iframe>.
"""


class Ids(HTMLParser):
    """Every element id on a page, and the script tags' attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.scripts: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ids.extend(v for k, v in attrs if k == "id" and v is not None)
        if tag == "script":
            self.scripts.append(dict(attrs))


def parse(text: str) -> Ids:
    parser = Ids()
    parser.feed(text)
    return parser


@asynccontextmanager
async def serve(stack: Stack, *, rate_per_minute: int = 0, rate_burst: int = 30,
                ttl_seconds: float | None = None) -> AsyncIterator[tuple[str, FastAPI]]:
    port = free_port()
    settings = GatewaySettings("127.0.0.1", port, ADMIN, 64 * 1024, stack.peers, 30.0, "INFO", "",
                               rate_per_minute=rate_per_minute, rate_burst=rate_burst)
    app = create_app(settings)
    if ttl_seconds is not None:
        app.state.pages = PageTable(ttl_seconds=ttl_seconds)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        await task


async def stored_urls(stack: Stack, book: str) -> list[str]:
    """Every chunk URL the index holds for a book, read from retrieval directly."""
    async with grpc.aio.insecure_channel(stack.retrieval.address) as channel:
        retrieval = rpb_grpc.RetrievalServiceStub(channel)
        ids = [d.chunk_id for d in (await retrieval.ListChunks(rpb.ListChunksRequest(book=book))).chunks]
        chunks = (await retrieval.ReadChunks(rpb.ReadChunksRequest(book=book, chunk_ids=ids))).chunks
    assert len(chunks) == len(ids) > 0
    return [c.url for c in chunks]


async def test_every_citation_of_the_sample_book_lands(gateway: str, ingested: dict[str, object],
                                                       stack: Stack) -> None:
    urls = await stored_urls(stack, "default")
    pages: dict[str, set[str]] = {}
    for url in urls:
        parts = urlsplit(url)
        pages.setdefault(parts.path, set()).add(unquote(parts.fragment))
    assert "/docs/" in pages and "/docs/motion/pid-tuning" in pages  # the book's index shares /docs with nothing
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        for path, anchors in pages.items():
            reply = await client.get(path)
            assert reply.status_code == 200, (path, reply.text[:200])
            assert reply.headers["content-type"].startswith("text/html")
            assert "script-src 'self'" in reply.headers["content-security-policy"]
            page = parse(reply.text)
            missing = {a for a in anchors if a} - set(page.ids)
            assert not missing, (path, missing)
            assert len(page.ids) == len(set(page.ids)), path  # ids are unique on a page
            widget = [s for s in page.scripts if s.get("src") == "/widget.js"]
            assert widget and widget[0]["data-lectern-book"] == "default"
        pid = (await client.get("/docs/motion/pid-tuning")).text
    # Sections in the book's order, with their text.
    order = [pid.index(f'id="{a}"') for a in ("the-three-terms", "tuning-procedure", "integral-windup",
                                              "anti-windup-in-code")]
    assert order == sorted(order)
    assert "Kp = 0.8" in pid and "<title>PID speed control</title>" in pid


async def test_unknown_pages_api_paths_and_swagger(gateway: str, ingested: dict[str, object]) -> None:
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        unknown = await client.get("/docs/no-such-page")
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "NOT_FOUND"
        browser = await client.get("/docs/no-such-page", headers={"Accept": "text/html"})
        assert browser.status_code == 404 and "no indexed page" in browser.text
        assert "content-security-policy" in browser.headers
        # The API keeps its own answers for paths it owns.
        assert (await client.get("/v1/no-such-route")).json()["error"]["code"] == "NOT_FOUND"
        assert (await client.get("/v1/chat")).status_code == 405
        assert (await client.post("/docs/motion/pid-tuning")).status_code == 404
        assert (await client.get("/healthz")).headers["content-type"].startswith("application/json")
        assert (await client.get("/widget.js")).headers["content-type"].startswith("text/javascript")
        assert "<!doctype html>" in (await client.get("/")).text.lower()
        # Swagger UI moved out of the book's way.
        swagger = await client.get("/api/docs")
        assert swagger.status_code == 200 and "swagger" in swagger.text.lower()
        assert (await client.get("/openapi.json")).json()["info"]["title"] == "Lectern"
        # A trailing slash the stored route lacks (or the reverse) redirects to the stored one.
        moved = await client.get("/docs/motion/pid-tuning/")
        assert moved.status_code == 308 and moved.headers["location"] == "/docs/motion/pid-tuning"
        assert (await client.get("/docs")).headers.get("location") == "/docs/"


async def test_content_is_escaped_and_absolute_books_are_not_served(stack: Stack, home: Path) -> None:
    escape = home / "books" / "preview-escape"
    escape.mkdir(parents=True, exist_ok=True)
    (escape / "preview-escape.md").write_text(ESCAPE_PAGE)
    summary = await ingest(stack, escape, "preview-escape")
    assert summary.chunks_new + summary.chunks_unchanged >= 2
    deployed = home / "books" / "preview-deployed"
    deployed.mkdir(parents=True, exist_ok=True)
    (deployed / "deployed-only.md").write_text("# Deployed\n\nThis book lives on its own site.\n")
    async with grpc.aio.insecure_channel(stack.ingest.address) as ch:
        events = [e async for e in ipb_grpc.IngestServiceStub(ch).Ingest(ipb.IngestRequest(
            source_dir=str(deployed), book="preview-deployed", base_url="https://docs.example.com/docs/"))]
    assert events[-1].WhichOneof("event") == "summary"
    assert await stored_urls(stack, "preview-deployed") == ["https://docs.example.com/docs/deployed-only"]

    async with serve(stack, ttl_seconds=0) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        reply = await client.get("/docs/preview-escape")
        assert reply.status_code == 200, reply.text
        text = reply.text
        page = parse(text)
        assert [s.get("src") for s in page.scripts] == ["/widget.js"]  # the only script is the widget
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text  # the title, as text
        assert "&lt;script&gt;alert(4)&lt;/script&gt;" in text  # code, as text
        assert not re.search(r"<(img|iframe|b)\b", text)
        assert 'href="javascript' not in text and "onerror=" not in text.replace("onerror=&quot;", "")
        assert "section-with-bold--quotes" in page.ids
        # The deployed book's citations open its site: the gateway does not serve its routes.
        assert (await client.get("/docs/deployed-only")).status_code == 404


async def test_public_rate_limit_applies_to_previews(gateway: str, ingested: dict[str, object],
                                                     stack: Stack) -> None:
    async with serve(stack, rate_per_minute=1, rate_burst=2) as (url, app), \
            httpx.AsyncClient(base_url=url, timeout=30) as client:
        assert (await client.get("/docs/motion/pid-tuning")).status_code == 200
        assert (await client.get("/docs/no-such-page")).status_code == 404
        refused = await client.get("/docs/motion/pid-tuning")
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"]["code"] == "RESOURCE_EXHAUSTED"
        # One bucket per client for pages and the API alike.
        assert (await client.post("/v1/search", json={"query": "pid"})).status_code == 429
        assert (await client.get("/healthz")).status_code in (200, 503)  # not a public route: never limited
        assert app.state.pages.builds == 1


async def test_the_route_table_is_kept_for_its_ttl(gateway: str, ingested: dict[str, object],
                                                   stack: Stack) -> None:
    now = [0.0]
    table = PageTable(ttl_seconds=10, clock=lambda: now[0])
    async with grpc.aio.insecure_channel(stack.retrieval.address) as channel:
        retrieval = rpb_grpc.RetrievalServiceStub(channel)
        assert (await table.find(retrieval, "/docs/motion/pid-tuning")) is not None
        assert (await table.find(retrieval, "/docs/sensors/imu")) is not None
        assert await table.find(retrieval, "/docs/nothing") is None
        assert table.builds == 1
        now[0] = 10.5
        await asyncio.gather(*(table.find(retrieval, "/docs/sensors/imu") for _ in range(5)))
        assert table.builds == 2  # one build however many requests waited for it
        table.invalidate()
        await table.find(retrieval, "/docs/sensors/imu")
        assert table.builds == 3


async def test_read_chunks_validates(stack: Stack) -> None:
    async with grpc.aio.insecure_channel(stack.retrieval.address) as channel:
        retrieval = rpb_grpc.RetrievalServiceStub(channel)
        for request in (rpb.ReadChunksRequest(book="", chunk_ids=[]),
                        rpb.ReadChunksRequest(book="default", chunk_ids=["not-a-uuid"]),
                        rpb.ReadChunksRequest(book="default", chunk_ids=[str(uuid.UUID(int=0))] * 1001)):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await retrieval.ReadChunks(request)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        unknown = await retrieval.ReadChunks(rpb.ReadChunksRequest(
            book="default", chunk_ids=["00000000-0000-0000-0000-000000000000"]))
        assert list(unknown.chunks) == []


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)")
async def test_a_citation_clicked_in_the_demo_opens_its_section(gateway: str, ingested: dict[str, object]) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            tab = await (await browser.new_context(viewport={"width": 1100, "height": 700})).new_page()
            errors: list[str] = []
            tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            await tab.goto(gateway + "/")
            await tab.click(".fab")
            await tab.fill("#lectern-q", "How do I handle integral windup?")
            await tab.press("#lectern-q", "Enter")
            link = tab.locator(".msg.bot").last.locator(".sources a").first
            await link.wait_for(timeout=30_000)
            href = await link.get_attribute("href")
            assert href and href.startswith("/docs/") and "#" in href
            anchor = unquote(href.split("#", 1)[1])
            async with tab.expect_navigation():
                await link.click()
            assert urlsplit(tab.url).path == href.split("#")[0]
            section = tab.locator(f"[id='{anchor}']")
            assert await section.count() == 1
            # Scrolled to the section: at the top of the window, or as far as the page goes.
            await tab.wait_for_function(
                "id => { const r = document.getElementById(id).getBoundingClientRect();"
                " const end = window.scrollY + window.innerHeight >= document.documentElement.scrollHeight - 1;"
                " return window.scrollY > 0 && r.top >= -1 && r.top < window.innerHeight && (r.top <= 1 || end); }",
                arg=anchor)
            assert await tab.locator(".fab").count() == 1  # the widget is on the preview, under its CSP
            assert not [e for e in errors if "Content Security Policy" in e], errors
        finally:
            await browser.close()
