"""Load on the retrieval service's Search over gRPC, and the same load on a naive baseline:
qdrant-client local mode plus sentence-transformers `encode` per request, called the way
typical FastAPI + Qdrant chatbots call them (synchronously, on the request path)."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Sequence

import grpc
import numpy as np
from lectern.common.v1 import common_pb2
from lectern.retrieval.v1 import retrieval_service_pb2 as rpb
from lectern.retrieval.v1 import retrieval_service_pb2_grpc as rpb_grpc

from bench.load import LoadResult, run_load

# Suffixes for "unique" questions come from one counter for the whole bench: restarting at 0
# in each run repeated the previous run's texts, which the service's query-vector cache then
# answered (repeats and higher concurrencies were measured partly on cached vectors).
_SUFFIXES = itertools.count()


async def search_load(address: str, queries: Sequence[str], book: str, concurrency: int, seconds: float,
                      unique: bool = True, rerank: bool | None = None) -> LoadResult:
    """Each query is made unique (a suffix never used before in this process) so the
    query-vector cache (and the reranker's score cache) never helps; with ``unique=False`` the
    questions repeat, as readers' do, and come from the caches. ``rerank`` None leaves it to
    the service's default."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = rpb_grpc.RetrievalServiceStub(channel)
        flt = common_pb2.SearchFilter(book=book)

        async def call(i: int) -> None:
            text = queries[i % len(queries)] + (f" {next(_SUFFIXES)}" if unique else "")
            request = rpb.SearchRequest(query=text, top_k=5, filter=flt)
            if rerank is not None:
                request.rerank = rerank
            await stub.Search(request, timeout=30)

        await call(0)  # connect and warm up
        return await run_load(call, concurrency, seconds)


class NaiveBaseline:
    """What many RAG backends do: encode with sentence-transformers and query qdrant-client's
    local mode, both synchronously inside the request."""

    def __init__(self, points: int, dimension: int = 384) -> None:
        from qdrant_client import QdrantClient
        from qdrant_client import models as qm

        from embedding.local import _shared_model

        self.model = _shared_model()
        self.client = QdrantClient(location=":memory:")
        self.client.create_collection("baseline", vectors_config=qm.VectorParams(size=dimension,
                                                                                  distance=qm.Distance.COSINE))
        rng = np.random.default_rng(5)
        batch = 5000
        for start in range(0, points, batch):
            m = rng.standard_normal((min(batch, points - start), dimension)).astype(np.float32)
            self.client.upload_points("baseline", [
                qm.PointStruct(id=str(uuid.UUID(int=start + i + 1)), vector=row.tolist(),
                               payload={"book": "baseline", "content": "x"})
                for i, row in enumerate(m)
            ])

    def search(self, query: str) -> None:
        vector = self.model.encode(query, normalize_embeddings=True).tolist()
        self.client.query_points("baseline", query=vector, limit=5, with_payload=True)

    async def load(self, queries: Sequence[str], concurrency: int, seconds: float) -> LoadResult:
        async def call(i: int) -> None:
            self.search(queries[i % len(queries)] + f" {i}")
            await asyncio.sleep(0)  # blocking work as in the naive server; yield between calls

        return await run_load(call, concurrency, seconds)
