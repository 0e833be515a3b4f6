"""Search reranked by the cross-encoder, over gRPC and HTTP on the real stack (sample book, Qdrant
Edge, the bundled models): on and off per request, unset meaning the server's default, scores
reported, a broken model degrading to the fused order with the reason (and health saying so, the
service still SERVING), a cancelled search stopping the model, and scope judged on its scores."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from lectern.common.v1 import common_pb2
from lectern.ingest.v1 import ingest_service_pb2 as ipb
from lectern.retrieval.v1 import retrieval_service_pb2 as rpb
from lectern.retrieval.v1 import retrieval_service_pb2_grpc as rpb_grpc

from embedding.models import RERANKER, model_dir
from embedding.reranker import CrossEncoder, passage_text
from runtime.server import dependency_health_name, start_service
from services.retrieval.fusion import blended
from services.retrieval.index.base import Filter
from services.retrieval.scope import (
    RERANK_RELEVANT_LOGIT,
    RERANK_SCOPE_LOGIT,
    absent_code,
    absent_term,
    code_terms,
    mentions,
    mentions_code,
    unknown_term,
)
from services.retrieval.search import Mode, Retriever, Scorer, reranked_order
from services.retrieval.service import RERANKER as RERANKER_DEPENDENCY
from services.retrieval.service import SERVICE_NAME, spec
from services.retrieval.settings import RetrievalSettings
from tests.conftest import Stack, server_settings

pytestmark = pytest.mark.asyncio(loop_scope="session")

QUESTION = "How do I calibrate the gyroscope?"
NAMED_ELSEWHERE = "What colour does the status light show when the Hindi firmware boots?"
SAMPLE = common_pb2.SearchFilter(book="sample")


async def search(stack: Stack, query: str, **kw: object) -> rpb.SearchResponse:
    async with grpc.aio.insecure_channel(stack.retrieval.address) as ch:
        reply: rpb.SearchResponse = await rpb_grpc.RetrievalServiceStub(ch).Search(
            rpb.SearchRequest(query=query, filter=SAMPLE, **kw))  # type: ignore[arg-type]
        return reply


def ids(reply: rpb.SearchResponse) -> list[str]:
    return [r.chunk.chunk_id for r in reply.results]


def altered_model_root(tmp: Path) -> Path:
    """A copy of the bundled models' folder whose reranker tokenizer has one byte changed."""
    target = tmp / RERANKER.folder
    target.mkdir(parents=True)
    source = model_dir(RERANKER)
    (target / "model.onnx").symlink_to(source / "model.onnx")
    data = bytearray((source / "tokenizer.json").read_bytes())
    data[-2] ^= 1
    (target / "tokenizer.json").write_bytes(bytes(data))
    return tmp


def retriever_of(stack: Stack, scorer: Scorer, default: bool = True, candidates: int = 10) -> Retriever:
    """A retriever on the stack's own index and embedder, with the given cross-encoder."""
    res = stack.retrieval.resources
    base: Retriever = res.retriever
    assert base.reranking is not None
    return Retriever(res.index, res.embedder, Mode.HYBRID, base.out_of_scope_threshold, base.named_term_ceiling,
                     replace(base.reranking, scorer=scorer, default=default, candidates=candidates))


