"""Re-index without a gap, over the real services: a re-index builds the new version beside
the served one and switches when it is complete; one that stops part-way (its stream
cancelled, its embedder failing) leaves the old version served, whole, and the next run
resumes it. Also progress per embedded batch (gRPC and SSE) and unstorable input."""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import Sequence
from pathlib import Path

import grpc
import httpx
import pytest
from lectern.common.v1 import common_pb2
from lectern.ingest.v1 import ingest_service_pb2 as ipb
from lectern.ingest.v1 import ingest_service_pb2_grpc as ipb_grpc
from lectern.retrieval.v1 import retrieval_service_pb2 as rpb
from lectern.retrieval.v1 import retrieval_service_pb2_grpc as rpb_grpc

from embedding.base import EmbedderSpec
from runtime import errors
from runtime.status import from_rpc_error
from services.ingest.index_client import RetrievalIndexClient
from services.ingest.sync import EMBED_BATCH, EmbedEvent, IngestJob, Ingestor, Summary
from tests.conftest import ADMIN, Stack, ingest
from tests.test_gateway import parse_sse

pytestmark = pytest.mark.asyncio(loop_scope="session")


def write_book(root: Path, version: str, sections: int) -> None:
    """Pages of numbered sections whose text names the version, so any result tells which
    version of the book it came from."""
    for page in range(4):
        lines = [f"# Widgets {page}", "", f"The {version} edition of widgets part {page}.", ""]
        for i in range(page, sections, 4):
            lines += [f"## Widget {i}", "", f"In the {version} edition, widget {i} calibrates with step {i} "
                      f"and the {version} gauge number {i * 7}.", ""]
        (root / f"widgets-{page}.md").write_text("\n".join(lines))


async def served(stack: Stack, book: str) -> dict[str, str]:
    """The book's chunks as the index serves them: id -> content hash."""
    async with grpc.aio.insecure_channel(stack.retrieval.address) as ch:
        page = await rpb_grpc.RetrievalServiceStub(ch).ListChunks(rpb.ListChunksRequest(book=book, page_size=10_000))
    return {d.chunk_id: d.content_hash for d in page.chunks}


async def search(stack: Stack, book: str, query: str = "which step does widget 9 calibrate with") -> rpb.SearchResponse:
    async with grpc.aio.insecure_channel(stack.retrieval.address) as ch:
        reply: rpb.SearchResponse = await rpb_grpc.RetrievalServiceStub(ch).Search(rpb.SearchRequest(
            query=query, top_k=20, filter=common_pb2.SearchFilter(book=book)))
    return reply


def editions(reply: rpb.SearchResponse) -> set[str]:
    return {word for r in reply.results for word in ("alpha", "beta") if f"{word} edition" in r.chunk.content}


async def test_progress_is_streamed_after_each_embedded_batch(stack: Stack, home: Path) -> None:
    root = home / "books" / "progress"
    root.mkdir()
    write_book(root, "alpha", 150)
    async with grpc.aio.insecure_channel(stack.ingest.address) as ch:
        events = [e async for e in ipb_grpc.IngestServiceStub(ch).Ingest(
            ipb.IngestRequest(source_dir=str(root), book="progress"))]
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds == ["progress"] * 4 + ["embedding"] * (len(kinds) - 5) + ["summary"]
    total = events[-1].summary.chunks_new
    assert total > 2 * EMBED_BATCH
    embedded = [(e.embedding.chunks_embedded, e.embedding.chunks_total) for e in events if e.HasField("embedding")]
    steps = [*range(0, total, EMBED_BATCH), total]
    assert embedded == [(n, total) for n in steps]


