"""The FastAPI application: routes, error mapping, request ids, tracing, body limits."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from opentelemetry import trace
from opentelemetry.propagate import extract
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway import errors
from gateway.limits import RateLimiter
from gateway.metrics import GatewayMetrics
from gateway.routes import admin, chat, conversations, health, search, widget
from gateway.settings import GatewaySettings
from gateway.upstream import Upstream
from runtime.context import REQUEST_ID_HEADER, new_request_id, request_id

tracer = trace.get_tracer("lectern.gateway")

# Routes readers reach; admin, health and metrics are not rate-limited.
PUBLIC_PREFIXES = ("/v1/search", "/v1/chat", "/v1/conversations", "/v1/feedback")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def create_app(settings: GatewaySettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.upstream = Upstream.connect(settings)
        try:
            yield
        finally:
            await app.state.upstream.close()

    app = FastAPI(
        title="Lectern", version="1.0.0", lifespan=lifespan,
        description="Answers readers' questions from a Docusaurus book, with citations to the exact section.",
    )
    app.state.settings = settings
    app.state.metrics = metrics = GatewayMetrics()
    limiter = RateLimiter(settings.rate_per_minute, settings.rate_burst)
    errors.install(app)
    for module in (health, search, chat, conversations, admin, widget):
        app.include_router(module.router)

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.middleware("http")
    async def envelope(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        rid = request.headers.get(REQUEST_ID_HEADER) or new_request_id()
        rid = rid[:128]
        request_id.set(rid)
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > settings.max_body_bytes):
            response: Response = JSONResponse(
                errors.error_body("PAYLOAD_TOO_LARGE", f"bodies are limited to {settings.max_body_bytes} bytes"),
                413,
            )
        elif request.url.path.startswith(PUBLIC_PREFIXES) and (wait := limiter.take(_client(request))):
            metrics.rate_limited.inc()
            response = JSONResponse(
                errors.error_body("RESOURCE_EXHAUSTED", "too many requests from this client; slow down"), 429,
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        else:
            started = time.perf_counter()
            route = request.url.path
            with tracer.start_as_current_span(
                f"{request.method} {route}", context=extract(dict(request.headers)), kind=trace.SpanKind.SERVER,
                attributes={"http.request.method": request.method, "url.path": route, "lectern.request_id": rid},
            ) as span:
                response = await call_next(request)
                span.set_attribute("http.response.status_code", response.status_code)
            elapsed = time.perf_counter() - started
            # The route template, not the raw path: ids in paths would explode the label space.
            template = getattr(request.scope.get("route"), "path", "unmatched")
            metrics.requests.labels(template, request.method, str(response.status_code)).inc()
            metrics.latency.labels(template).observe(elapsed)
            response.headers["Server-Timing"] = f"app;dur={elapsed * 1000:.1f}"
        response.headers["X-Request-ID"] = rid
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    if settings.cors_origins:
        # Added last so it wraps everything: preflights are answered before limits and routes.
        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Content-Type", "Accept", "X-Conversation-Token", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"], max_age=600,
        )
    return app


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"
