"""Poison inputs and the turn record, end to end on the real stack: text Postgres cannot store
(NUL, lone surrogates) is refused with a field violation where it enters (gateway, chat,
sessions) and never reaches the database; a turn sessions rejects is dropped and counted
instead of blocking every later turn; feedback sent the moment ``done`` arrives always finds
its turn."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import grpc
import httpx
import pytest
from lectern.chat.v1 import chat_service_pb2 as cpb
from lectern.chat.v1 import chat_service_pb2_grpc as cpb_grpc
from lectern.common.v1 import common_pb2
from lectern.sessions.v1 import sessions_service_pb2 as spb
from lectern.sessions.v1 import sessions_service_pb2_grpc as spb_grpc
from prometheus_client.parser import text_string_to_metric_families

from records.source import Source
from records.turn import Turn
from runtime import errors
from runtime.status import from_rpc_error
from services.chat.ports import TurnRecord
from services.sessions.database import open_pool
from services.sessions.store import ConversationStore
from tests.conftest import ADMIN, Stack

pytestmark = pytest.mark.asyncio(loop_scope="session")

JSON = {"Accept": "application/json"}
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}


def fields(reply: httpx.Response) -> set[str]:
    return {d["field"] for d in reply.json()["error"]["details"]}


async def chat_json(client: httpx.AsyncClient, message: str, **extra: Any) -> dict[str, Any]:
    reply = await client.post("/v1/chat", json={"message": message, **extra}, headers=JSON)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


async def messages(client: httpx.AsyncClient, reply: dict[str, Any]) -> list[dict[str, Any]]:
    got = await client.get(f"/v1/conversations/{reply['conversation_id']}",
                           headers={"X-Conversation-Token": reply["conversation_token"]})
    assert got.status_code == 200, got.text
    listed: list[dict[str, Any]] = got.json()["messages"]
    return listed


async def chat_turn_counts(client: httpx.AsyncClient) -> dict[str, float]:
    """lectern_chat_turns_total by outcome, as the gateway's /metrics shows it."""
    reply = await client.get("/metrics")
    assert reply.status_code == 200
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            if sample.name == "lectern_chat_turns_total":
                counts[sample.labels["outcome"]] = sample.value
            elif sample.name == "lectern_chat_turns_pending":
                counts["pending"] = sample.value
    return counts


async def test_a_nul_message_is_refused_and_the_chats_after_it_are_recorded(
        gateway: str, ingested: dict[str, object]) -> None:
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        refused = await client.post("/v1/chat", json={"message": "gyro\u0000scope"}, headers=JSON)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["code"] == "INVALID_ARGUMENT" and fields(refused) == {"message"}
        # Later readers are recorded, at once: the turn is written before `done`.
        for question in ("How do I calibrate the gyroscope?", "What PWM frequency should the motor driver use?"):
            reply = await chat_json(client, question)
            listed = await messages(client, reply)
            assert [m["role"] for m in listed] == ["user", "assistant"]
            assert listed[1]["message_id"] == reply["message_id"]


@pytest.mark.parametrize("field", ["message", "book", "conversation_id", "page.url"])
async def test_chat_over_grpc_refuses_a_nul_in_any_text_field(stack: Stack, field: str) -> None:
    request = cpb.ChatRequest(message="How do I calibrate the gyroscope?", conversation_id=str(uuid.uuid4()),
                              conversation_token="t", page=cpb.PageContext(url="/docs/a", title="A"))
    owner, _, name = field.rpartition(".")
    target = getattr(request, owner) if owner else request
    setattr(target, name, getattr(target, name) + "\x00")
    async with grpc.aio.insecure_channel(stack.chat.address) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in cpb_grpc.ChatServiceStub(ch).Chat(request):
                pass
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    err = from_rpc_error(caught.value)
    assert isinstance(err, errors.InvalidArgument) and [v.field for v in err.violations] == [field]


