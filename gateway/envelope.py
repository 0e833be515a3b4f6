"""What wraps every HTTP request: request id, body limit and deadline, per-client rate limit,
tracing, metrics, the security headers and ``Retry-After`` on every 429 and 503.

The body is counted as it arrives, so a chunked upload (no Content-Length) is cut at the limit
instead of being read whole first; the request head's own limits are the HTTP server's
(``gateway.server``).

Plain ASGI rather than Starlette's ``BaseHTTPMiddleware``: that one runs each request in an
extra task with in-memory streams, which cost about a millisecond per request and get in the
way of streamed (SSE) responses. Here headers are added as the response starts, so streams
pass through untouched.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from opentelemetry import trace
from opentelemetry.propagate import extract
from starlette.exceptions import HTTPException

from gateway import errors
from gateway.limits import RateLimiter
from gateway.metrics import GatewayMetrics
from runtime.context import REQUEST_ID_HEADER, accepted_request_id, request_id

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

tracer = trace.get_tracer("lectern.gateway")

# Routes readers reach; admin, health and metrics are not rate-limited.
PUBLIC_PREFIXES = ("/v1/search", "/v1/chat", "/v1/conversations", "/v1/feedback", "/mcp", "/llms", "/books/")

SECURITY_HEADERS = {
    b"x-content-type-options": b"nosniff",
    b"x-frame-options": b"DENY",
    b"referrer-policy": b"no-referrer",
    b"cross-origin-resource-policy": b"same-origin",
}
_REQUEST_ID = REQUEST_ID_HEADER.lower().encode()
_RETRY_AFTER = b"retry-after"
# The rest of a refused body is never read: the connection is closed after the answer.
_CLOSE = {"Connection": "close"}


class BodyRefused(HTTPException):
    """A request body over the limit or too slow. An HTTPException because FastAPI lets those
    out of its body parsing as they are (anything else there becomes a 400)."""


class Envelope:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, limiter: RateLimiter, metrics: GatewayMetrics,
                 read_seconds: float = 10.0, upload_limit: Callable[[str, str], int | None] | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # Uploads (method, path) -> their own size limit; their body may take as long as it keeps
        # arriving: read_seconds bounds each wait for the next part, not the whole body.
        self.upload_limit = upload_limit or (lambda method, path: None)
        self.read_seconds = read_seconds
        self.limiter = limiter
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        rid = accepted_request_id(headers.get(REQUEST_ID_HEADER.lower()))
        request_id.set(rid)
        path: str = scope["path"]
        upload_limit = self.upload_limit(scope["method"], path)
        max_body_bytes = self.max_body_bytes if upload_limit is None else upload_limit
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_body_bytes):
            await self._error(send, rid, 413, "PAYLOAD_TOO_LARGE",
                              f"bodies are limited to {max_body_bytes} bytes", [(b"connection", b"close")])
            return
        if path.startswith(PUBLIC_PREFIXES) and (wait := self.limiter.take(_client(scope))):
            self.metrics.rate_limited.inc()
            await self._error(send, rid, 429, "RESOURCE_EXHAUSTED", "too many requests from this client; slow down",
                              [(b"retry-after", str(max(1, math.ceil(wait))).encode())])
            return
        started = time.perf_counter()
        method: str = scope["method"]
        response_started = False
        body_bytes = 0
        body_done = False
        body_deadline = asyncio.get_running_loop().time() + self.read_seconds

        async def receive_bounded() -> Message:
            """The body as it arrives, cut at the size limit and at the read deadline; once it is
            complete, receive as is (a stream waits on it for the client's disconnect)."""
            nonlocal body_bytes, body_done, body_deadline
            if body_done:
                return await receive()
            try:
                async with asyncio.timeout_at(body_deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyRefused(408, f"the request body did not arrive within {self.read_seconds:g} s",
                                  _CLOSE) from None
            if message["type"] == "http.request":
                body_bytes += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if body_bytes > max_body_bytes:
                    raise BodyRefused(413, f"bodies are limited to {max_body_bytes} bytes", _CLOSE)
                if upload_limit is not None:
                    body_deadline = asyncio.get_running_loop().time() + self.read_seconds
            else:
                body_done = True
            return message

        with tracer.start_as_current_span(
            f"{method} {path}", context=extract(headers), kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": path, "lectern.request_id": rid},
        ) as span:
            async def send_wrapped(message: Message) -> None:
                nonlocal response_started
                if message["type"] == "http.response.start":
                    response_started = True
                    elapsed = time.perf_counter() - started
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    # The route template, not the raw path: ids in paths would explode the label space.
                    template = getattr(scope.get("route"), "path", "unmatched")
                    self.metrics.requests.labels(template, method, str(status)).inc()
                    self.metrics.latency.labels(template).observe(elapsed)
                    extra = [(b"server-timing", f"app;dur={elapsed * 1000:.1f}".encode())]
                    given = message.get("headers") or []
                    if status in errors.RETRY_STATUSES and not any(bytes(k).lower() == _RETRY_AFTER for k, _ in given):
                        extra.append((_RETRY_AFTER, str(errors.UNAVAILABLE_RETRY_AFTER_SECONDS).encode()))
                    message["headers"] = _with_envelope_headers(given, rid, extra)
                await send(message)

            try:
                await self.app(scope, receive_bounded, send_wrapped)
            except BodyRefused as exc:  # raised where no handler turned it into a response
                if response_started:
                    raise
                code = "PAYLOAD_TOO_LARGE" if exc.status_code == 413 else "REQUEST_TIMEOUT"
                await self._error(send, rid, exc.status_code, code, exc.detail, [(b"connection", b"close")])

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
