"""The MCP server at ``/mcp``: the book as tools and resources for AI assistants, over the
Model Context Protocol's streamable HTTP transport (the official ``mcp`` SDK).

- ``search_book`` finds sections (title, URL, text) through retrieval's Search, as ``/v1/search``;
- ``ask_book`` answers with citations through chat's Chat stream, as ``/v1/chat``;
- ``lectern://books/{book}/outline`` is a book's outline (``gateway.outline``), one resource
  listed per indexed book.

Arguments go through the REST API's own request models (``SearchBody``, ``ChatBody``), so the
bounds are the same and are declared there; their limits also appear in the tools' input
schemas. Anything a tool cannot do (bad arguments, a refused or failed upstream call) is a tool
error the model reads (``isError``), never a crash. The transport is stateless with JSON
replies: a request needs no server-side session, so any gateway replica can answer it and there
is no session table to fill. The envelope gives ``/mcp`` the public API's rate limit and body
limit; ``LECTERN_MCP_TOKEN`` optionally closes it behind a bearer token.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

import grpc
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from lectern.retrieval.v1 import retrieval_service_pb2 as rpb
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp_types import Resource, ToolAnnotations
from mcp_types.jsonrpc import INTERNAL_ERROR
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from starlette.datastructures import Headers, State
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.errors import error_body
from gateway.outline import Outline, OutlineCache
from gateway.routes.chat import chat_request
from gateway.routes.search import search_request
from gateway.schemas import ChatBody, SearchBody, Text
from gateway.settings import GatewaySettings
from gateway.upstream import Upstream
from runtime.status import from_rpc_error

PATH = "/mcp"
OUTLINE_URI = "lectern://books/{book}/outline"
INSTRUCTIONS = (
    "Tools over a book indexed by Lectern. Use search_book to find the sections that answer a question "
    "(each with its title, URL and text) and ask_book for a cited answer written from the book. Read a book's "
    "outline resource for its pages in order. Cite the URLs you were given."
)
M = TypeVar("M", bound=BaseModel)
_READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


def _bounds(model: type[BaseModel], name: str) -> list[Any]:
    """A request model field's constraints (lengths, ranges), for a tool's input schema."""
    return list(model.model_fields[name].metadata)


Query = Annotated[Text, *_bounds(SearchBody, "query"), Field(description="What to look for, in words.")]
Question = Annotated[Text, *_bounds(ChatBody, "message"), Field(description="The reader's question.")]
Book = Annotated[Text, *_bounds(SearchBody, "book"), Field(description="Book name, as ingested.")]
TopK = Annotated[int, *_bounds(SearchBody, "top_k"), Field(description="How many sections to return.")]
Version = Annotated[Text | None, Field(description="Docs version ('current', '1.0'); default: the served one.")]
Locale = Annotated[Text | None, Field(description="Locale ('en', 'fr'); default: the site's default locale.")]
_BOOK_NAME: TypeAdapter[str] = TypeAdapter(Book)


class Hit(BaseModel):
    title: str = Field(description="Page title.")
    section: list[str] = Field(description="Headings of the section under the page title.")
    url: str = Field(description="Deep link to the section.")
    text: str = Field(description="The section's text (Markdown).")
    score: float


class Sections(BaseModel):
    results: list[Hit]
    out_of_scope: bool = Field(description="True when the book's evidence is too weak to answer from.")


class Citation(BaseModel):
    n: int = Field(description="The [n] used in the answer.")
    title: str
    section: list[str]
    url: str


class Answer(BaseModel):
    answer: str = Field(description="The answer, citing sources as [n].")
    sources: list[Citation]
    grounded: bool = Field(description="True when every claim cites a source.")
    out_of_scope: bool = Field(description="True when the book has no answer and this is a refusal.")


def _validated(model: type[M], **fields: Any) -> M:
    try:
        return model(**fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ToolError(f"invalid arguments: {problems}") from None


def _upstream_failed(exc: grpc.aio.AioRpcError) -> ToolError:
    error = from_rpc_error(exc)
    return ToolError(f"{error.code}: {error.message}")


def outline_json(outline: Outline) -> str:
    return json.dumps({
        "book": outline.book, "title": outline.title, "summary": outline.summary, "revision": outline.revision,
        "pages": [{"title": p.title, "url": p.url, "file_path": p.file_path, "description": p.description,
                   "sections": [{"headings": list(s.path), "url": s.url} for s in p.sections if s.path]}
                  for p in outline.pages],
    }, ensure_ascii=False)


class LecternMCP(MCPServer[Any]):
    """The SDK's server, with one outline resource listed per indexed book (books come and go
    with ingests, so they are listed when asked rather than registered once)."""

    def __init__(self, state: State) -> None:
        super().__init__("lectern", title="Lectern", instructions=INSTRUCTIONS, version="1.0.0")
        self.state = state

    async def list_resources(self) -> list[Resource]:
        up: Upstream = self.state.upstream
        try:
            stats = await up.retrieval.Stats(rpb.StatsRequest())
        except grpc.aio.AioRpcError as exc:
            raise MCPError(INTERNAL_ERROR, str(_upstream_failed(exc))) from None
        return [*await super().list_resources(), *(
            Resource(uri=OUTLINE_URI.format(book=quote(b.book, safe="")), name=f"{b.book}-outline",
                     title=f"Outline of the book {b.book!r}", mime_type="application/json",
                     description="The book's pages in order, each with its sections and their URLs.")
            for b in sorted(stats.books, key=lambda b: b.book) if b.chunks)]


def build_server(state: State) -> LecternMCP:
    """The MCP server; ``state`` is the FastAPI app's, whose upstream and outline cache the
    tools use once the app has started."""
    server = LecternMCP(state)

    @server.tool(annotations=_READ_ONLY, description=(
        "Search the book for the sections that best match a query. Returns each section's page title, headings, "
        "URL and text, best first, and whether the book's evidence is too weak to answer from."))
    async def search_book(query: Query, book: Book = "default", version: Version = None, locale: Locale = None,
                          top_k: TopK = 5) -> Sections:
        body = _validated(SearchBody, query=query, book=book, top_k=top_k,
                          filters={"version": version, "locale": locale} if version or locale else None)
        up: Upstream = state.upstream
        try:
            reply = await up.retrieval.Search(search_request(body))
        except grpc.aio.AioRpcError as exc:
            raise _upstream_failed(exc) from None
        return Sections(results=[
            Hit(title=r.chunk.title or (r.chunk.heading_path[0] if r.chunk.heading_path else ""),
                section=list(r.chunk.heading_path[1:]), url=r.chunk.url, text=r.chunk.content,
                score=round(r.score, 6)) for r in reply.results],
            out_of_scope=reply.out_of_scope)

    @server.tool(annotations=_READ_ONLY, description=(
        "Ask the book a question. Returns an answer written only from the book, citing its sources as [n] with "
        "their URLs, or a refusal (out_of_scope) when the book does not cover it."))
    async def ask_book(question: Question, book: Book = "default", version: Version = None,
                       locale: Locale = None) -> Answer:
        body = _validated(ChatBody, message=question, book=book, version=version, locale=locale)
        up: Upstream = state.upstream
        call = up.chat.Chat(chat_request(body, None))
        sources: list[Citation] = []
        try:
            async for event in call:
                kind = event.WhichOneof("event")
                if kind == "sources":
                    sources = [Citation(n=s.n, title=s.heading_path[0] if s.heading_path else "",
                                        section=list(s.heading_path[1:]), url=s.url) for s in event.sources.sources]
                elif kind == "error":
                    raise ToolError(f"{event.error.code}: {event.error.message}")
                elif kind == "done":
                    d = event.done
                    return Answer(answer=d.answer, sources=sources, grounded=d.grounded, out_of_scope=d.out_of_scope)
        except grpc.aio.AioRpcError as exc:
            raise _upstream_failed(exc) from None
        finally:
            call.cancel()  # a no-op when finished; stops the answer when the client went away
        raise ToolError("UNAVAILABLE: the answer stream ended early; try again")

    @server.resource(OUTLINE_URI, name="book-outline", title="Book outline", mime_type="application/json",
                     description="A book's pages in order, each with its one-line description, sections and URLs.")
    async def book_outline(book: str) -> str:
        try:
            _BOOK_NAME.validate_python(book)
        except ValidationError:
            raise ResourceNotFoundError(f"no book can be named {book!r}") from None
        up: Upstream = state.upstream
        cache: OutlineCache = state.outlines
        try:
            outline = await cache.get(up.retrieval, book)
        except grpc.aio.AioRpcError as exc:
            raise ResourceError(str(_upstream_failed(exc))) from None
        if outline is None:
            raise ResourceNotFoundError(f"the book {book!r} has no indexed pages")
        return outline_json(outline)

    return server


class _Guard:
    """The bearer token (when set), checked in constant time, and browsers' origins: a page may
    call /mcp only from LECTERN_CORS_ORIGINS, which also stops DNS-rebinding pages."""

    def __init__(self, app: ASGIApp, token: str, origins: tuple[str, ...]) -> None:
        self.app = app
        self.token = token.encode()
        self.origins = set(origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        if self.token:
            given = headers.get("authorization", "")
            if not (given[:7].lower() == "bearer " and hmac.compare_digest(given[7:].strip().encode(), self.token)):
                message = "/mcp needs Authorization: Bearer <LECTERN_MCP_TOKEN>"
                reply = JSONResponse(error_body("UNAUTHENTICATED", message), 401,
                                     headers={"WWW-Authenticate": 'Bearer realm="lectern-mcp"'})
                await reply(scope, receive, send)
                return
        origin = headers.get("origin")
        if origin is not None and origin not in self.origins:
            reply = JSONResponse(error_body("PERMISSION_DENIED", f"origin {origin!r} may not call /mcp"), 403)
            await reply(scope, receive, send)
            return
        await self.app(scope, receive, send)


class McpEndpoint:
    """The MCP server as a route of the gateway, and the session manager its lifespan runs."""

    def __init__(self, settings: GatewaySettings, state: State) -> None:
        self.server = build_server(state)
        self.http = self.server.streamable_http_app(
            streamable_http_path=PATH, stateless_http=True, json_response=True,
            max_request_body_size=settings.max_body_bytes,
            # The Host check is for servers on loopback without auth; the gateway answers under any
            # name, and _Guard checks browsers' origins itself.
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self.asgi = _Guard(self.http, settings.mcp_token, settings.cors_origins)

    def install(self, app: FastAPI) -> None:
        app.router.routes.append(Route(PATH, self.asgi, include_in_schema=False))

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The SDK's session manager, which runs each request's server in its task group. It is
        held by a task of its own: an anyio task group must be left by the task that entered it,
        and an app's lifespan may be entered and left by different tasks (test fixtures do)."""
        ready, stop = asyncio.Event(), asyncio.Event()

        async def hold() -> None:
            async with self.server.session_manager.run():
                ready.set()
                await stop.wait()

        holder = asyncio.create_task(hold(), name="mcp-session-manager")
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait([holder, waiter], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if holder.done():
            holder.result()  # it failed to start: raise why
        try:
            yield
        finally:
            stop.set()
            await holder