async def test_a_cancelled_re_index_keeps_the_old_version_and_the_next_run_resumes_and_switches_whole(
        stack: Stack, home: Path) -> None:
    root = home / "books" / "reindex"
    root.mkdir()
    write_book(root, "alpha", 220)
    first = await ingest(stack, root, "reindex")
    alpha = await served(stack, "reindex")
    assert len(alpha) == first.chunks_new and editions(await search(stack, "reindex")) == {"alpha"}
    alpha_results = [(r.chunk.chunk_id, r.score) for r in (await search(stack, "reindex")).results]

    # The next edition drops 40 sections and rewrites the rest; its re-index is stopped once
    # the first batches are written.
    for page in root.iterdir():
        page.unlink()
    write_book(root, "beta", 180)
    request = ipb.IngestRequest(source_dir=str(root), book="reindex", reindex=True)
    async with grpc.aio.insecure_channel(stack.ingest.address) as ch:
        call = ipb_grpc.IngestServiceStub(ch).Ingest(request)
        async for event in call:
            if event.HasField("embedding") and event.embedding.chunks_embedded >= EMBED_BATCH:
                break
        call.cancel()
    await asyncio.sleep(0.5)  # the service sees the cancellation
    assert await served(stack, "reindex") == alpha
    assert [(r.chunk.chunk_id, r.score) for r in (await search(stack, "reindex")).results] == alpha_results

    # Readers during the completing run always see one whole edition.
    seen: list[tuple[int, frozenset[str]]] = []

    async def watch() -> None:
        while True:
            seen.append((len(await served(stack, "reindex")), frozenset(editions(await search(stack, "reindex")))))
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch())
    try:
        summary = await ingest_with(stack, request)
    finally:
        watcher.cancel()
    beta = await served(stack, "reindex")
    total = summary.chunks_new + summary.chunks_changed + summary.chunks_unchanged
    assert len(beta) == total < len(alpha)
    assert EMBED_BATCH <= summary.chunks_reused < total  # what the cancelled run embedded is kept
    assert summary.chunks_deleted == len(set(alpha) - set(beta)) > 0
    assert editions(await search(stack, "reindex")) == {"beta"}
    assert seen and set(seen) <= {(len(alpha), frozenset({"alpha"})), (len(beta), frozenset({"beta"}))}

    # An incremental sync afterwards writes into the version now served.
    (root / "widgets-0.md").unlink()
    after = await ingest(stack, root, "reindex")
    assert after.chunks_deleted > 0 and len(await served(stack, "reindex")) == total - after.chunks_deleted


async def ingest_with(stack: Stack, request: ipb.IngestRequest) -> ipb.IngestSummary:
    async with grpc.aio.insecure_channel(stack.ingest.address) as ch:
        events = [e async for e in ipb_grpc.IngestServiceStub(ch).Ingest(request)]
    summary: ipb.IngestSummary = events[-1].summary
    return summary


class HashEmbedder:
    """Another embedding model (8 dimensions), which can be told to fail after some batches."""

    spec = EmbedderSpec("test:hash", 8, 512)

    def __init__(self, fail_after: int | None = None) -> None:
        self.fail_after = fail_after
        self.batches = 0

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if self.fail_after is not None and self.batches >= self.fail_after:
            raise RuntimeError("the embedding service went away")
        self.batches += 1
        return [self._vector(t) for t in texts]

    async def embed_query(self, text: str) -> list[float]:
        return self._vector(text)

    @staticmethod
    def _vector(text: str) -> list[float]:
        raw = [b - 127.5 for b in hashlib.sha256(text.encode()).digest()[:8]]
        norm = math.sqrt(sum(x * x for x in raw))
        return [x / norm for x in raw]

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    async def ready(self) -> bool:
        return True

    async def close(self) -> None:
        pass


async def run(ingestor: Ingestor, job: IngestJob) -> tuple[Summary, list[EmbedEvent]]:
    progress: list[EmbedEvent] = []
    async for event in ingestor.run(job):
        if isinstance(event, EmbedEvent):
            progress.append(event)
        elif isinstance(event, Summary):
            return event, progress
    raise AssertionError("no summary")


async def test_an_embedder_switch_goes_through_the_same_staged_path(stack: Stack, home: Path) -> None:
    root = home / "books" / "switch"
    root.mkdir()
    write_book(root, "alpha", 150)
    await ingest(stack, root, "switch")
    before = await served(stack, "switch")
    before_results = [(r.chunk.chunk_id, r.score) for r in (await search(stack, "switch")).results]
    assert not (await search(stack, "switch")).degraded

    async with grpc.aio.insecure_channel(stack.retrieval.address) as ch:
        index = RetrievalIndexClient(ch)
        job = IngestJob(root, "switch")
        with pytest.raises(errors.FailedPrecondition, match="--reindex"):
            await run(Ingestor(index, HashEmbedder()), job)
        switch = IngestJob(root, "switch", reindex=True)
        with pytest.raises(RuntimeError, match="went away"):
            await run(Ingestor(index, HashEmbedder(fail_after=1)), switch)
        assert await served(stack, "switch") == before  # still the old model's version, whole
        reply = await search(stack, "switch")
        assert not reply.degraded and [(r.chunk.chunk_id, r.score) for r in reply.results] == before_results

        summary, progress = await run(Ingestor(index, HashEmbedder()), switch)
        assert summary.chunks_reused == EMBED_BATCH
        assert progress[-1] == EmbedEvent(len(before) - EMBED_BATCH, len(before) - EMBED_BATCH)
        assert (await index.digests("switch"))[1] == EmbedderSpec("test:hash", 8, 0)
    assert await served(stack, "switch") == before  # same book, same chunks, new vectors
    reply = await search(stack, "switch")
    # Retrieval still embeds queries with the local model: it says so and searches by keyword.
    assert reply.degraded and "index built by test:hash" in reply.degraded_reason and reply.results

    back = await ingest_with(stack, ipb.IngestRequest(source_dir=str(root), book="switch", reindex=True))
    assert back.chunks_reused == 0 and back.chunks_unchanged == len(before)
    assert not (await search(stack, "switch")).degraded


