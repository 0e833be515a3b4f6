"""The HTTP gateway on a real uvicorn server, in front of the real services."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.conftest import ADMIN, BOOK

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
    await asyncio.sleep(1.0)  # the turn is recorded off the critical path
    finished = spans.get_finished_spans()
    root = next(s for s in finished if s.name == "POST /v1/chat")
    trace_id = root.context.trace_id
    services = {str(s.attributes.get("rpc.service")) for s in finished
                if s.context.trace_id == trace_id and s.attributes and s.kind.name == "SERVER"}
    assert {"lectern.chat.v1.ChatService", "lectern.retrieval.v1.RetrievalService",
            "lectern.sessions.v1.SessionsService"} <= services


async def test_authors_get_analytics_and_can_run_retention(gateway: str, ingested: dict[str, object]) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(base_url=gateway, timeout=60) as client:
        await client.post("/v1/chat", json={"message": "How do I tune the PID controller?", "book": "gw"},
                          headers={"Accept": "application/json"})
        reply = await client.get("/v1/analytics", params={"days": 7}, headers=admin)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert {"questions_per_day", "top_questions", "unanswered", "most_cited", "latency",
                "feedback_ratio"} <= set(body)
        retention = await client.post("/v1/retention/run", headers=admin)
        assert retention.status_code == 200 and "conversations_deleted" in retention.json()
