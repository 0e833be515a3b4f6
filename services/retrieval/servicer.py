"""RetrievalService over gRPC: validate, call the domain, map the result."""

from __future__ import annotations

import uuid
from typing import Any

from lectern.common.v1 import common_pb2
from lectern.retrieval.v1 import retrieval_service_pb2 as pb
from lectern.retrieval.v1 import retrieval_service_pb2_grpc as pb_grpc

from embedding.base import EmbedderSpec
from embedding.models import ModelUnavailable
from records.proto import chunk_from_proto, chunk_to_proto, outline_from_proto, outline_to_proto
from runtime import limits
from runtime.errors import FailedPrecondition, Unavailable, Violations
from runtime.text import check_storable
from services.retrieval.convert import embedder_to_proto, filter_from_proto
from services.retrieval.index.base import IndexRecord, VectorIndex
from services.retrieval.outlines import OutlineStore
from services.retrieval.search import Mode, Retriever

DEFAULT_TOP_K = 5
MAX_READ_CHUNKS = 1000  # ReadChunks ids per call: one page's sections, or a batch of pages
MAX_EMBED_QUERIES = 5000  # EmbedQueries per call: a gap report's questions
MODES = {pb.SEARCH_MODE_DENSE: Mode.DENSE, pb.SEARCH_MODE_KEYWORD: Mode.KEYWORD, pb.SEARCH_MODE_HYBRID: Mode.HYBRID}
MODE_TO_PB = {mode: value for value, mode in MODES.items()}


def _require_book(violations: Violations, book: str) -> None:
    if not book.strip():
        violations.add("book", "must not be empty")
    elif len(book) > limits.BOOK_CHARS:
        violations.add("book", f"must be at most {limits.BOOK_CHARS} characters")
    check_storable(violations, "book", book)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _check_generation(violations: Violations, generation: int) -> None:
    if generation < 0:
        violations.add("generation", "must be 0 (the served version) or a generation from StageBook")


def _check_embedder(violations: Violations, embedder: common_pb2.EmbedderInfo) -> None:
    if not embedder.name or embedder.dimension <= 0:
        violations.add("embedder", "name and a positive dimension are required")
    check_storable(violations, "embedder.name", embedder.name)


def _check_chunk(violations: Violations, field: str, chunk: common_pb2.Chunk) -> None:
    # Chunk ids are the stores' point ids, which every backend keeps as UUIDs.
    if not _is_uuid(chunk.chunk_id):
        violations.add(f"{field}.chunk_id", "must be a UUID")
    check_storable(violations, field, chunk.file_path, chunk.module, chunk.content, chunk.content_hash,
                   chunk.title, chunk.url, chunk.version, chunk.locale, chunk.edit_url, *chunk.heading_path,
                   *chunk.tags)


def _check_outline_text(violations: Violations, field: str, entries: Any) -> None:
    for i, e in enumerate(entries):
        check_storable(violations, f"{field}[{i}]", e.label, e.title, e.url, e.file_path, e.description)
        _check_outline_text(violations, f"{field}[{i}].items", e.items)