async def expect_invalid(call: object, field: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    err = from_rpc_error(caught.value)
    assert isinstance(err, errors.InvalidArgument) and field in {v.field for v in err.violations}


async def test_unstorable_or_malformed_input_is_invalid_argument(stack: Stack, home: Path) -> None:
    async with grpc.aio.insecure_channel(stack.ingest.address) as ch:
        stub = ipb_grpc.IngestServiceStub(ch)

        async def ingest_call(source_dir: str = str(home / "books"), book: str = "", base_url: str = "") -> None:
            async for _ in stub.Ingest(ipb.IngestRequest(source_dir=source_dir, book=book, base_url=base_url)):
                pass

        await expect_invalid(ingest_call(source_dir=str(home / "books") + "/x\x00y"), "source_dir")
        await expect_invalid(ingest_call(book="gyro\x00scope"), "book")
        await expect_invalid(ingest_call(base_url="/docs/\x00"), "base_url")
        await expect_invalid(ingest_call(source_dir=str(home / "books" / ("d" * 300))), "source_dir")

    chunk = common_pb2.Chunk(chunk_id="5f0c3a52-8d1e-4a57-9a43-1f2d3c4b5a60", book="nul", content="gyro\x00scope")
    async with grpc.aio.insecure_channel(stack.retrieval.address) as ch:
        r = rpb_grpc.RetrievalServiceStub(ch)
        await expect_invalid(r.Search(rpb.SearchRequest(query="gyro\x00scope")), "query")
        await expect_invalid(r.Search(rpb.SearchRequest(query="gyro", filter=common_pb2.SearchFilter(book="a\x00"))),
                             "filter.book")
        await expect_invalid(r.ListChunks(rpb.ListChunksRequest(book="a\x00")), "book")
        await expect_invalid(r.ListChunks(rpb.ListChunksRequest(book="a", page_token="not-a-token")), "page_token")
        await expect_invalid(r.StageBook(rpb.StageBookRequest(
            book="a\x00", embedder=common_pb2.EmbedderInfo(name="x", dimension=1))), "book")
        await expect_invalid(r.CommitBook(rpb.CommitBookRequest(book="a")), "generation")
        await expect_invalid(r.UpsertChunks(rpb.UpsertChunksRequest(
            book="nul", embedder=common_pb2.EmbedderInfo(name="x", dimension=1),
            chunks=[common_pb2.EmbeddedChunk(chunk=chunk, vector=[1.0])])), "chunks[0].chunk")
        bad_id = common_pb2.Chunk(chunk_id="gyroscope", book="nul")
        await expect_invalid(r.UpsertChunks(rpb.UpsertChunksRequest(
            book="nul", embedder=common_pb2.EmbedderInfo(name="x", dimension=1),
            chunks=[common_pb2.EmbeddedChunk(chunk=bad_id, vector=[1.0])])), "chunks[0].chunk.chunk_id")
        await expect_invalid(r.DeleteChunks(rpb.DeleteChunksRequest(book="nul", chunk_ids=["x"])), "chunk_ids")
        fine = common_pb2.Chunk(chunk_id=chunk.chunk_id, book="nul", content="gyroscope")
        with pytest.raises(grpc.aio.AioRpcError) as caught:  # a generation nobody staged
            await r.UpsertChunks(rpb.UpsertChunksRequest(book="nul", generation=99, embedder=common_pb2.EmbedderInfo(
                name="x", dimension=1), chunks=[common_pb2.EmbeddedChunk(chunk=fine, vector=[1.0])]))
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_the_admin_ingest_stream_shows_embedding_progress(gateway: str, home: Path) -> None:
    root = home / "books" / "sse"
    root.mkdir()
    write_book(root, "alpha", 100)
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(base_url=gateway, timeout=300) as client:
        reply = await client.post("/v1/ingest", json={"source_dir": str(root), "book": "sse"}, headers=headers)
        assert reply.status_code == 200, reply.text
        events = parse_sse(reply.text)
        assert [name for name, _ in events[:4]] == ["progress"] * 4 and events[-1][0] == "summary"
        total = events[-1][1]["chunks_new"]
        assert isinstance(total, int) and total > EMBED_BATCH
        assert [data for name, data in events if name == "embedding"] == [
            {"chunks_embedded": n, "chunks_total": total} for n in [*range(0, total, EMBED_BATCH), total]]

        nul = await client.post("/v1/ingest", json={"source_dir": str(root) + "\u0000", "book": "sse"},
                                headers=headers)
        assert nul.status_code == 400 and nul.json()["error"]["code"] == "INVALID_ARGUMENT"
