"""RetrievalService over gRPC: validate, call the domain, map the result."""

from __future__ import annotations

from typing import Any

from lectern.retrieval.v1 import retrieval_service_pb2 as pb
from lectern.retrieval.v1 import retrieval_service_pb2_grpc as pb_grpc

from embedding.base import EmbedderSpec
from runtime.errors import Violations
from services.retrieval.convert import (
    chunk_from_proto,
    chunk_to_proto,
    embedder_to_proto,
    filter_from_proto,
)
from services.retrieval.index.base import IndexRecord, VectorIndex
from services.retrieval.search import Mode, Retriever

MAX_QUERY_BYTES = 8 * 1024
MAX_TOP_K = 50
DEFAULT_TOP_K = 5
MODES = {pb.SEARCH_MODE_DENSE: Mode.DENSE, pb.SEARCH_MODE_KEYWORD: Mode.KEYWORD, pb.SEARCH_MODE_HYBRID: Mode.HYBRID}
MODE_TO_PB = {mode: value for value, mode in MODES.items()}


def _require_book(violations: Violations, book: str) -> None:
    if not book.strip():
        violations.add("book", "must not be empty")
    elif len(book) > 200:
        violations.add("book", "must be at most 200 characters")


class RetrievalServicer(pb_grpc.RetrievalServiceServicer):
    def __init__(self, index: VectorIndex, retriever: Retriever) -> None:
        self.index = index
        self.retriever = retriever

    async def UpsertChunks(self, request: pb.UpsertChunksRequest, context: Any) -> pb.UpsertChunksResponse:
        v = Violations()
        _require_book(v, request.book)
        if not request.embedder.name or request.embedder.dimension <= 0:
            v.add("embedder", "name and a positive dimension are required")
        for i, item in enumerate(request.chunks):
            if not item.chunk.chunk_id:
                v.add(f"chunks[{i}].chunk.chunk_id", "must not be empty")
            if item.chunk.book != request.book:
                v.add(f"chunks[{i}].chunk.book", "must equal the request's book")
            if len(item.vector) != request.embedder.dimension:
                v.add(f"chunks[{i}].vector", f"must have {request.embedder.dimension} values")
        v.raise_if_any()
        spec = EmbedderSpec(request.embedder.name, request.embedder.dimension, 0)
        records = [IndexRecord(chunk_from_proto(c.chunk), list(c.vector)) for c in request.chunks]
        return pb.UpsertChunksResponse(upserted=await self.index.upsert(spec, records))

    async def DeleteChunks(self, request: pb.DeleteChunksRequest, context: Any) -> pb.DeleteChunksResponse:
        v = Violations()
        _require_book(v, request.book)
        v.raise_if_any()
        return pb.DeleteChunksResponse(deleted=await self.index.delete(request.book, list(request.chunk_ids)))

    async def DeleteBook(self, request: pb.DeleteBookRequest, context: Any) -> pb.DeleteBookResponse:
        v = Violations()
        _require_book(v, request.book)
        v.raise_if_any()
        return pb.DeleteBookResponse(deleted=await self.index.delete_book(request.book))

    async def ListChunks(self, request: pb.ListChunksRequest, context: Any) -> pb.ListChunksResponse:
        v = Violations()
        _require_book(v, request.book)
        if not 0 <= request.page_size <= 10_000:
            v.add("page_size", "must be between 0 and 10000")
        v.raise_if_any()
        digests, token = await self.index.digests(request.book, request.page_token, request.page_size or 1000)
        return pb.ListChunksResponse(
            chunks=[pb.ChunkDigest(chunk_id=d.chunk_id, content_hash=d.content_hash, file_path=d.file_path)
                    for d in digests],
            next_page_token=token,
            embedder=embedder_to_proto(await self.index.embedder()),
        )

    async def Search(self, request: pb.SearchRequest, context: Any) -> pb.SearchResponse:
        v = Violations()
        if not request.query.strip():
            v.add("query", "must not be empty or whitespace")
        elif len(request.query.encode()) > MAX_QUERY_BYTES:
            v.add("query", f"must be at most {MAX_QUERY_BYTES} bytes")
        if not 0 <= request.top_k <= MAX_TOP_K:
            v.add("top_k", f"must be between 1 and {MAX_TOP_K}")
        if request.mode != pb.SEARCH_MODE_UNSPECIFIED and request.mode not in MODES:
            v.add("mode", "must be dense, keyword or hybrid")
        if not 0 <= request.filter.max_section_depth <= 6:
            v.add("filter.max_section_depth", "must be between 0 and 6")
        v.raise_if_any()
        outcome = await self.retriever.search(
            request.query.strip(), request.top_k or DEFAULT_TOP_K, MODES.get(request.mode),
            filter_from_proto(request.filter),
        )
        return pb.SearchResponse(
            results=[pb.SearchResult(chunk=chunk_to_proto(r.chunk), score=r.score,
                                     dense_similarity=r.dense_similarity) for r in outcome.results],
            out_of_scope=outcome.out_of_scope, degraded=outcome.degraded,
            degraded_reason=outcome.degraded_reason, mode=MODE_TO_PB[outcome.mode],
        )

    async def Stats(self, request: pb.StatsRequest, context: Any) -> pb.StatsResponse:
        stats = await self.index.stats()
        return pb.StatsResponse(
            books=[pb.BookStats(book=b, chunks=n) for b, n in sorted(stats.books.items())],
            embedder=embedder_to_proto(stats.embedder), backend=stats.backend, collection=stats.collection,
        )