async def test_a_nul_in_the_analytics_book_is_a_400(gateway: str) -> None:
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        reply = await client.get("/v1/analytics", params={"book": "gyro\x00scope"}, headers=ADMIN_HEADERS)
        assert reply.status_code == 400, reply.text
        assert reply.json()["error"]["code"] == "INVALID_ARGUMENT"
        assert any(f.endswith("book") for f in fields(reply))
        assert (await client.get("/v1/analytics", params={"book": "gyroscope"}, headers=ADMIN_HEADERS)
                ).status_code == 200


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/v1/chat", '{"message": "gyro\\ud800scope"}', "message"),
    ("/v1/chat", '{"message": "gyro\\u0000scope"}', "message"),
    ("/v1/chat", '{"message": "ok", "book": "b\\udfff"}', "book"),
    ("/v1/chat", '{"message": "ok", "mode": "selection", "context": "\\u0000"}', "context"),
    ("/v1/chat", '{"message": "ok", "page": {"url": "/docs", "title": "\\ud800"}}', "page.title"),
    ("/v1/search", '{"query": "gyro\\ud800"}', "query"),
    ("/v1/search", '{"query": "gyro", "filters": {"module": "\\u0000"}}', "filters.module"),
    ("/v1/feedback", '{"conversation_id": "c", "message_id": "m", "rating": "up", "comment": "\\ud800"}',
     "comment"),
    ("/v1/ingest", '{"source_dir": "/tmp/book\\u0000"}', "source_dir"),
])
async def test_unstorable_text_in_a_json_body_is_a_400_naming_the_field(gateway: str, path: str, body: str,
                                                                        field: str) -> None:
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        reply = await client.post(path, content=body.encode(), headers={
            "Content-Type": "application/json", "X-Conversation-Token": "t", **JSON, **ADMIN_HEADERS})
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["code"] == "INVALID_ARGUMENT"
    assert field in fields(reply), reply.text
    assert "NUL" in reply.text


async def test_a_nul_in_a_conversation_id_is_a_400(gateway: str) -> None:
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        reply = await client.get("/v1/conversations/ab%00cd", headers={"X-Conversation-Token": "t"})
    assert reply.status_code == 400, reply.text
    assert any(f.endswith("conversation_id") for f in fields(reply))


async def test_sessions_refuses_unstorable_text_in_every_field_it_stores(stack: Stack) -> None:
    async with grpc.aio.insecure_channel(stack.sessions.address) as ch:
        stub = spb_grpc.SessionsServiceStub(ch)
        created = await stub.CreateConversation(spb.CreateConversationRequest(book="poison"))
        good = spb.AppendTurnRequest(
            conversation_id=created.conversation_id, turn_id="t", question="Q?", answer="A [1].",
            sources=[common_pb2.SourceReference(n=1, chunk_id="c1", file_path="a.md", heading_path=["A", "B"],
                                                url="/docs/a")],
            latencies=[spb.StageLatency(stage="total", ms=1.0)])
        cases: list[tuple[str, Any]] = [
            ("question", lambda r: setattr(r, "question", "gyro\x00scope")),
            ("answer", lambda r: setattr(r, "answer", "\x00")),
            ("rewritten_query", lambda r: setattr(r, "rewritten_query", "q\x00")),
            ("turn_id", lambda r: setattr(r, "turn_id", "t\x00")),
            ("sources[0].url", lambda r: setattr(r.sources[0], "url", "/docs/\x00")),
            ("sources[0].heading_path[1]", lambda r: r.sources[0].heading_path.__setitem__(1, "B\x00")),
            ("latencies[0].stage", lambda r: setattr(r.latencies[0], "stage", "to\x00tal")),
        ]
        for field, poison in cases:
            request = spb.AppendTurnRequest()
            request.CopyFrom(good)
            poison(request)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.AppendTurn(request)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (field, caught.value.details())
            err = from_rpc_error(caught.value)
            assert isinstance(err, errors.InvalidArgument) and [v.field for v in err.violations] == [field]
        for call, bad, field in [
            (stub.CreateConversation, spb.CreateConversationRequest(book="b\x00"), "book"),
            (stub.Analytics, spb.AnalyticsRequest(days=7, book="b\x00"), "book"),
            (stub.RecordFeedback, spb.RecordFeedbackRequest(
                conversation_id=created.conversation_id, conversation_token=created.conversation_token,
                message_id=str(uuid.uuid4()), rating=spb.RATING_DOWN, comment="bad\x00"), "comment"),
        ]:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call(bad)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert [v.field for v in from_rpc_error(caught.value).violations] == [field]  # type: ignore[attr-defined]
        # The good turn is still taken: nothing above was half-written.
        await stub.AppendTurn(good)
        listed = await stub.ListMessages(spb.ListMessagesRequest(
            conversation_id=created.conversation_id, conversation_token=created.conversation_token))
        assert [m.content for m in listed.messages] == ["Q?", "A [1]."]


