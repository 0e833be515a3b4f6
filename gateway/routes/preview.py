"""GET <a page's route>: a plain preview of an indexed page, so that citations land.

A book whose base URL is a path (``/docs/``, as ``make run`` ingests the sample book) has
citations like ``/docs/motion/pid-tuning#tuning-procedure`` that point at the gateway itself.
This route serves each such page from the index: its title, then its sections in order, each
with the stored anchor as its ``id``, the text rendered as Markdown without raw HTML, and the
widget so the reader can keep asking. Books ingested with an absolute base URL (a deployed site)
are never served here: their citations open that site.

Which route belongs to which page comes from a table built from retrieval (ListChunks, then one
chunk per file to learn the file's route) and kept for ``TABLE_TTL_SECONDS``; a page's sections
are read afresh on every request, and a section that has vanished makes the table be rebuilt at
once. So edited text shows at the next load, and a page or section added by an ingest within
the TTL.
"""

from __future__ import annotations

import asyncio
import html
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from lectern.common.v1 import common_pb2
from lectern.retrieval.v1 import retrieval_service_pb2 as rpb
from lectern.retrieval.v1 import retrieval_service_pb2_grpc as rpb_grpc
from markdown_it import MarkdownIt
from starlette.routing import Match
from starlette.types import Scope

from gateway import errors
from gateway.routes.deps import upstream
from runtime.errors import ResourceExhausted

# How long the route table is trusted before it is built again from the index.
TABLE_TTL_SECONDS = 10.0
# Ids per ReadChunks call (retrieval accepts up to 1000) and digests per ListChunks page (up to 10000).
READ_BATCH = 500
LIST_PAGE = 10_000
# Paths that are the API's, even when unknown: they keep their JSON 404 and 405, and a book whose
# routes fall under them is not previewed.
RESERVED_PREFIXES = ("/v1/", "/api/")
# Scripts only from the gateway (the widget), styles inline (the page's and the widget's shadow
# root), network only to the gateway; no frames, no plugins, no forms posting anywhere.
CSP = ("default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
# Raw HTML in a section is shown as text, never passed through; links keep markdown-it's scheme
# check (no javascript:), images are not fetched.
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).disable("image")
_STYLE = ("body{font:17px/1.6 Georgia,serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222}"
          "h1,h2,h3,h4{font-family:system-ui,sans-serif}code,pre{background:#f3f3f3}pre{padding:.6rem;overflow:auto}"
          ".note{font:14px system-ui,sans-serif;background:#eef6f1;padding:.6rem .8rem;border-radius:6px}")


@dataclass(frozen=True)
class PageRef:
    """A page of a book: its route (decoded, without anchor) and the ids of its chunks."""

    book: str
    path: str
    chunk_ids: tuple[str, ...]


