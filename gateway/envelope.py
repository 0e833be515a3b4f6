"""What wraps every HTTP request: request id, body limit, per-client rate limit, tracing,
metrics and the security headers.

Plain ASGI rather than Starlette's ``BaseHTTPMiddleware``: that one runs each request in an
extra task with in-memory streams, which cost about a millisecond per request and get in the
way of streamed (SSE) responses. Here headers are added as the response starts, so streams
pass through untouched.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from opentelemetry import trace
from opentelemetry.propagate import extract

from gateway import errors
from gateway.limits import RateLimiter
from gateway.metrics import GatewayMetrics
from runtime.context import REQUEST_ID_HEADER, new_request_id, request_id

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

tracer = trace.get_tracer("lectern.gateway")

# Routes readers reach; admin, health and metrics are not rate-limited.
PUBLIC_PREFIXES = ("/v1/search", "/v1/chat", "/v1/conversations", "/v1/feedback")

SECURITY_HEADERS = {
    b"x-content-type-options": b"nosniff",
    b"x-frame-options": b"DENY",
    b"referrer-policy": b"no-referrer",
    b"cross-origin-resource-policy": b"same-origin",
}
_REQUEST_ID = REQUEST_ID_HEADER.lower().encode()


class Envelope:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, limiter: RateLimiter, metrics: GatewayMetrics) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.limiter = limiter
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        rid = (headers.get(REQUEST_ID_HEADER.lower()) or new_request_id())[:128]
        request_id.set(rid)
        path: str = scope["path"]
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            await self._error(send, rid, 413, "PAYLOAD_TOO_LARGE",
                              f"bodies are limited to {self.max_body_bytes} bytes")
            return
        if path.startswith(PUBLIC_PREFIXES) and (wait := self.limiter.take(_client(scope))):
            self.metrics.rate_limited.inc()
            await self._error(send, rid, 429, "RESOURCE_EXHAUSTED", "too many requests from this client; slow down",
                              [(b"retry-after", str(max(1, math.ceil(wait))).encode())])
            return
        started = time.perf_counter()
        method: str = scope["method"]

        with tracer.start_as_current_span(
            f"{method} {path}", context=extract(headers), kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": path, "lectern.request_id": rid},
        ) as span:
            async def send_wrapped(message: Message) -> None:
                if message["type"] == "http.response.start":
                    elapsed = time.perf_counter() - started
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    # The route template, not the raw path: ids in paths would explode the label space.
                    template = getattr(scope.get("route"), "path", "unmatched")
                    self.metrics.requests.labels(template, method, str(status)).inc()
                    self.metrics.latency.labels(template).observe(elapsed)
                    timing = (b"server-timing", f"app;dur={elapsed * 1000:.1f}".encode())
                    message["headers"] = _with_envelope_headers(message.get("headers") or [], rid, [timing])
                await send(message)

            await self.app(scope, receive, send_wrapped)

    @staticmethod
    async def _error(send: Send, rid: str, status: int, code: str, message: str,
                     extra: list[tuple[bytes, bytes]] | None = None) -> None:
        body = json.dumps(errors.error_body(code, message)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   *(extra or [])]
        await send({"type": "http.response.start", "status": status,
                    "headers": _with_envelope_headers(headers, rid, [])})
        await send({"type": "http.response.body", "body": body})


def _with_envelope_headers(headers: Any, rid: str, extra: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    out = [(bytes(k), bytes(v)) for k, v in headers if bytes(k).lower() != _REQUEST_ID]
    present = {k.lower() for k, _ in out}
    out += [(k, v) for k, v in SECURITY_HEADERS.items() if k not in present]
    out += [(_REQUEST_ID, rid.encode("latin-1", "replace")), *extra]
    return out


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"