async def test_the_store_maps_what_postgres_refuses_to_invalid_argument(postgres_url: str, home: Any) -> None:
    """Behind the servicer's checks: a value Postgres refuses is the caller's error, and one
    such turn in a batch does not fail the others."""
    async with open_pool(postgres_url, home, 1, 2, 5000) as pool:
        store = ConversationStore(pool)
        with pytest.raises(errors.InvalidArgument) as caught:
            await store.create("b\x00")
        assert caught.value.violations[0].field == "book"
        cid, token = await store.create("poison")
        bad = Turn(cid, "bad", "gyro\x00scope", "A.")
        with pytest.raises(errors.InvalidArgument):
            await store.append_turn(bad)
        bad_source = Turn(cid, "source", "Q?", "A.", sources=[Source(1, "c", "a.md", ("H",), "/docs/\x00", 1.0)])
        bad_stage = Turn(cid, "stage", "Q?", "A.", latencies_ms={"to\x00tal": 1.0})  # jsonb refuses \u0000
        results = await store.append_turns([bad, Turn(cid, "good", "Fine?", "Fine."), bad_source, bad_stage])
        assert [type(r) for r in results] == [errors.InvalidArgument, tuple, errors.InvalidArgument,
                                              errors.InvalidArgument]
        assert isinstance(results[1], tuple)
        listed, _ = await store.list_messages(cid, token, 10, "")
        assert [m.content for m in listed] == ["Fine?", "Fine."]
        with pytest.raises(errors.InvalidArgument) as caught:
            await store.record_feedback(cid, token, results[1][1], 2, "bad\x00")
        assert caught.value.violations[0].field == "comment"


async def test_a_turn_sessions_rejects_is_dropped_and_counted_and_later_turns_are_written(
        stack: Stack, gateway: str, ingested: dict[str, object]) -> None:
    recorder = stack.chat.resources.recorder
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        before = await chat_turn_counts(client)
        async with grpc.aio.insecure_channel(stack.sessions.address) as ch:
            stub = spb_grpc.SessionsServiceStub(ch)
            created = await stub.CreateConversation(spb.CreateConversationRequest(book="poison"))
            cid, token = created.conversation_id, created.conversation_token
            # A turn that reached the recorder from before the checks (or any turn sessions will
            # never take), then ordinary ones behind it.
            recorder.submit(TurnRecord(cid, "poisoned", "gyro\x00scope", "A.", "general", "", []))
            for n in range(3):
                recorder.submit(TurnRecord(cid, f"turn-{n}", f"Question {n}?", f"Answer {n}.", "general", "", []))
            await asyncio.wait_for(recorder.drain(10.0), 15)
            assert not recorder.queue
            listed = await stub.ListMessages(spb.ListMessagesRequest(conversation_id=cid, conversation_token=token))
        assert [m.content for m in listed.messages] == [
            text for n in range(3) for text in (f"Question {n}?", f"Answer {n}.")]
        after = await chat_turn_counts(client)
    assert after["rejected"] - before.get("rejected", 0) == 1
    assert after["recorded"] - before.get("recorded", 0) >= 3
    assert after["pending"] == 0


async def sse_events(response: httpx.Response) -> Any:
    """Yields (event, data) as the frames arrive."""
    buffer = ""
    async for chunk in response.aiter_text():
        buffer += chunk
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            lines = dict(line.split(": ", 1) for line in block.split("\n") if line and not line.startswith(":"))
            if "event" in lines:
                yield lines["event"], json.loads(lines["data"])


async def test_feedback_sent_the_moment_done_arrives_always_finds_its_turn(
        gateway: str, ingested: dict[str, object]) -> None:
    questions = ["How do I calibrate the gyroscope?", "What PWM frequency should the motor driver use?",
                 "How do I tune the PID controller?", "How do I flash MicroPython?"]
    gaps: list[float] = []

    async def one(client: httpx.AsyncClient, n: int) -> int:
        meta: dict[str, Any] = {}
        last = time.perf_counter()
        async with client.stream("POST", "/v1/chat", json={"message": questions[n % len(questions)]}) as response:
            assert response.status_code == 200
            async for event, data in sse_events(response):
                if event == "meta":
                    meta = data
                elif event == "done":
                    gaps.append(time.perf_counter() - last)
                    # Same event-loop turn as `done`: no await between receiving it and sending this.
                    feedback = asyncio.ensure_future(client.post("/v1/feedback", json={
                        "conversation_id": meta["conversation_id"], "message_id": meta["message_id"],
                        "rating": "up" if n % 2 else "down"},
                        headers={"X-Conversation-Token": meta["conversation_token"]}))
                    break
                last = time.perf_counter()
        return (await feedback).status_code

    async with httpx.AsyncClient(base_url=gateway, timeout=60) as client:
        limit = asyncio.Semaphore(8)

        async def bounded(n: int) -> int:
            async with limit:
                return await one(client, n)

        codes = await asyncio.gather(*(bounded(n) for n in range(64)))
    assert codes == [204] * 64
    gaps.sort()
    print(f"\nlast event -> done at the client, ms: p50 {gaps[32] * 1000:.1f} p95 {gaps[60] * 1000:.1f}")