def page_path(url: str) -> str | None:
    """The route of a chunk's URL when it points at this gateway (a path, no scheme or host),
    decoded as request paths are; None for an absolute URL."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return None
    return unquote(parts.path)


def _batched(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


async def _read(retrieval: rpb_grpc.RetrievalServiceStub, book: str, ids: Sequence[str]) -> list[common_pb2.Chunk]:
    chunks: list[common_pb2.Chunk] = []
    for batch in _batched(ids, READ_BATCH):
        chunks.extend((await retrieval.ReadChunks(rpb.ReadChunksRequest(book=book, chunk_ids=batch))).chunks)
    return chunks


async def _book_pages(retrieval: rpb_grpc.RetrievalServiceStub, book: str) -> dict[str, PageRef]:
    # One chunk tells whether the book links to the gateway at all (a base URL is the whole book's):
    # a book of a deployed site costs two tiny calls, not a listing.
    probe = await retrieval.ListChunks(rpb.ListChunksRequest(book=book, page_size=1))
    first = await _read(retrieval, book, [d.chunk_id for d in probe.chunks])
    if not first or page_path(first[0].url) is None:
        return {}
    files: dict[str, list[str]] = {}
    token = ""
    while True:
        listing = await retrieval.ListChunks(rpb.ListChunksRequest(book=book, page_size=LIST_PAGE, page_token=token))
        for digest in listing.chunks:
            files.setdefault(digest.file_path, []).append(digest.chunk_id)
        token = listing.next_page_token
        if not token:
            break
    # Every chunk of a file carries its page's route (plus its own anchor): one per file is enough,
    # unless the book has versions or locales, whose pages share their file's path.
    pages: dict[str, list[str]] = {}

    def add(url: str, ids: Sequence[str]) -> None:
        path = page_path(url)
        if path is not None and not path.startswith(RESERVED_PREFIXES):
            pages.setdefault(path, []).extend(ids)

    spread: list[str] = []
    for chunk in await _read(retrieval, book, [ids[0] for ids in files.values()]):
        if chunk.version or chunk.locale:
            spread.extend(files[chunk.file_path])
        else:
            add(chunk.url, files[chunk.file_path])
    for chunk in await _read(retrieval, book, spread):
        add(chunk.url, [chunk.chunk_id])
    return {path: PageRef(book, path, tuple(ids)) for path, ids in pages.items()}


class PageTable:
    """Routes of every book that links to the gateway, built from the index at most once per
    TTL (one build at a time, however many requests wait for it)."""

    def __init__(self, ttl_seconds: float = TABLE_TTL_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self._pages: dict[str, PageRef] = {}
        self._built_at: float | None = None
        self._lock = asyncio.Lock()
        self.builds = 0

    def _fresh(self) -> bool:
        return self._built_at is not None and self.clock() - self._built_at < self.ttl_seconds

    def invalidate(self) -> None:
        self._built_at = None

    async def find(self, retrieval: rpb_grpc.RetrievalServiceStub, path: str) -> PageRef | None:
        if not self._fresh():
            async with self._lock:
                if not self._fresh():
                    self._pages = await self._build(retrieval)
                    self._built_at = self.clock()
                    self.builds += 1
        return self._pages.get(path)

    @staticmethod
    async def _build(retrieval: rpb_grpc.RetrievalServiceStub) -> dict[str, PageRef]:
        stats = await retrieval.Stats(rpb.StatsRequest())
        pages: dict[str, PageRef] = {}
        for book in sorted(b.book for b in stats.books if b.chunks):
            for path, ref in (await _book_pages(retrieval, book)).items():
                pages.setdefault(path, ref)  # two books at one route: the first by name is served
        return pages


def render(book: str, chunks: Sequence[common_pb2.Chunk]) -> str:
    """The page as plain HTML: title, then each section under its heading, the section's
    element carrying the stored anchor as id. Every value is escaped."""
    ordered = sorted(chunks, key=lambda c: c.position)
    title = ordered[0].title if ordered else ""
    e = html.escape
    first = ordered[0] if ordered else common_pb2.Chunk()
    # Where Docusaurus puts a page's version and locale, so the widget asks in them here too.
    edition = "".join(f'<meta name="docusaurus_{name}" content="{e(value)}">\n'
                      for name, value in (("version", first.version), ("locale", first.locale)) if value)
    out = [f'<!doctype html>\n<html lang="{e(first.locale or "en")}">\n<head>\n<meta charset="utf-8">\n'
           f'<meta name="viewport" content="width=device-width, initial-scale=1">\n{edition}<title>{e(title)}</title>\n'
           f"<style>{_STYLE}</style>\n</head>\n<body>\n"
           f'<p class="note">A plain preview of this page, read from the Lectern index.</p>\n<article>\n'
           f"<h1>{e(title)}</h1>\n"]
    shown: list[str] = [title]  # the headings the reader is under: shown[i] is the level-(i + 1) heading
    ids: set[str] = set()
    previous = ""
    for chunk in ordered:
        anchor = unquote(urlsplit(chunk.url).fragment)
        path = list(chunk.heading_path) or [title]
        # A heading opens a section when it differs from the one the reader is under, or when its
        # anchor does (two sections with one title); a long section split in chunks opens none.
        opens = len(path) > 1 and (anchor != previous or shown[:len(path)] != path)
        previous = anchor
        for level in range(1, len(path)):
            if opens and (level >= len(shown) or shown[level] != path[level] or level == len(path) - 1):
                shown = [*shown[:level], path[level]]
                tag = f"h{min(level + 1, 6)}"
                if level < len(path) - 1:  # a parent with no section of its own (an H2 with only H3s)
                    out.append(f"<{tag}>{e(path[level])}</{tag}>\n")
                    continue
                attr = f' id="{e(anchor)}"' if anchor and anchor not in ids else ""
                ids.add(anchor)
                out.append(f"<section{attr}>\n<{tag}>{e(path[level])}</{tag}>\n")
        if not opens:
            out.append("<section>\n")
        out.append(_MARKDOWN.render(chunk.content))
        out.append("</section>\n")
    out.append(f'</article>\n<script src="/widget.js" data-lectern-url="" data-lectern-book="{e(book)}" defer>'
               "</script>\n</body>\n</html>\n")
    return "".join(out)


class PreviewRoute(APIRoute):
    """Matches GET and HEAD of any path outside the API's prefixes, and nothing else: registered
    last, it sees only paths no other route took, and other methods keep their 404 or 405."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope.get("method") not in ("GET", "HEAD") or str(scope.get("path", "")).startswith(RESERVED_PREFIXES):
            return Match.NONE, {}
        return super().matches(scope)


router = APIRouter(tags=["widget"], route_class=PreviewRoute)


def _not_found(request: Request, path: str) -> Response:
    message = f"no indexed page at {path}"
    if "text/html" in request.headers.get("accept", ""):
        return HTMLResponse(f"<!doctype html>\n<title>Not found</title>\n<p>{html.escape(message)}</p>\n", 404,
                            headers={"Content-Security-Policy": CSP})
    return JSONResponse(errors.error_body("NOT_FOUND", message), 404)


@router.api_route("/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def preview(request: Request, path: str) -> Response:
    state: Any = request.app.state
    client = request.client.host if request.client else "unknown"
    # Public like /v1/chat: the same per-client bucket, so page loads cannot be used to scan the index.
    if wait := state.limiter.take(client):
        state.metrics.rate_limited.inc()
        return errors.domain_error_response(
            ResourceExhausted("too many requests from this client; slow down", wait))
    retrieval = (await upstream(request)).retrieval
    table: PageTable = state.pages
    route = request.url.path
    page = await table.find(retrieval, route)
    if page is None:
        # Docusaurus serves a page with and without its trailing slash; send the reader to the stored one.
        other = route[:-1] if route.endswith("/") else route + "/"
        if other != "/" and await table.find(retrieval, other) is not None:
            return RedirectResponse(quote(other, safe="/"), 308)
        return _not_found(request, route)
    chunks = await _read(retrieval, page.book, page.chunk_ids)
    if len(chunks) < len(page.chunk_ids):
        # A section has gone since the table was built: the book changed. Read it again, once.
        table.invalidate()
        page = await table.find(retrieval, route)
        chunks = await _read(retrieval, page.book, page.chunk_ids) if page is not None else []
    if page is None or not chunks:
        return _not_found(request, route)
    return HTMLResponse(render(page.book, chunks),
                        headers={"Content-Security-Policy": CSP, "Cache-Control": "no-cache"})
