"""Time to first token and total time of answers streamed through the gateway (SSE).

Each simulated reader holds one keep-alive HTTP/1.1 connection and reads the event stream with
asyncio streams. The load generator shares the machine's two cores with the stack; httpx spent
about 12 ms of CPU per streamed answer, a third of what the whole stack spends, which would be
measured as the stack's latency.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

from bench.load import percentile


class SseClient:
    """POSTs /v1/chat and reads the chunked event stream on one kept-alive connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, url: str) -> SseClient:
        parts = urlsplit(url)
        return cls(*await asyncio.open_connection(parts.hostname, parts.port))

    async def answer(self, question: str, book: str) -> tuple[float, float]:
        """(ms to the first token or done event, ms to the end of the stream)."""
        body = json.dumps({"message": question, "book": book}).encode()
        started = time.perf_counter()
        self.writer.write(b"POST /v1/chat HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                          b"Accept: text/event-stream\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if status != 200:
            raise RuntimeError(f"/v1/chat answered {status}")
        if b"transfer-encoding: chunked" not in head.lower():
            raise RuntimeError("expected a chunked event stream")
        first = 0.0
        pending = b""
        finished = False
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
            chunk = (await self.reader.readexactly(size + 2))[:-2]  # the chunk and its CRLF
            if size == 0:
                break
            if finished:
                continue
            pending += chunk
            while b"\n\n" in pending:
                event, pending = pending.split(b"\n\n", 1)
                name = next((line[6:].strip() for line in event.split(b"\n") if line.startswith(b"event:")), b"")
                if name in (b"token", b"done") and not first:
                    first = time.perf_counter() - started
                if name in (b"done", b"error"):
                    finished = True
        return first * 1000, (time.perf_counter() - started) * 1000

    def close(self) -> None:
        self.writer.close()


async def chat_load(url: str, questions: Sequence[str], book: str, users: int, per_user: int) -> dict[str, float]:
    ttft: list[float] = []
    total: list[float] = []

    async def user(u: int) -> None:
        client = await SseClient.connect(url)
        try:
            for i in range(per_user):
                first, whole = await client.answer(questions[(u * per_user + i) % len(questions)], book)
                ttft.append(first)
                total.append(whole)
        finally:
            client.close()

    await asyncio.gather(*(user(u) for u in range(users)))
    return {"users": users, "answers": len(ttft), "ttft_p50_ms": percentile(ttft, 50),
            "ttft_p95_ms": percentile(ttft, 95), "total_p50_ms": percentile(total, 50),
            "total_p95_ms": percentile(total, 95)}
