"""The FastAPI application: routes, error mapping, request ids, tracing, body limits."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from opentelemetry import trace
from opentelemetry.propagate import extract

from gateway import errors
from gateway.routes import admin, chat, conversations, health, search
from gateway.settings import GatewaySettings
from gateway.upstream import Upstream
from runtime.context import REQUEST_ID_HEADER, new_request_id, request_id

tracer = trace.get_tracer("lectern.gateway")

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
    errors.install(app)
    for module in (health, search, chat, conversations, admin):
        app.include_router(module.router)

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
        else:
            started = time.perf_counter()
            route = request.url.path
            with tracer.start_as_current_span(
                f"{request.method} {route}", context=extract(dict(request.headers)), kind=trace.SpanKind.SERVER,
                attributes={"http.request.method": request.method, "url.path": route, "lectern.request_id": rid},
            ) as span:
                response = await call_next(request)
                span.set_attribute("http.response.status_code", response.status_code)
            response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        response.headers["X-Request-ID"] = rid
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return app