async def test_rerank_on_and_off_over_grpc_and_unset_is_the_server_default(
        stack: Stack, sample_book: ipb.IngestSummary) -> None:
    on = await search(stack, QUESTION, top_k=5, rerank=True)
    off = await search(stack, QUESTION, top_k=5, rerank=False)
    unset = await search(stack, QUESTION, top_k=5)
    assert on.reranked and not off.reranked and not on.degraded
    assert all(r.HasField("rerank_score") for r in on.results)
    assert not any(r.HasField("rerank_score") for r in off.results)
    # The service's default (LECTERN_RERANK, on) is what an unset field gets.
    assert RetrievalSettings.from_env({}).rerank is True
    assert unset.reranked and ids(unset) == ids(on)
    assert [r.rerank_score for r in unset.results] == [r.rerank_score for r in on.results]
    assert on.results[0].chunk.url == "/docs/sensors/imu#calibrating-the-gyroscope"
    # The fused top 10 (the candidates), ordered by their fused and cross-encoder scores blended,
    # then cut; the cross-encoder's own score is reported beside the ordering score.
    candidates = await search(stack, QUESTION, top_k=10, rerank=False)
    scored = await search(stack, QUESTION, top_k=10, rerank=True)
    by_id = {r.chunk.chunk_id: r.rerank_score for r in scored.results}
    ordering = blended([r.score for r in candidates.results], [by_id[c] for c in ids(candidates)])
    expected = [ids(candidates)[i] for i in reranked_order(ordering)]
    assert [r.score for r in scored.results] == pytest.approx(sorted(ordering, reverse=True))
    assert ids(scored) == expected and ids(on) == expected[:5]
    assert [r.score for r in scored.results] == sorted((r.score for r in scored.results), reverse=True)
    # Asking for more than the candidates: the rest follow in fused order, still scored in order.
    more = await search(stack, QUESTION, top_k=15, rerank=True)
    fused = await search(stack, QUESTION, top_k=15, rerank=False)
    assert ids(more)[:10] == expected and ids(more)[10:] == ids(fused)[10:]
    assert not any(r.HasField("rerank_score") for r in more.results[10:])
    assert [r.score for r in more.results] == sorted((r.score for r in more.results), reverse=True)


async def test_unset_follows_a_server_whose_default_is_off(stack: Stack, sample_book: ipb.IngestSummary) -> None:
    res = stack.retrieval.resources
    retriever = retriever_of(stack, res.reranker, default=False)
    unset = await retriever.search(QUESTION, 5, None, Filter(book="sample"))
    off = await retriever.search(QUESTION, 5, None, Filter(book="sample"), rerank=False)
    on = await retriever.search(QUESTION, 5, None, Filter(book="sample"), rerank=True)
    assert not unset.reranked and on.reranked
    assert [r.chunk.chunk_id for r in unset.results] == [r.chunk.chunk_id for r in off.results]


async def test_rerank_over_http(gateway: str, ingested: dict[str, object]) -> None:
    async with httpx.AsyncClient(base_url=gateway, timeout=60) as client:
        replies = {}
        for value in (True, False, None):
            body: dict[str, object] = {"query": QUESTION, "top_k": 5}
            if value is not None:
                body["rerank"] = value
            reply = await client.post("/v1/search", json=body)
            assert reply.status_code == 200, reply.text
            replies[value] = reply.json()
        assert replies[True]["reranked"] and all(isinstance(r["rerank_score"], float)
                                                 for r in replies[True]["results"])
        assert not replies[False]["reranked"] and all(r["rerank_score"] is None for r in replies[False]["results"])
        assert replies[None]["reranked"]
        assert [r["chunk_id"] for r in replies[None]["results"]] == [r["chunk_id"] for r in replies[True]["results"]]
        bad = await client.post("/v1/search", json={"query": QUESTION, "rerank": "sometimes"})
        assert bad.status_code in (400, 422) and "rerank" in bad.text


async def test_an_altered_model_file_degrades_to_the_fused_order_with_the_reason(
        stack: Stack, sample_book: ipb.IngestSummary, tmp_path: Path) -> None:
    broken = CrossEncoder(root=altered_model_root(tmp_path), workers=1)
    retriever = retriever_of(stack, broken)
    flt = Filter(book="sample")
    outcome = await retriever.search(QUESTION, 5, None, flt)
    fused = await retriever.search(QUESTION, 5, None, flt, rerank=False)
    assert outcome.degraded and not outcome.reranked
    assert "reranker unavailable" in outcome.degraded_reason and "sha256" in outcome.degraded_reason
    assert [r.chunk.chunk_id for r in outcome.results] == [r.chunk.chunk_id for r in fused.results]
    assert outcome.out_of_scope == fused.out_of_scope
    broken.close()


