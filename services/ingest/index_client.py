"""Ingest's view of the retrieval index, over gRPC. Ingest owns no datastore: it asks
retrieval what the index holds and sends the difference."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from lectern.common.v1 import common_pb2
from lectern.retrieval.v1 import retrieval_service_pb2 as pb
from lectern.retrieval.v1 import retrieval_service_pb2_grpc as pb_grpc

from embedding.base import EmbedderSpec
from records.chunk import Chunk
from records.outline import EditionOutline
from records.proto import chunk_to_proto, outline_to_proto
from runtime.status import domain_errors


@dataclass(frozen=True)
class IndexedDigest:
    chunk_id: str
    content_hash: str
    file_path: str


class RetrievalIndexClient:
    """The index operations ingest needs, with gRPC failures turned into domain errors."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.stub = pb_grpc.RetrievalServiceStub(channel)

    async def digests(self, book: str, generation: int = 0) -> tuple[list[IndexedDigest], EmbedderSpec | None]:
        result: list[IndexedDigest] = []
        token = ""
        embedder: EmbedderSpec | None = None
        with domain_errors():
            while True:
                page = await self.stub.ListChunks(pb.ListChunksRequest(book=book, page_size=5000, page_token=token,
                                                                       generation=generation))
                result += [IndexedDigest(d.chunk_id, d.content_hash, d.file_path) for d in page.chunks]
                if page.embedder.name:
                    embedder = EmbedderSpec(page.embedder.name, page.embedder.dimension, 0)
                token = page.next_page_token
                if not token:
                    return result, embedder

    async def upsert(self, book: str, embedder: EmbedderSpec, chunks: Sequence[Chunk],
                     vectors: Sequence[Sequence[float]], generation: int = 0) -> None:
        request = pb.UpsertChunksRequest(
            book=book, embedder=_embedder(embedder), generation=generation,
            chunks=[common_pb2.EmbeddedChunk(chunk=chunk_to_proto(c), vector=list(v))
                    for c, v in zip(chunks, vectors, strict=True)],
        )
        with domain_errors():
            await self.stub.UpsertChunks(request)

    async def delete(self, book: str, chunk_ids: Sequence[str], generation: int = 0) -> None:
        with domain_errors():
            await self.stub.DeleteChunks(pb.DeleteChunksRequest(book=book, chunk_ids=list(chunk_ids),
                                                                generation=generation))

    async def stage(self, book: str, embedder: EmbedderSpec) -> tuple[int, bool]:
        with domain_errors():
            staged = await self.stub.StageBook(pb.StageBookRequest(book=book, embedder=_embedder(embedder)))
        return staged.generation, staged.resumed

    async def commit(self, book: str, generation: int) -> None:
        with domain_errors():
            await self.stub.CommitBook(pb.CommitBookRequest(book=book, generation=generation))

    async def put_outlines(self, book: str, outlines: Sequence[EditionOutline]) -> None:
        editions = [outline_to_proto(o) for o in outlines]
        with domain_errors():
            await self.stub.PutOutline(pb.PutOutlineRequest(book=book, editions=editions))


def _embedder(spec: EmbedderSpec) -> common_pb2.EmbedderInfo:
    return common_pb2.EmbedderInfo(name=spec.name, dimension=spec.dimension)
