"""Time to first token and total time of answers streamed through the gateway (SSE), each
simulated reader on one keep-alive connection (``bench.http.LeanHttp``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from bench.http import LeanHttp
from bench.load import percentile


async def one_answer(client: LeanHttp, question: str, book: str) -> tuple[float, float]:
    """(ms to the first token or done event, ms to the end of the stream)."""
    started = time.perf_counter()
    head = await client.post("/v1/chat", {"message": question, "book": book}, accept="text/event-stream")
    first = 0.0
    pending = b""
    finished = False
    async for chunk in client.chunks(head):
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


async def chat_load(url: str, questions: Sequence[str], book: str, users: int, per_user: int) -> dict[str, float]:
    ttft: list[float] = []
    total: list[float] = []

    async def user(u: int) -> None:
        client = await LeanHttp.connect(url)
        try:
            for i in range(per_user):
                first, whole = await one_answer(client, questions[(u * per_user + i) % len(questions)], book)
                ttft.append(first)
                total.append(whole)
        finally:
            client.close()

    await asyncio.gather(*(user(u) for u in range(users)))
    return {"users": users, "answers": len(ttft), "ttft_p50_ms": percentile(ttft, 50),
            "ttft_p95_ms": percentile(ttft, 95), "total_p50_ms": percentile(total, 50),
            "total_p95_ms": percentile(total, 95)}
