"""What the HTTP gateway adds: the same search over HTTP and directly over gRPC."""

from __future__ import annotations

import httpx

from bench.load import LoadResult, run_load
from bench.retrieval import search_load


async def http_search_load(url: str, queries: list[str], book: str, concurrency: int, seconds: float
                           ) -> LoadResult:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        async def call(i: int) -> None:
            reply = await client.post("/v1/search", json={"query": queries[i % len(queries)], "top_k": 5,
                                                          "book": book})
            reply.raise_for_status()

        await call(0)
        return await run_load(call, concurrency, seconds)


async def overhead(url: str, address: str, queries: list[str], book: str, seconds: float) -> dict[str, float]:
    """Cached queries (no suffix) so the model's time does not drown the gateway's."""
    grpc_run = await search_load(address, queries, book, 1, seconds, unique=False)
    http_run = await http_search_load(url, queries, book, 1, seconds)
    return {"grpc_p50_ms": grpc_run.p50_ms, "http_p50_ms": http_run.p50_ms,
            "overhead_p50_ms": http_run.p50_ms - grpc_run.p50_ms}