class RetrievalServicer(pb_grpc.RetrievalServiceServicer):
    def __init__(self, index: VectorIndex, retriever: Retriever, outlines: OutlineStore | None = None) -> None:
        self.index = index
        self.retriever = retriever
        self.outlines = outlines

    async def UpsertChunks(self, request: pb.UpsertChunksRequest, context: Any) -> pb.UpsertChunksResponse:
        v = Violations()
        _require_book(v, request.book)
        _check_embedder(v, request.embedder)
        _check_generation(v, request.generation)
        for i, item in enumerate(request.chunks):
            _check_chunk(v, f"chunks[{i}].chunk", item.chunk)
            if item.chunk.book != request.book:
                v.add(f"chunks[{i}].chunk.book", "must equal the request's book")
            if len(item.vector) != request.embedder.dimension:
                v.add(f"chunks[{i}].vector", f"must have {request.embedder.dimension} values")
        v.raise_if_any()
        spec = EmbedderSpec(request.embedder.name, request.embedder.dimension, 0)
        records = [IndexRecord(chunk_from_proto(c.chunk), list(c.vector)) for c in request.chunks]
        return pb.UpsertChunksResponse(upserted=await self.index.upsert(spec, records, request.generation))

    async def DeleteChunks(self, request: pb.DeleteChunksRequest, context: Any) -> pb.DeleteChunksResponse:
        v = Violations()
        _require_book(v, request.book)
        _check_generation(v, request.generation)
        if not all(_is_uuid(cid) for cid in request.chunk_ids):
            v.add("chunk_ids", "must be UUIDs")
        v.raise_if_any()
        deleted = await self.index.delete(request.book, list(request.chunk_ids), request.generation)
        return pb.DeleteChunksResponse(deleted=deleted)

    async def DeleteBook(self, request: pb.DeleteBookRequest, context: Any) -> pb.DeleteBookResponse:
        v = Violations()
        _require_book(v, request.book)
        v.raise_if_any()
        deleted = await self.index.delete_book(request.book)
        if self.outlines is not None:
            await self.outlines.delete(request.book)
        return pb.DeleteBookResponse(deleted=deleted)

    async def StageBook(self, request: pb.StageBookRequest, context: Any) -> pb.StageBookResponse:
        v = Violations()
        _require_book(v, request.book)
        _check_embedder(v, request.embedder)
        v.raise_if_any()
        staged = await self.index.stage(request.book, EmbedderSpec(request.embedder.name,
                                                                    request.embedder.dimension, 0))
        return pb.StageBookResponse(generation=staged.generation, resumed=staged.resumed)

    async def CommitBook(self, request: pb.CommitBookRequest, context: Any) -> pb.CommitBookResponse:
        v = Violations()
        _require_book(v, request.book)
        if request.generation <= 0:
            v.add("generation", "must be a generation from StageBook")
        v.raise_if_any()
        return pb.CommitBookResponse(chunks=await self.index.commit(request.book, request.generation))

    async def ListChunks(self, request: pb.ListChunksRequest, context: Any) -> pb.ListChunksResponse:
        v = Violations()
        _require_book(v, request.book)
        if not 0 <= request.page_size <= 10_000:
            v.add("page_size", "must be between 0 and 10000")
        if request.page_token and not _is_uuid(request.page_token):  # every backend's tokens are point ids
            v.add("page_token", "must be a next_page_token from a previous response")
        _check_generation(v, request.generation)
        v.raise_if_any()
        digests, token = await self.index.digests(request.book, request.page_token, request.page_size or 1000,
                                                  request.generation)
        return pb.ListChunksResponse(
            chunks=[pb.ChunkDigest(chunk_id=d.chunk_id, content_hash=d.content_hash, file_path=d.file_path)
                    for d in digests],
            next_page_token=token,
            embedder=embedder_to_proto(await self.index.embedder(request.book, request.generation)),
        )

    async def ReadChunks(self, request: pb.ReadChunksRequest, context: Any) -> pb.ReadChunksResponse:
        v = Violations()
        _require_book(v, request.book)
        if len(request.chunk_ids) > MAX_READ_CHUNKS:
            v.add("chunk_ids", f"must be at most {MAX_READ_CHUNKS} ids")
        elif not all(_is_uuid(cid) for cid in request.chunk_ids):
            v.add("chunk_ids", "must be UUIDs")
        v.raise_if_any()
        async with self.index.reading(request.book) as view:
            chunks = await view.chunks(list(request.chunk_ids))
        return pb.ReadChunksResponse(chunks=[chunk_to_proto(c) for c in chunks if c.book == request.book])

    async def Search(self, request: pb.SearchRequest, context: Any) -> pb.SearchResponse:
        v = Violations()
        if not request.query.strip():
            v.add("query", "must not be empty or whitespace")
        elif len(request.query) > limits.QUESTION_CHARS:
            v.add("query", f"must be at most {limits.QUESTION_CHARS} characters")
        if not 0 <= request.top_k <= limits.TOP_K:
            v.add("top_k", f"must be between 1 and {limits.TOP_K}")
        if request.mode != pb.SEARCH_MODE_UNSPECIFIED and request.mode not in MODES:
            v.add("mode", "must be dense, keyword or hybrid")
        if not 0 <= request.filter.max_section_depth <= 6:
            v.add("filter.max_section_depth", "must be between 0 and 6")
        check_storable(v, "query", request.query)
        f = request.filter
        for name, value in (("book", f.book), ("file_path", f.file_path), ("file_path_prefix", f.file_path_prefix),
                            ("module", f.module), ("version", f.version), ("locale", f.locale)):
            check_storable(v, f"filter.{name}", value)
        v.raise_if_any()
        outcome = await self.retriever.search(
            request.query.strip(), request.top_k or DEFAULT_TOP_K, MODES.get(request.mode),
            filter_from_proto(request.filter), request.rerank if request.HasField("rerank") else None,
        )
        return pb.SearchResponse(
            results=[pb.SearchResult(chunk=chunk_to_proto(r.chunk), score=r.score,
                                     dense_similarity=r.dense_similarity,
                                     rerank_score=outcome.rerank_scores.get(r.chunk.chunk_id))
                     for r in outcome.results],
            reranked=outcome.reranked,
            out_of_scope=outcome.out_of_scope, degraded=outcome.degraded,
            degraded_reason=outcome.degraded_reason, mode=MODE_TO_PB[outcome.mode],
        )

    async def Stats(self, request: pb.StatsRequest, context: Any) -> pb.StatsResponse:
        stats = await self.index.stats()
        return pb.StatsResponse(
            books=[pb.BookStats(book=b, chunks=n) for b, n in sorted(stats.books.items())],
            embedder=embedder_to_proto(stats.embedder), backend=stats.backend, collection=stats.collection,
        )

    async def PutOutline(self, request: pb.PutOutlineRequest, context: Any) -> pb.PutOutlineResponse:
        v = Violations()
        _require_book(v, request.book)
        for i, edition in enumerate(request.editions):
            check_storable(v, f"editions[{i}]", edition.version, edition.locale)
            _check_outline_text(v, f"editions[{i}].items", edition.items)
        v.raise_if_any()
        if self.outlines is None:
            raise FailedPrecondition("this retrieval server keeps no outlines")
        stored = await self.outlines.put(request.book, [outline_from_proto(e) for e in request.editions])
        return pb.PutOutlineResponse(editions=stored)

    async def GetOutline(self, request: pb.GetOutlineRequest, context: Any) -> pb.GetOutlineResponse:
        v = Violations()
        _require_book(v, request.book)
        check_storable(v, "version", request.version)
        check_storable(v, "locale", request.locale)
        v.raise_if_any()
        found = None if self.outlines is None else await self.outlines.get(request.book, request.version,
                                                                            request.locale)
        if found is None:
            return pb.GetOutlineResponse(found=False)
        return pb.GetOutlineResponse(found=True, outline=outline_to_proto(found))

    async def EmbedQueries(self, request: pb.EmbedQueriesRequest, context: Any) -> pb.EmbedQueriesResponse:
        v = Violations()
        if not 1 <= len(request.queries) <= MAX_EMBED_QUERIES:
            v.add("queries", f"must hold 1 to {MAX_EMBED_QUERIES} queries")
        for i, query in enumerate(request.queries):
            if not query.strip():
                v.add(f"queries[{i}]", "must not be empty or whitespace")
            elif len(query) > limits.QUESTION_CHARS:
                v.add(f"queries[{i}]", f"must be at most {limits.QUESTION_CHARS} characters")
            check_storable(v, f"queries[{i}]", query)
        v.raise_if_any()
        embedder = self.retriever.embedder
        try:
            vectors = [await embedder.embed_query(q.strip()) for q in request.queries]
        except ModelUnavailable as exc:
            raise Unavailable(f"query encoder unavailable: {exc.reason}") from None
        return pb.EmbedQueriesResponse(vectors=[pb.QueryVector(values=x) for x in vectors],
                                       embedder=embedder_to_proto(embedder.spec))