async def test_a_broken_reranker_shows_in_health_but_retrieval_keeps_serving_degraded(
        tmp_path: Path) -> None:
    environ = {"LECTERN_MODEL_DATA_DIR": str(altered_model_root(tmp_path / "models"))}
    home = tmp_path / "home"
    home.mkdir()
    settings = replace(RetrievalSettings.from_env(environ), server=replace(server_settings("retrieval", home),
                                                                           health_interval_seconds=0.2))
    async with start_service(spec(settings), settings.server) as running:
        texts = ["Calibrate the gyroscope on a flat surface.", "Tune the PID gains one term at a time."]
        vectors = await running.resources.embedder.embed_documents(texts)
        name = running.resources.embedder.spec.name
        chunks = [common_pb2.EmbeddedChunk(chunk=common_pb2.Chunk(
            chunk_id=str(uuid.uuid4()), book="b", file_path=f"p{i}.md", heading_path=[f"H{i}"], content=t,
            content_hash=f"h{i}"), vector=v) for i, (t, v) in enumerate(zip(texts, vectors, strict=True))]
        async with grpc.aio.insecure_channel(running.address) as ch:
            stub = rpb_grpc.RetrievalServiceStub(ch)
            await stub.UpsertChunks(rpb.UpsertChunksRequest(
                book="b", embedder=common_pb2.EmbedderInfo(name=name, dimension=len(vectors[0])), chunks=chunks))
            health = health_pb2_grpc.HealthStub(ch)
            deadline = time.monotonic() + 60
            statuses: dict[str, int] = {}
            while time.monotonic() < deadline:
                reply = await health.List(health_pb2.HealthListRequest())
                statuses = {k: v.status for k, v in reply.statuses.items()}
                if dependency_health_name(SERVICE_NAME, RERANKER_DEPENDENCY) in statuses:
                    break
                await asyncio.sleep(0.1)
            assert statuses[dependency_health_name(SERVICE_NAME, RERANKER_DEPENDENCY)] == \
                health_pb2.HealthCheckResponse.NOT_SERVING
            assert statuses[dependency_health_name(SERVICE_NAME, "embedder")] == health_pb2.HealthCheckResponse.SERVING
            assert statuses[""] == statuses[SERVICE_NAME] == health_pb2.HealthCheckResponse.SERVING
            found = await stub.Search(rpb.SearchRequest(query="gyroscope calibration", top_k=2,
                                                        filter=common_pb2.SearchFilter(book="b")))
            assert found.results and found.degraded and not found.reranked
            assert "sha256" in found.degraded_reason
            assert found.results[0].chunk.file_path == "p0.md"


async def test_a_cancelled_search_stops_the_cross_encoder(stack: Stack, sample_book: ipb.IngestSummary) -> None:
    scorer = CrossEncoder(workers=1)
    scorer.load()
    retriever = retriever_of(stack, scorer, candidates=30)
    task = asyncio.create_task(retriever.search(QUESTION, 30, None, Filter(book="sample")))
    deadline = time.monotonic() + 30
    while scorer.calls < 2 and time.monotonic() < deadline:  # noqa: ASYNC110 - polling a counter in a thread
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stopped_at = scorer.calls
    await asyncio.sleep(0.5)  # long enough for several more model calls, had it gone on
    assert 2 <= scorer.calls <= stopped_at + 1 < 30
    scorer.close()


async def test_a_caller_that_goes_away_stops_the_servers_reranking(
        stack: Stack, sample_book: ipb.IngestSummary) -> None:
    retriever: Retriever = stack.retrieval.resources.retriever
    scorer = stack.retrieval.resources.reranker
    reranking = retriever.reranking
    assert reranking is not None
    # 50 candidates: ~0.5 s of scoring on the sample book's short sections, past the deadline.
    retriever.reranking = replace(reranking, candidates=50)
    try:
        before = scorer.calls
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            # A question never asked before: none of its pairs are cached.
            async with grpc.aio.insecure_channel(stack.retrieval.address) as ch:
                await rpb_grpc.RetrievalServiceStub(ch).Search(rpb.SearchRequest(
                    query=f"motor driver wiring {uuid.uuid4().hex}", top_k=50, filter=SAMPLE, rerank=True),
                    timeout=0.15)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        await asyncio.sleep(1.0)
        settled = scorer.calls
        await asyncio.sleep(0.5)
    finally:
        retriever.reranking = reranking
    assert scorer.calls == settled  # nothing more runs for the call that went away
    assert 1 <= settled - before < 50  # it had started, and stopped short of every candidate


class FixedScorer:
    """A cross-encoder stand-in that scores every passage alike, to pin the scope rule down."""

    name = "fixed"

    def __init__(self, score: float) -> None:
        self.score = score

    async def ascore(self, query: str, passages: Sequence[str]) -> list[float]:
        return [self.score] * len(passages)


