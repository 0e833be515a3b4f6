"""The four services over real gRPC on loopback, with the real embedded Qdrant Edge and
Postgres: ingest -> retrieval -> chat -> sessions."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import grpc
import pytest
from lectern.chat.v1 import chat_service_pb2 as cpb
from lectern.chat.v1 import chat_service_pb2_grpc as cpb_grpc
from lectern.common.v1 import common_pb2
from lectern.ingest.v1 import ingest_service_pb2 as ipb
from lectern.retrieval.v1 import retrieval_service_pb2 as rpb
from lectern.retrieval.v1 import retrieval_service_pb2_grpc as rpb_grpc
from lectern.sessions.v1 import sessions_service_pb2 as spb
from lectern.sessions.v1 import sessions_service_pb2_grpc as spb_grpc

from runtime import errors
from runtime.status import from_rpc_error
from services.chat.research import reformulate
from services.ingest.index_client import RetrievalIndexClient
from services.ingest.sync import IngestJob, Ingestor
from services.retrieval.scope import named_terms, unknown_term
from tests.conftest import BOOK, FIXTURES, Stack, ingest

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def search(stack: Stack, query: str, **kw: object) -> rpb.SearchResponse:
    async with grpc.aio.insecure_channel(stack.retrieval.address) as ch:
        reply: rpb.SearchResponse = await rpb_grpc.RetrievalServiceStub(ch).Search(
            rpb.SearchRequest(query=query, **kw))  # type: ignore[arg-type]
        return reply


async def chat(stack: Stack, request: cpb.ChatRequest) -> list[cpb.ChatResponse]:
    async with grpc.aio.insecure_channel(stack.chat.address) as ch:
        return [e async for e in cpb_grpc.ChatServiceStub(ch).Chat(request)]


async def test_ingest_then_unchanged_reingest_writes_nothing(stack: Stack, sample_book: ipb.IngestSummary) -> None:
    assert sample_book.files_seen == 25 and sample_book.files_skipped == 3  # two drafts, one unlisted page
    assert sample_book.chunks_new > 40 and not sample_book.failed
    again = await ingest(stack, BOOK, "sample")
    assert (again.chunks_new, again.chunks_changed, again.chunks_deleted) == (0, 0, 0)
    assert again.chunks_unchanged == sample_book.chunks_new and again.tokens_embedded == 0


async def test_edit_delete_and_rename_sync_exactly(stack: Stack, home: Path) -> None:
    book = home / "books" / "sync"
    shutil.copytree(BOOK, book)
    first = await ingest(stack, book, "sync")
    imu = book / "sensors" / "imu.md"
    imu.write_text(imu.read_text().replace("averaging 500 samples", "averaging 800 samples"))
    edited = await ingest(stack, book, "sync")
    assert (edited.chunks_new, edited.chunks_changed, edited.chunks_deleted) == (0, 1, 0)
    (book / "motion" / "troubleshooting.md").unlink()
    deleted = await ingest(stack, book, "sync")
    assert deleted.chunks_deleted == 3 and deleted.chunks_new == 0
    (book / "appendix.md").rename(book / "reference.md")
    renamed = await ingest(stack, book, "sync")
    assert renamed.chunks_new == renamed.chunks_deleted > 0
    dry = await ingest(stack, BOOK, "sync", dry_run=True)
    assert dry.dry_run and dry.chunks_new > 0
    after = await ingest(stack, book, "sync", dry_run=True)
    assert after.chunks_new == after.chunks_changed == after.chunks_deleted == 0
    assert first.chunks_new > 0


async def test_bad_files_are_reported_and_the_rest_ingested(stack: Stack) -> None:
    summary = await ingest(stack, FIXTURES / "tricky", "tricky")
    failed = {f.file_path for f in summary.failed}
    assert failed == {"broken-yaml.md", "invalid-utf8.md", "binary.md"}  # an unclosed fence ends with the page
    assert summary.chunks_new > 0


async def test_a_question_naming_what_the_book_never_mentions_is_out_of_scope(
        stack: Stack, sample_book: ipb.IngestSummary) -> None:
    index = stack.retrieval.resources.index
    assert named_terms("Set staleTime for useQuery in TanStack Query, like Pinia's defineStore?") == [
        "staleTime", "useQuery", "TanStack", "defineStore", "Query", "Pinia"]
    assert named_terms("Which GPIO pin does the API use?") == []  # acronyms are not names
    async with index.reading("sample") as view:
        assert await unknown_term(view, "How do I read the VL53L0X from MicroPython?", "sample") is None
        assert await unknown_term(view, "How do I read the VL53L0X with readRangeAsync?", "sample") == "readRangeAsync"


async def test_the_second_search_keeps_the_names_the_question_was_written_with() -> None:
    assert reformulate("How do I set staleTime in TanStack Query?") == "set staleTime TanStack Query"


async def test_ingest_outside_the_roots_is_refused(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> None:
    outside = tmp_path_factory.mktemp("elsewhere")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await ingest(stack, outside, "x")
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_search_finds_the_section_and_filters(stack: Stack, sample_book: ipb.IngestSummary) -> None:
    reply = await search(stack, "how do I calibrate the gyroscope bias", top_k=3,
                         filter=common_pb2.SearchFilter(book="sample"))
    assert reply.results[0].chunk.url == "/docs/sensors/imu#calibrating-the-gyroscope"
    assert not reply.out_of_scope
    motion = await search(stack, "calibrate", top_k=5, filter=common_pb2.SearchFilter(book="sample", module="motion"))
    assert motion.results and all(r.chunk.module == "motion" for r in motion.results)
    shallow = await search(stack, "wire gauge", top_k=10,
                           filter=common_pb2.SearchFilter(book="sample", max_section_depth=2))
    assert all(r.chunk.section_depth <= 2 for r in shallow.results)
    prefix = await search(stack, "sensor", top_k=10,
                          filter=common_pb2.SearchFilter(book="sample", file_path_prefix="sensors/"))
    assert prefix.results and all(r.chunk.file_path.startswith("sensors/") for r in prefix.results)
    for mode in (rpb.SEARCH_MODE_DENSE, rpb.SEARCH_MODE_KEYWORD, rpb.SEARCH_MODE_HYBRID):
        r = await search(stack, "integral windup", top_k=3, mode=mode, filter=common_pb2.SearchFilter(book="sample"))
        assert "pid-tuning" in r.results[0].chunk.file_path, mode


async def test_search_rejects_bad_input_with_field_violations(stack: Stack) -> None:
    for kwargs, field in [({"query": "  "}, "query"), ({"query": "x" * 9000}, "query"),
                          ({"query": "ok", "top_k": 51}, "top_k"), ({"query": "ok", "mode": 9}, "mode")]:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await search(stack, **kwargs)  # type: ignore[arg-type]
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        err = from_rpc_error(caught.value)
        assert isinstance(err, errors.InvalidArgument) and err.violations[0].field == field


async def test_chat_answers_with_citations_and_records_the_turn(stack: Stack, sample_book: ipb.IngestSummary) -> None:
    events = await chat(stack, cpb.ChatRequest(message="How do I calibrate the gyroscope?", book="sample"))
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[0] == "meta" and kinds[-1] == "done" and "sources" in kinds and "token" in kinds
    done = events[-1].done
    sources = next(e.sources.sources for e in events if e.WhichOneof("event") == "sources")
    assert done.grounded and not done.out_of_scope and "[1]" in done.answer
    assert sources[0].url == "/docs/sensors/imu#calibrating-the-gyroscope"
    assert "".join(e.token.text for e in events if e.WhichOneof("event") == "token") == done.answer

    meta = events[0].meta
    async with grpc.aio.insecure_channel(stack.sessions.address) as ch:
        stub = spb_grpc.SessionsServiceStub(ch)
        for _ in range(50):
            listed = await stub.ListMessages(spb.ListMessagesRequest(
                conversation_id=meta.conversation_id, conversation_token=meta.conversation_token))
            if len(listed.messages) == 2:
                break
            await asyncio.sleep(0.1)
    assert [m.role for m in listed.messages] == [spb.ROLE_USER, spb.ROLE_ASSISTANT]
    assert listed.messages[1].message_id == meta.message_id and listed.messages[1].sources


async def test_chat_refuses_questions_the_book_cannot_answer(stack: Stack, sample_book: ipb.IngestSummary) -> None:
    events = await chat(stack, cpb.ChatRequest(message="What is the capital of France?", book="sample"))
    done = events[-1].done
    assert done.out_of_scope and done.answer.startswith("I couldn't find this in the book")


async def test_selection_mode_uses_only_the_selection(stack: Stack, sample_book: ipb.IngestSummary) -> None:
    selection = "The gyroscope bias is measured by averaging 9000 samples while the robot is upside down."
    events = await chat(stack, cpb.ChatRequest(message="How is the gyroscope bias measured?", book="sample",
                                               mode=cpb.CHAT_MODE_SELECTION, selection=selection))
    done = events[-1].done
    assert "9000 samples" in done.answer and "500" not in done.answer


async def test_chat_rejects_bad_input(stack: Stack) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await chat(stack, cpb.ChatRequest(message="", mode=cpb.CHAT_MODE_SELECTION))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = {v.field for v in from_rpc_error(caught.value).violations}  # type: ignore[attr-defined]
    assert fields == {"message", "selection"}


async def test_append_turn_rejects_bad_input_with_field_violations(stack: Stack) -> None:
    source = common_pb2.SourceReference(n=1, chunk_id="c1", file_path="a.md", url="/docs/a")
    async with grpc.aio.insecure_channel(stack.sessions.address) as ch:
        stub = spb_grpc.SessionsServiceStub(ch)
        created = await stub.CreateConversation(spb.CreateConversationRequest(book="sample"))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.AppendTurn(spb.AppendTurnRequest(
                conversation_id=created.conversation_id, turn_id="t1", question="Q?", answer="A [1].", mode="other",
                sources=[source, source, common_pb2.SourceReference(n=0, chunk_id="c2")]))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = {v.field for v in from_rpc_error(caught.value).violations}  # type: ignore[attr-defined]
    assert fields == {"mode", "sources[1].n", "sources[2].n"}


class Stopped(Exception):
    """Where a test stops a sync, as a crash would."""


class RecordingIndex(RetrievalIndexClient):
    """The real index client, which remembers each write's kind and the version (generation) it
    went to, and stops at the first call named ``stop_at``."""

    def __init__(self, channel: grpc.aio.Channel, stop_at: str = "") -> None:
        super().__init__(channel)
        self.stop_at = stop_at
        self.writes: list[tuple[str, int]] = []

    def _call(self, name: str, generation: int) -> None:
        if name == self.stop_at:
            raise Stopped(name)
        self.writes.append((name, generation))

    async def upsert(self, *args: Any, **kwargs: Any) -> None:
        self._call("upsert", kwargs.get("generation", args[4] if len(args) > 4 else 0))
        await super().upsert(*args, **kwargs)

    async def delete(self, *args: Any, **kwargs: Any) -> None:
        self._call("delete", kwargs.get("generation", args[2] if len(args) > 2 else 0))
        await super().delete(*args, **kwargs)

    async def commit(self, book: str, generation: int) -> None:
        self._call("commit", generation)
        await super().commit(book, generation)


async def sync(ingestor: Ingestor, job: IngestJob) -> None:
    async for _ in ingestor.run(job):
        pass


async def held(index: RetrievalIndexClient, book: str) -> dict[str, tuple[str, str]]:
    """The served version: chunk id -> (file, content hash)."""
    digests, _ = await index.digests(book)
    return {d.chunk_id: (d.file_path, d.content_hash) for d in digests}


async def test_a_sync_writes_before_it_deletes_and_a_re_index_only_into_its_staged_version(
        stack: Stack, home: Path) -> None:
    book, folder = "order", home / "books" / "order"
    folder.mkdir(parents=True)
    for name in ("alpha", "beta", "gamma"):
        (folder / f"{name}.md").write_text(f"# {name.title()}\n\n## Setup\n\nThe {name} setup step.\n\n"
                                           f"## Use\n\nThe {name} use step.\n")
    await ingest(stack, folder, book)
    embedder = stack.ingest.resources.embedder
    async with grpc.aio.insecure_channel(stack.retrieval.address) as channel:
        index = RetrievalIndexClient(channel)
        before = await held(index, book)
        (folder / "alpha.md").write_text((folder / "alpha.md").read_text().replace("setup step", "first step"))
        (folder / "gamma.md").unlink()
        (folder / "delta.md").write_text("# Delta\n\nThe delta page.\n")

        # An incremental sync stopped at its first delete has written every new and changed chunk.
        stopped_sync = RecordingIndex(channel, stop_at="delete")
        with pytest.raises(Stopped):
            await sync(Ingestor(stopped_sync, embedder), IngestJob(folder, book))
        assert stopped_sync.writes and set(stopped_sync.writes) == {("upsert", 0)}
        stopped = await held(index, book)
        converged = await ingest(stack, folder, book)
        after = await held(index, book)
        gamma = {c for c, (path, _) in before.items() if path == "gamma.md"}
        assert gamma and stopped.keys() - after.keys() == gamma  # extra chunks at worst
        assert after.items() <= stopped.items()  # never a missing or stale one
        assert (converged.chunks_new, converged.chunks_changed, converged.chunks_deleted) == (0, 0, len(gamma))

        # A page that fails to parse keeps its chunks through a sync; a re-index writes only into
        # its staged version, commits it, and leaves the page out.
        (folder / "beta.md").write_text("---\ntitle: [unclosed\n---\n# Beta\n")
        kept = await ingest(stack, folder, book)
        assert [f.file_path for f in kept.failed] == ["beta.md"] and await held(index, book) == after
        reindex = RecordingIndex(channel)
        await sync(Ingestor(reindex, embedder), IngestJob(folder, book, reindex=True))
        staged = reindex.writes[-1][1]
        assert reindex.writes[-1][0] == "commit" and staged and {g for _, g in reindex.writes} == {staged}
        rebuilt = await held(index, book)
        assert rebuilt == {c: v for c, v in after.items() if v[0] != "beta.md"} and len(rebuilt) < len(after)
