"""Time to first token and total time of answers streamed through the gateway (SSE)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import httpx

from bench.load import percentile


async def one_answer(client: httpx.AsyncClient, question: str, book: str) -> tuple[float, float]:
    started = time.perf_counter()
    first = 0.0
    async with client.stream("POST", "/v1/chat", json={"message": question, "book": book},
                             headers={"Accept": "text/event-stream"}) as response:
        response.raise_for_status()
        event = ""
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in ("token", "done") and not first:
                first = time.perf_counter() - started
            if event in ("done", "error") and line.startswith("data:"):
                break
    return first * 1000, (time.perf_counter() - started) * 1000


async def chat_load(url: str, questions: Sequence[str], book: str, users: int, per_user: int) -> dict[str, float]:
    import asyncio

    ttft: list[float] = []
    total: list[float] = []

    async def user(u: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            for i in range(per_user):
                first, whole = await one_answer(client, questions[(u * per_user + i) % len(questions)], book)
                ttft.append(first)
                total.append(whole)

    await asyncio.gather(*(user(u) for u in range(users)))
    return {"users": users, "answers": len(ttft), "ttft_p50_ms": percentile(ttft, 50),
            "ttft_p95_ms": percentile(ttft, 95), "total_p50_ms": percentile(total, 50),
            "total_p95_ms": percentile(total, 95)}