async def test_scope_is_judged_on_the_cross_encoders_evidence(stack: Stack, sample_book: ipb.IngestSummary) -> None:
    # A keyword question whose best dense similarity (0.25) is under MiniLM's floor: refused by the
    # fused search, answered once the cross-encoder reads the section that holds it.
    off = await search(stack, "XSHUT pin", top_k=5, rerank=False)
    on = await search(stack, "XSHUT pin", top_k=5, rerank=True)
    assert off.out_of_scope and not on.out_of_scope and on.reranked
    # The two sections that name the pin (the sensors' wiring and the appendix's pin map) lead.
    assert {r.chunk.file_path for r in on.results[:2]} == {"sensors/distance-sensors.md", "appendix.md"}
    assert max(r.rerank_score for r in on.results) > RERANK_SCOPE_LOGIT
    far = await search(stack, "What is the capital of Australia?", top_k=5, rerank=True)
    assert far.out_of_scope and far.reranked and max(r.rerank_score for r in far.results) < RERANK_SCOPE_LOGIT


async def test_the_reranked_scope_rule(stack: Stack, sample_book: ipb.IngestSummary) -> None:
    flt = Filter(book="sample")
    weak = retriever_of(stack, FixedScorer(RERANK_SCOPE_LOGIT - 0.1))
    assert (await weak.search(QUESTION, 5, None, flt)).out_of_scope  # the book's own topic, no answering passage
    strong = retriever_of(stack, FixedScorer(5.0))
    assert not (await strong.search(QUESTION, 5, None, flt)).out_of_scope
    # The named-term rule still applies: a middling match on a name the book never mentions.
    question = "How do I set staleTime for useQuery in TanStack Query?"
    named = await strong.search(question, 5, None, flt)
    assert named.reranked and named.best_similarity < strong.named_term_ceiling and named.out_of_scope
    # ... and only that rule: the same question without its names is answered on this evidence.
    assert not (await strong.search("How do I set the time for a query?", 5, None, flt)).out_of_scope


async def test_both_models_weak_at_once_is_out_of_scope(stack: Stack, sample_book: ipb.IngestSummary) -> None:
    # A middling cross-encoder score (above the threshold, under its own 0 boundary) refuses a
    # question whose nearest chunk is under the dense floor, and answers one near the book.
    flt = Filter(book="sample")
    lukewarm = retriever_of(stack, FixedScorer(RERANK_RELEVANT_LOGIT - 5.0))
    foreign = await lukewarm.search("What is the difference between TCP and UDP?", 5, None, flt)
    assert foreign.reranked and foreign.best_similarity < lukewarm.out_of_scope_threshold
    assert foreign.out_of_scope
    near = await lukewarm.search(QUESTION, 5, None, flt)
    assert near.best_similarity >= lukewarm.out_of_scope_threshold and not near.out_of_scope
    # A confident cross-encoder overrules the floor.
    sure = retriever_of(stack, FixedScorer(RERANK_RELEVANT_LOGIT + 1.0))
    assert not (await sure.search("What is the difference between TCP and UDP?", 5, None, flt)).out_of_scope


async def test_a_name_the_book_mentions_only_elsewhere_is_no_evidence(
        stack: Stack, sample_book: ipb.IngestSummary) -> None:
    # The book names Hindi once, on its translations page; a question about the status light
    # that names it finds sections that never do, so what they say is not about Hindi.
    flt = Filter(book="sample")
    question = NAMED_ELSEWHERE
    async with stack.retrieval.resources.index.reading("sample") as view:
        assert await unknown_term(view, question, "sample") is None  # the book-wide rule lets it through
    strong = retriever_of(stack, FixedScorer(5.0), candidates=5)
    named = await strong.search(question, 5, None, flt)
    assert named.reranked and named.best_similarity < strong.named_term_ceiling
    assert not any(mentions(r.chunk.content, "Hindi") for r in named.results)
    assert named.out_of_scope
    # Without the name the same evidence answers; a name the evidence holds is no bar either
    # (the parts list names the nylon standoffs).
    assert not (await strong.search(question.replace("Hindi ", ""), 5, None, flt)).out_of_scope
    wiring = await strong.search("How do I wire the distance sensors with Nylon standoffs?", 5, None, flt)
    assert wiring.best_similarity < strong.named_term_ceiling and not wiring.out_of_scope


