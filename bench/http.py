"""A lean keep-alive HTTP/1.1 client on asyncio streams, for load generators.

The load generator shares the machine's cores with the stack. httpx spends milliseconds of CPU
per request, a large share of what the whole stack spends on a streamed chat answer, which a
latency figure would charge to the stack; this client costs about what grpc.aio's C core costs
on the gRPC side.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit


class LeanHttp:
    """One kept-alive connection; requests on it go one at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, url: str) -> LeanHttp:
        parts = urlsplit(url)
        return cls(*await asyncio.open_connection(parts.hostname, parts.port))

    async def post(self, path: str, body: Any, accept: str = "application/json") -> bytes:
        """Sends a JSON POST; returns the response head once it is 200 (the body is left to read)."""
        data = json.dumps(body).encode()
        self.writer.write(b"POST %s HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nAccept: %s\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (path.encode(), accept.encode(), len(data), data))
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if status != 200:
            raise RuntimeError(f"{path} answered {status}")
        return head

    async def body(self, head: bytes) -> bytes:
        length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        return await self.reader.readexactly(length)

    async def chunks(self, head: bytes) -> AsyncIterator[bytes]:
        """The chunks of a chunked body (a stream), as they arrive."""
        if b"transfer-encoding: chunked" not in head.lower():
            raise RuntimeError("expected a chunked stream")
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
            chunk = (await self.reader.readexactly(size + 2))[:-2]  # the chunk and its CRLF
            if size == 0:
                return
            yield chunk

    def close(self) -> None:
        self.writer.close()
