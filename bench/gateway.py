"""What the HTTP gateway adds: the same search over HTTP and directly over gRPC.

Two HTTP clients: httpx, as most Python callers use it, and ``bench.http.LeanHttp``, which costs
about what grpc.aio's C core costs on the gRPC side, so the difference is what the gateway adds
rather than what the client library spends.
"""

from __future__ import annotations

import httpx

from bench.http import LeanHttp
from bench.load import LoadResult, run_load
from bench.retrieval import search_load


async def http_search_load(url: str, queries: list[str], book: str, concurrency: int, seconds: float
                           ) -> LoadResult:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        async def call(i: int) -> None:
            reply = await client.post("/v1/search", json={"query": queries[i % len(queries)], "top_k": 5,
                                                          "book": book, "rerank": False})
            reply.raise_for_status()

        await call(0)
        return await run_load(call, concurrency, seconds)


async def lean_search_load(url: str, queries: list[str], book: str, seconds: float) -> LoadResult:
    """One client on one keep-alive connection."""
    client = await LeanHttp.connect(url)

    async def call(i: int) -> None:
        head = await client.post("/v1/search", {"query": queries[i % len(queries)], "top_k": 5, "book": book,
                                                "rerank": False})
        await client.body(head)

    try:
        await call(0)
        return await run_load(call, 1, seconds)
    finally:
        client.close()


async def overhead(url: str, address: str, queries: list[str], book: str, seconds: float) -> dict[str, float]:
    """Cached queries (no suffix) and no reranking, so the models' time does not drown the gateway's."""
    grpc_run = await search_load(address, queries, book, 1, seconds, unique=False, rerank=False)
    http_run = await http_search_load(url, queries, book, 1, seconds)
    lean_run = await lean_search_load(url, queries, book, seconds)
    return {"grpc_p50_ms": grpc_run.p50_ms, "http_p50_ms": http_run.p50_ms,
            "overhead_p50_ms": http_run.p50_ms - grpc_run.p50_ms,
            "lean_http_p50_ms": lean_run.p50_ms, "lean_overhead_p50_ms": lean_run.p50_ms - grpc_run.p50_ms}