async def test_a_name_written_as_code_that_the_book_never_writes_is_out_of_scope(
        stack: Stack, sample_book: ipb.IngestSummary) -> None:
    """Near-domain questions name a neighbouring tool's API (`cy.mount`, `mkdocs.yml`) and read
    like the book, however close: a code name none of the candidates and none of the book's
    chunks BM25 finds for it holds makes them out of scope."""
    flt = Filter(book="sample")
    strong = retriever_of(stack, FixedScorer(5.0))
    foreign = await strong.search("How do I call sensor.set_range on the distance sensors?", 5, None, flt)
    assert foreign.reranked and foreign.out_of_scope
    own = await strong.search("How do I call sensor.set_address on the distance sensors?", 5, None, flt)
    assert not own.out_of_scope
    # A code name the candidates lack but the book writes elsewhere (the appendix's rover.toml)
    # is the book's own: the question is answered from what was found.
    question = "Which wires of the distance sensors go where, as my rover.toml says?"
    elsewhere = await strong.search(question, 5, None, flt)
    assert absent_code(question, [passage_text(r.chunk.heading_path, r.chunk.content) for r in elsewhere.results])
    assert not elsewhere.out_of_scope


def test_code_terms_are_dotted_names_and_versioned_packages() -> None:
    assert code_terms("Set up enzyme-adapter-react-16 with Enzyme.configure, e.g. in setup.js?") == [
        "Enzyme.configure", "setup.js", "enzyme-adapter-react-16"]
    assert code_terms("Is it up-to-date with version 2.0? I read i.e. the docs.") == []
    # A question's dotted name is the book's when the book has its identifiers.
    assert mentions_code("The resolver's context has fileSystemLookup.", "context.fileSystemLookup")
    assert not mentions_code("Mount it with cy.get first.", "cy.mount")


def test_a_named_term_is_looked_for_as_a_whole_word_in_any_case() -> None:
    passages = ["Won the world cup in 2022.", "Pin 4 drives the VUE-meter."]
    assert absent_term("Who won the 2022 FIFA World Cup?", passages) is None
    assert absent_term("Does it run on Vue?", passages) is None  # "VUE-meter": a whole word, any case
    assert absent_term("Does it run on Pinia?", passages) == "Pinia"
    assert absent_term("Is Cupertino supported?", passages) == "Cupertino"  # not a prefix of "cup"
    assert absent_term("Which GPIO pin?", []) is None  # no named term, nothing to miss


async def test_chat_leaves_reranking_to_the_retrieval_default(stack: Stack, sample_book: ipb.IngestSummary) -> None:
    from services.chat.clients import RetrievalSearch

    sent: list[rpb.SearchRequest] = []
    async with grpc.aio.insecure_channel(stack.retrieval.address) as ch:
        search_client = RetrievalSearch(ch)
        real = search_client.stub.Search

        async def spy(request: rpb.SearchRequest, **kwargs: object) -> rpb.SearchResponse:
            sent.append(request)
            reply: rpb.SearchResponse = await real(request, **kwargs)
            return reply

        search_client.stub.Search = spy
        outcome = await search_client.search(QUESTION, "sample", 5)
    assert len(sent) == 1 and not sent[0].HasField("rerank")
    reranked = await search(stack, QUESTION, top_k=5, rerank=True)
    assert [e.chunk_id for e in outcome.evidence] == ids(reranked)


class FailingScorer:
    """A cross-encoder whose runtime fails mid-search (not a file check)."""

    name = "failing"

    async def ascore(self, query: str, passages: Sequence[str]) -> list[float]:
        raise RuntimeError("onnxruntime: out of memory")


async def test_a_reranker_failing_at_run_time_also_keeps_the_fused_order(
        stack: Stack, sample_book: ipb.IngestSummary) -> None:
    retriever = retriever_of(stack, FailingScorer())
    flt = Filter(book="sample")
    outcome = await retriever.search(QUESTION, 5, None, flt)
    fused = await retriever.search(QUESTION, 5, None, flt, rerank=False)
    assert outcome.degraded and "RuntimeError: onnxruntime: out of memory" in outcome.degraded_reason
    assert [r.chunk.chunk_id for r in outcome.results] == [r.chunk.chunk_id for r in fused.results]
