"""The FastAPI application: routes, error mapping, and the envelope (request ids, tracing,
limits) around them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway import errors
from gateway.envelope import Envelope
from gateway.limits import RateLimiter
from gateway.mcp import McpEndpoint
from gateway.metrics import GatewayMetrics
from gateway.outline import OutlineCache
from gateway.routes import admin, chat, conversations, gaps, health, llms, preview, push, search, widget
from gateway.settings import GatewaySettings
from gateway.upstream import Upstream


def create_app(settings: GatewaySettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.upstream = Upstream.connect(settings)
        try:
            async with mcp.running():  # the MCP SDK's session manager, which serves /mcp
                yield
        finally:
            await app.state.upstream.close()

    app = FastAPI(
        title="Lectern", version="1.0.0", lifespan=lifespan,
        # One server span per request, the envelope's (it carries the request id); FastAPI's own
        # spans, metrics and logs would duplicate it and cost about a millisecond per request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        description="Answers readers' questions from a Docusaurus book, with citations to the exact section.",
        # Not FastAPI's /docs: that is where a Docusaurus book's pages live (its default route base
        # path), and the sample book's pages are previewed there (routes/preview.py).
        docs_url="/api/docs", redoc_url="/api/redoc",
    )
    app.state.settings = settings
    app.state.metrics = metrics = GatewayMetrics()
    app.state.limiter = limiter = RateLimiter(settings.rate_per_minute, settings.rate_burst)
    app.state.pages = preview.PageTable()
    app.state.outlines = OutlineCache()
    errors.install(app)
    for module in (health, search, chat, conversations, admin, gaps, push, widget, llms):
        app.include_router(module.router)
    mcp = McpEndpoint(settings, app.state)
    mcp.install(app)

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics", include_in_schema=False)
    async def prometheus() -> Response:
        await metrics.chat.refresh(app.state.upstream.chat)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # Last: it takes any GET no other route took (a book page's route).
    app.include_router(preview.router)

    app.add_middleware(Envelope, max_body_bytes=settings.max_body_bytes, limiter=limiter, metrics=metrics,
                       read_seconds=settings.read_seconds, upload_limit=push.upload_limit(settings.push))
    if settings.cors_origins:
        # Added last so it wraps everything: preflights are answered before limits and routes.
        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Content-Type", "Accept", "X-Conversation-Token", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"], max_age=600,
        )
    return app

