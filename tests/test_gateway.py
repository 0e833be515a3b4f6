"""The HTTP gateway on a real uvicorn server, in front of the real services."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import grpc
import httpx
import pytest
from lectern.common.v1 import common_pb2
from lectern.sessions.v1 import sessions_service_pb2 as spb
from lectern.sessions.v1 import sessions_service_pb2_grpc as spb_grpc
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.conftest import ADMIN, BOOK, Stack, ingest

pytestmark = pytest.mark.asyncio(loop_scope="session")


def parse_sse(text: str) -> list[tuple[str, dict[str, object]]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n") if not line.startswith(":"))
        events.append((lines["event"], json.loads(lines["data"])))
    return events


async def test_healthz_reports_every_service(gateway: str) -> None:
    async with httpx.AsyncClient(base_url=gateway) as client:
        for _ in range(600):  # the first health probes wait for the embedding model to load
            reply = await client.get("/healthz")
            if reply.status_code == 200:
                break
            await asyncio.sleep(0.1)
    body = reply.json()
    assert reply.status_code == 200, body
    assert body["status"] == "ok" and body["llm"] == "extractive"
    assert body["llm_answers"] is True and "llm_error" not in body  # the extractive answerer is local
    assert set(body["services"]) == {"retrieval", "sessions", "ingest", "chat"}
    assert reply.headers["x-request-id"] and reply.headers["x-content-type-options"] == "nosniff"


async def test_chat_streams_a_cited_answer(gateway: str, ingested: dict[str, object]) -> None:
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        reply = await client.post("/v1/chat", json={"message": "What PWM frequency should the motor driver use?"})
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/event-stream")
    assert reply.headers["x-accel-buffering"] == "no"
    events = parse_sse(reply.text)
    names = [name for name, _ in events]
    assert names[0] == "meta" and names[-1] == "done" and "token" in names
    sources = next(data for name, data in events if name == "sources")["sources"]
    assert sources[0]["url"] == "/docs/motion/motor-control#pwm-frequency"  # type: ignore[index]
    done = events[-1][1]
    assert done["grounded"] is True and "20 kHz" in str(done["answer"])


async def test_chat_json_and_conversation_round_trip(gateway: str, ingested: dict[str, object]) -> None:
    async with httpx.AsyncClient(base_url=gateway, timeout=30, headers={"Accept": "application/json"}) as client:
        first = (await client.post("/v1/chat", json={"message": "How do I flash MicroPython?"})).json()
        assert first["sources"] and first["grounded"]
        token = {"X-Conversation-Token": first["conversation_token"]}
        follow = await client.post("/v1/chat", headers=token,
                                   json={"message": "What if it does not appear?",
                                         "conversation_id": first["conversation_id"]})
        assert follow.status_code == 200 and follow.json()["conversation_id"] == first["conversation_id"]
        for _ in range(50):
            convo = await client.get(f"/v1/conversations/{first['conversation_id']}", headers=token)
            if len(convo.json()["messages"]) == 4:
                break
            await asyncio.sleep(0.1)
        assert [m["role"] for m in convo.json()["messages"]] == ["user", "assistant"] * 2
        # The conversation's own header (sessions' GetConversation): its book and when it was last used.
        header = convo.json()
        created, active = (datetime.fromisoformat(header[k]) for k in ("created_at", "last_active_at"))
        assert header["book"] == "default" and created < active <= datetime.now(UTC)
        feedback = await client.post("/v1/feedback", headers=token, json={
            "conversation_id": first["conversation_id"], "message_id": first["message_id"], "rating": "up"})
        assert feedback.status_code == 204
        wrong = await client.get(f"/v1/conversations/{first['conversation_id']}",
                                 headers={"X-Conversation-Token": "nope"})
        assert wrong.status_code == 404 and wrong.json()["error"]["code"] == "NOT_FOUND"
        assert (await client.delete(f"/v1/conversations/{first['conversation_id']}", headers=token)).status_code == 204
        assert (await client.get(f"/v1/conversations/{first['conversation_id']}", headers=token)).status_code == 404


async def test_search_contract(gateway: str, ingested: dict[str, object]) -> None:
    async with httpx.AsyncClient(base_url=gateway) as client:
        reply = await client.post("/v1/search", json={"query": "A* heuristic", "top_k": 3,
                                                      "filters": {"module": "motion"}})
    body = reply.json()
    assert reply.status_code == 200 and set(body) == {"results", "out_of_scope", "degraded", "degraded_reason",
                                                      "reranked"}
    assert body["results"][0]["url"] == "/docs/motion/path-planning#a-search"
    assert set(body["results"][0]) == {"chunk_id", "file_path", "heading_path", "section_depth", "url", "content",
                                       "score", "version", "locale", "dense_similarity", "rerank_score"}


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "code"), [
    ("post", "/v1/search", {"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 400,
     "INVALID_ARGUMENT"),
    ("post", "/v1/search", {"json": {"query": 5}}, 400, "INVALID_ARGUMENT"),
    ("post", "/v1/search", {"json": {"query": "x", "top_k": 0}}, 400, "INVALID_ARGUMENT"),
    ("post", "/v1/search", {"json": {"query": "x", "filters": {"colour": "red"}}}, 400, "INVALID_ARGUMENT"),
    ("post", "/v1/chat", {"json": {}}, 400, "INVALID_ARGUMENT"),
    ("post", "/v1/chat", {"json": {"message": "hi", "mode": "selection"}}, 400, "INVALID_ARGUMENT"),
    ("post", "/v1/chat", {"content": b"x" * 70_000, "headers": {"Content-Type": "application/json"}}, 413,
     "PAYLOAD_TOO_LARGE"),
    ("post", "/v1/ingest", {"json": {"source_dir": "/"}}, 401, "UNAUTHENTICATED"),
    ("post", "/v1/ingest", {"json": {"source_dir": "/"}, "headers": {"Authorization": "Bearer wrong"}}, 403,
     "PERMISSION_DENIED"),
    ("post", "/v1/ingest", {"json": {"source_dir": "/etc"}, "headers": {"Authorization": f"Bearer {ADMIN}"}}, 403,
     "PERMISSION_DENIED"),
    ("get", "/v1/conversations/abc", {}, 401, "UNAUTHENTICATED"),
    ("get", "/v1/analytics", {}, 401, "UNAUTHENTICATED"),
    ("get", "/v1/analytics?days=0", {"headers": {"Authorization": f"Bearer {ADMIN}"}}, 400,
     "INVALID_ARGUMENT"),
    ("get", "/nowhere", {}, 404, "NOT_FOUND"),
    # A book the index does not hold (a widget's book id mistyped) is named, not answered as unknown.
    ("post", "/v1/search", {"json": {"query": "gyroscope", "book": "robotics"}}, 404, "NOT_FOUND"),
    ("post", "/v1/chat", {"json": {"message": "How do I calibrate the gyroscope?", "book": "robotics"},
                          "headers": {"Accept": "application/json"}}, 404, "NOT_FOUND"),
])
async def test_bad_requests_get_json_errors(gateway: str, method: str, path: str, kwargs: dict[str, object],
                                            status: int, code: str) -> None:
    async with httpx.AsyncClient(base_url=gateway) as client:
        reply = await getattr(client, method)(path, **kwargs)
    assert reply.status_code == status, reply.text
    assert reply.json()["error"]["code"] == code


async def test_ingest_streams_progress_then_a_summary(gateway: str, ingested: dict[str, object]) -> None:
    async with httpx.AsyncClient(base_url=gateway, timeout=120) as client:
        reply = await client.post("/v1/ingest", json={"source_dir": str(BOOK), "dry_run": True},
                                  headers={"Authorization": f"Bearer {ADMIN}"})
    events = parse_sse(reply.text)
    assert events[-1][0] == "summary" and events[-1][1]["chunks_unchanged"] == ingested["chunks_new"]
    assert {name for name, _ in events[:-1]} == {"progress"}


async def test_openapi_is_served() -> None:
    settings = GatewaySettings("127.0.0.1", 0, "", 1024, {}, 1.0, "INFO", "")
    schema = create_app(settings).openapi()
    assert {"/healthz", "/v1/search", "/v1/chat", "/v1/feedback", "/v1/ingest"} <= set(schema["paths"])


async def test_one_trace_spans_gateway_chat_retrieval_and_sessions(gateway: str, ingested: dict[str, object],
                                                                   spans: InMemorySpanExporter) -> None:
    spans.clear()
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        reply = await client.post("/v1/chat", json={"message": "How does odometry work?"},
                                  headers={"Accept": "application/json", "X-Request-ID": "trace-me"})
    assert reply.headers["x-request-id"] == "trace-me"
    expected = {"lectern.chat.v1.ChatService", "lectern.retrieval.v1.RetrievalService",
                "lectern.sessions.v1.SessionsService"}
    deadline = time.monotonic() + 10
    while True:  # the turn is recorded off the critical path: its span ends after the reply
        finished = spans.get_finished_spans()
        trace_id = next(s for s in finished if s.name == "POST /v1/chat").context.trace_id
        services = {str(s.attributes.get("rpc.service")) for s in finished
                    if s.context.trace_id == trace_id and s.attributes and s.kind.name == "SERVER"}
        if expected <= services or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.02)
    assert expected <= services


async def seed_turn(sessions: spb_grpc.SessionsServiceStub, book: str, question: str, total_ms: float,
                    out_of_scope: bool = False) -> tuple[str, str, str]:
    """One answered question in a conversation of its own: (conversation id, token, answer id)."""
    created = await sessions.CreateConversation(spb.CreateConversationRequest(book=book))
    source = common_pb2.SourceReference(n=1, chunk_id="c1", file_path="motion/pid.md", heading_path=["PID", "Tuning"],
                                        url="/docs/pid#tuning", score=0.9)
    reply = await sessions.AppendTurn(spb.AppendTurnRequest(
        conversation_id=created.conversation_id, turn_id=str(uuid.uuid4()), question=question,
        answer="I couldn't find this in the book." if out_of_scope else "Tune the gain [1].",
        sources=[] if out_of_scope else [source], out_of_scope=out_of_scope, grounded=not out_of_scope,
        latencies=[spb.StageLatency(stage="total", ms=total_ms)]))
    return created.conversation_id, created.conversation_token, reply.answer_message_id


async def test_authors_get_analytics_of_what_readers_asked(gateway: str, stack: Stack) -> None:
    book = f"analytics-{uuid.uuid4().hex[:8]}"  # a book of its own: the counts are exact
    async with grpc.aio.insecure_channel(stack.sessions.address) as channel:
        sessions = spb_grpc.SessionsServiceStub(channel)
        await seed_turn(sessions, book, "How do I tune PID?", 40)
        await seed_turn(sessions, book, "how do I tune pid", 60)
        await seed_turn(sessions, book, "What is the weather?", 20, out_of_scope=True)
        down = await seed_turn(sessions, book, "Why does Rover curve?", 80)
        up = await seed_turn(sessions, book, "How fast is the PID loop?", 50)
    async with httpx.AsyncClient(base_url=gateway, timeout=60) as client:
        for (cid, token, message_id), rating, comment in ((down, "down", "wrong section"), (up, "up", None)):
            rated = await client.post("/v1/feedback", headers={"X-Conversation-Token": token}, json={
                "conversation_id": cid, "message_id": message_id, "rating": rating, "comment": comment})
            assert rated.status_code == 204, rated.text
        reply = await client.get("/v1/analytics", params={"days": 7, "book": book},
                                 headers={"Authorization": f"Bearer {ADMIN}"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert [d["questions"] for d in body["questions_per_day"]] == [5]
    assert body["top_questions"][0] == {"text": "how do i tune pid", "count": 2}
    assert body["unanswered"] == [{"text": "what is the weather", "count": 1}]
    assert body["downvoted"] == [{"question": "Why does Rover curve?", "answer": "Tune the gain [1].",
                                  "comment": "wrong section", "source_urls": ["/docs/pid#tuning"]}]
    assert body["most_cited"] == [{"file_path": "motion/pid.md", "heading": "PID > Tuning", "url": "/docs/pid#tuning",
                                   "count": 4}]
    total = next(s for s in body["latency"] if s["stage"] == "total")
    assert total["p50_ms"] == pytest.approx(50, rel=0.01) and total["p95_ms"] == pytest.approx(80, rel=0.01)
    assert (body["upvotes"], body["downvotes"], body["feedback_ratio"]) == (1, 1, 0.5)


async def test_authors_can_run_retention(gateway: str, stack: Stack, postgres_url: str) -> None:
    async with grpc.aio.insecure_channel(stack.sessions.address) as channel:
        stale = await spb_grpc.SessionsServiceStub(channel).CreateConversation(
            spb.CreateConversationRequest(book="retention"))
    conn = await asyncpg.connect(postgres_url)
    try:  # unused for longer than LECTERN_RETENTION_DAYS (30 by default)
        await conn.execute("UPDATE conversations SET last_active_at = now() - interval '31 days' WHERE id = $1",
                           uuid.UUID(stale.conversation_id))
    finally:
        await conn.close()
    async with httpx.AsyncClient(base_url=gateway, timeout=60) as client:
        retention = await client.post("/v1/retention/run", headers={"Authorization": f"Bearer {ADMIN}"})
        assert retention.status_code == 200 and retention.json()["conversations_deleted"] == 1
        gone = await client.get(f"/v1/conversations/{stale.conversation_id}",
                                headers={"X-Conversation-Token": stale.conversation_token})
    assert gone.status_code == 404


async def test_authors_can_remove_a_book(gateway: str, stack: Stack, home: Path) -> None:
    folder = home / "books" / "to-remove"
    folder.mkdir(parents=True)
    (folder / "intro.md").write_text("# Intro\n\nThe flux capacitor needs 1.21 gigawatts.\n")
    book = "to-remove"
    added = await ingest(stack, folder, book)
    admin = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(base_url=gateway, timeout=60) as client:
        query = {"query": "flux capacitor gigawatts", "book": book}
        assert (await client.post("/v1/search", json=query)).json()["results"]
        assert (await client.delete(f"/v1/books/{book}")).status_code == 401
        removed = await client.delete(f"/v1/books/{book}", headers=admin)
        assert removed.status_code == 200 and removed.json() == {"book": book, "chunks_deleted": added.chunks_new}
        gone = await client.post("/v1/search", json=query)  # a book no longer held is a 404, not an empty answer
        assert gone.status_code == 404 and "to-remove" in gone.json()["error"]["message"]
        again = await client.delete(f"/v1/books/{book}", headers=admin)
        assert again.json()["chunks_deleted"] == 0  # nothing left, and no error: the book is gone either way
