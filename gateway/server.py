"""The gateway's HTTP server: uvicorn, with limits on what a client may send before the app sees
a request.

uvicorn bounds neither the size of a request head nor how long it may take: a 1 MB header or
2,000 headers were accepted, and a connection that sent half a request line was held open
indefinitely. ``BoundedProtocol`` adds both to uvicorn's httptools protocol (the C parser it picks
by default): a head larger than ``max_header_bytes`` or with more than ``max_headers`` lines gets
431, one not complete within ``read_seconds`` (from the connection, or from the first byte of the
next request on a kept-alive one) gets 408, each as JSON with the connection closed. The body's
own limits are the envelope's (``gateway.envelope``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.errors import error_body
from gateway.settings import GatewaySettings
from runtime.context import REQUEST_ID_HEADER, new_request_id

_REASONS = {408: "Request Timeout", 431: "Request Header Fields Too Large"}


class _HeadRefused(Exception):
    """Stops the parser in a callback; uvicorn then calls ``send_400_response``."""


class BoundedProtocol(HttpToolsProtocol):
    limits: ClassVar[GatewaySettings]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0  # parsed request line and headers of the current head
        self._head_lines = 0
        self._raw_bytes = 0  # bytes received while a head is incomplete (httptools buffers them)
        self._refusal: tuple[int, str, str] | None = None

    # The head's clock: from the connection, and from the first byte of each later request.
    def _start_head(self) -> None:
        if self._head_timer is None:
            self._raw_bytes = 0
            self._head_timer = self.loop.call_later(self.limits.read_seconds, self._head_timed_out)

    def _stop_head(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        self._refuse(408, "REQUEST_TIMEOUT", f"the request did not arrive within {self.limits.read_seconds:g} s")

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._head_timer is not None and not self.transport.is_closing():
            self._raw_bytes += len(data)
            if self._raw_bytes > self.limits.max_header_bytes:  # a head still incomplete past the limit
                self._refuse(431, "HEADERS_TOO_LARGE", self._too_large())

    # Parser callbacks.
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = self._head_lines = 0
        self._start_head()

    def on_url(self, url: bytes) -> None:
        self._count(len(url), 0)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4, 1)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._stop_head()
        super().on_headers_complete()

    def _count(self, size: int, lines: int) -> None:
        self._head_bytes += size
        self._head_lines += lines
        if self._head_bytes > self.limits.max_header_bytes:
            self._refusal = (431, "HEADERS_TOO_LARGE", self._too_large())
            raise _HeadRefused
        if self._head_lines > self.limits.max_headers:
            self._refusal = (431, "HEADERS_TOO_LARGE", f"requests are limited to {self.limits.max_headers} headers")
            raise _HeadRefused

    def _too_large(self) -> str:
        return f"request heads are limited to {self.limits.max_header_bytes} bytes"

    def send_400_response(self, msg: str) -> None:
        if self._refusal is not None:
            self._refuse(*self._refusal)
        else:
            super().send_400_response(msg)

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Answers ``status`` as JSON and closes the connection, except mid-response (a pipelined
        request's head), where it is only closed."""
        self._stop_head()
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            body = json.dumps(error_body(code, message)).encode()
            head = (f"HTTP/1.1 {status} {_REASONS[status]}\r\ncontent-type: application/json\r\n"
                    f"content-length: {len(body)}\r\nconnection: close\r\n"
                    f"{REQUEST_ID_HEADER}: {new_request_id()}\r\n\r\n").encode()
            self.transport.write(head + body)
        self.transport.close()


def bounded_protocol(settings: GatewaySettings) -> type[BoundedProtocol]:
    """``BoundedProtocol`` with ``settings``' limits."""
    return type("Protocol", (BoundedProtocol,), {"limits": settings})


def uvicorn_config(app: Any, settings: GatewaySettings) -> uvicorn.Config:
    """How the gateway is served, limits included (``python -m gateway`` and the tests)."""
    return uvicorn.Config(
        app, host=settings.host, port=settings.port, log_config=None, access_log=False,
        timeout_graceful_shutdown=5, server_header=False, http=bounded_protocol(settings),
        timeout_keep_alive=settings.idle_seconds,
    )
