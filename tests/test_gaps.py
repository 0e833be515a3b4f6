"""The gap report: seeded conversations with known topics, written through sessions' AppendTurn
and RecordFeedback, come back grouped into those topics, with the closest sections; bad input
gets a 4xx JSON body; the page and the CLI work over real HTTP."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import grpc
import httpx
import pytest
import pytest_asyncio
from lectern.retrieval.v1 import retrieval_service_pb2 as rpb
from lectern.retrieval.v1 import retrieval_service_pb2_grpc as rpb_grpc
from lectern.sessions.v1 import sessions_service_pb2 as spb
from lectern.sessions.v1 import sessions_service_pb2_grpc as spb_grpc

from cli.gaps import fetch_gaps, gaps_command, render
from gateway.gap_report import group
from records.gap import GapQuestion
from tests.conftest import ADMIN, BOOK, Stack, ingest

pytestmark = pytest.mark.asyncio(loop_scope="session")
GAP_BOOK = "gaps-book"
AUTH = {"Authorization": f"Bearer {ADMIN}"}

# Three topics the book does not cover, each asked five ways, and unrelated noise.
TOPICS = {
    "deploy": ["How do I deploy the site to Kubernetes?", "Deploying my docs on a Kubernetes cluster",
               "Can I run this on k8s? How to deploy to Kubernetes",
               "What's the way to deploy to a Kubernetes cluster?", "kubernetes deployment instructions"],
    "sso": ["How do I set up single sign-on with SAML?", "Configure SAML SSO login",
            "Does it support SAML single sign-on?", "Setting up SSO using SAML identity provider",
            "how to enable saml sso authentication"],
    "pdf": ["Can I export the book as a PDF?", "How to export the documentation to PDF",
            "Generate a PDF version of the docs", "Is there a PDF export of the book?", "download the book as pdf"],
}
NOISE = ["What is the airspeed velocity of an unladen swallow?", "Recommend a good pizza recipe",
         "Who won the 1998 world cup?"]
ANSWERED_WELL = ["What is Lectern?", "How do I write a page?"]  # grounded, not rated down: no gap


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def seeded(stack: Stack, gateway: str) -> None:
    """Deploy questions refused, SSO answers not grounded, PDF answers grounded but rated down."""
    await ingest(stack, BOOK, GAP_BOOK)
    async with grpc.aio.insecure_channel(stack.sessions.address) as ch:
        stub = spb_grpc.SessionsServiceStub(ch)
        turns: list[tuple[str, bool, bool, bool]] = []
        for q in TOPICS["deploy"] + NOISE:
            turns.append((q, True, False, False))
        turns += [(q, False, False, False) for q in TOPICS["sso"]]
        turns += [(q, False, True, True) for q in TOPICS["pdf"]]
        turns += [(q, False, True, False) for q in ANSWERED_WELL]
        for question, refused, grounded, downvote in turns:
            created = await stub.CreateConversation(spb.CreateConversationRequest(book=GAP_BOOK))
            answer_id = str(uuid.uuid4())
            await stub.AppendTurn(spb.AppendTurnRequest(
                conversation_id=created.conversation_id, turn_id=str(uuid.uuid4()), question=question,
                answer="I can't answer that from the book." if refused else "It says so [1].", mode="general",
                out_of_scope=refused, grounded=grounded, answer_message_id=answer_id))
            if downvote:
                await stub.RecordFeedback(spb.RecordFeedbackRequest(
                    conversation_id=created.conversation_id, conversation_token=created.conversation_token,
                    message_id=answer_id, rating=spb.RATING_DOWN, comment="not what I asked"))


async def test_seeded_topics_are_recovered(gateway: str, seeded: None) -> None:
    async with httpx.AsyncClient(base_url=gateway, timeout=120) as client:
        reply = await client.get("/v1/analytics/gaps", params={"days": 30, "book": GAP_BOOK}, headers=AUTH)
    assert reply.status_code == 200, reply.text
    report = reply.json()
    seeded_total = sum(map(len, TOPICS.values())) + len(NOISE)
    assert report["questions"] == seeded_total  # the well-answered questions are not gaps
    label = {q: name for name, qs in TOPICS.items() for q in qs}
    big = [t for t in report["topics"] if t["count"] > 1]
    found = {label[t["questions"][0]] for t in big}
    print(f"gap topics found {len(found & set(TOPICS))} of {len(TOPICS)} seeded; "
          f"{len(report['topics'])} topics in all (noise {len(NOISE)})")
    assert len(big) == len(TOPICS) and found == set(TOPICS)
    for t in big:
        assert t["count"] == 5 and len(t["questions"]) == 3
        assert {label[q] for q in t["questions"]} == {label[t["questions"][0]]}  # representatives of one topic
        assert t["earlier"] + t["recent"] == t["count"] and t["trend"] == "rising"
        assert len(t["sections"]) == 3 and all(s["url"] and "edit_url" in s for s in t["sections"])
    by_topic = {label[t["questions"][0]]: t for t in big}
    assert (by_topic["deploy"]["refused"], by_topic["sso"]["ungrounded"], by_topic["pdf"]["downvoted"]) == (5, 5, 5)
    assert by_topic["pdf"]["refused"] == by_topic["pdf"]["ungrounded"] == 0
    noise = [t["questions"] for t in report["topics"] if t["count"] == 1]
    assert sorted(q for qs in noise for q in qs) == sorted(NOISE)


async def test_bad_input_and_missing_token_get_4xx_json(gateway: str) -> None:
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        for params in ({"days": 0}, {"days": "many"}, {"days": 4000}, {"similarity": 2}, {"limit": 0},
                       {"book": "x" * 201}):
            reply = await client.get("/v1/analytics/gaps", params=params, headers=AUTH)
            assert 400 <= reply.status_code < 500, (params, reply.status_code)
            assert "error" in reply.json()
        assert (await client.get("/v1/analytics/gaps")).status_code == 401
        wrong = await client.get("/v1/analytics/gaps", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403 and "error" in wrong.json()


async def test_rpcs_refuse_bad_input(stack: Stack) -> None:
    async with grpc.aio.insecure_channel(stack.retrieval.address) as ch:
        for queries in ([], ["  "], ["x" * 9000]):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await rpb_grpc.RetrievalServiceStub(ch).EmbedQueries(rpb.EmbedQueriesRequest(queries=queries))
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    async with grpc.aio.insecure_channel(stack.sessions.address) as ch:
        for request in (spb.GapQuestionsRequest(days=0), spb.GapQuestionsRequest(days=1, limit=6000)):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await spb_grpc.SessionsServiceStub(ch).GapQuestions(request)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_page_asks_for_the_token_and_is_locked_down(gateway: str) -> None:
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        page = await client.get("/admin/gaps")
        script = await client.get("/admin/gaps.js")
    assert page.status_code == 200 and 'type="password"' in page.text and ADMIN not in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert "innerHTML" not in script.text and "Authorization" in script.text


async def test_cli_prints_the_report(gateway: str, seeded: None, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    report = await asyncio.to_thread(fetch_gaps, gateway, ADMIN, 30, GAP_BOOK)
    assert "Kubernetes" in render(report) or "kubernetes" in render(report)
    monkeypatch.setenv("LECTERN_ADMIN_TOKEN", ADMIN)
    code = await asyncio.to_thread(gaps_command, gateway, 30, GAP_BOOK, True)
    assert code == 0 and json.loads(capsys.readouterr().out)["questions"] == report["questions"]
    assert await asyncio.to_thread(gaps_command, gateway, 0, GAP_BOOK, True) == 1  # the server's 4xx
    assert "error" in json.loads(capsys.readouterr().out)
    monkeypatch.delenv("LECTERN_ADMIN_TOKEN")
    assert await asyncio.to_thread(gaps_command, gateway, 30, GAP_BOOK, False) == 2


async def test_grouping_keeps_books_apart_and_counts_halves() -> None:
    now = datetime(2026, 1, 31, tzinfo=UTC)
    asked = [GapQuestion("a", "b1", now - timedelta(days=20), True, False, False),
             GapQuestion("a again", "b1", now - timedelta(days=1), False, True, True),
             GapQuestion("a", "b2", now - timedelta(days=1), True, False, False)]
    topics = group(asked, [[1.0, 0.0], [0.9, 0.1], [1.0, 0.0]], now - timedelta(days=30), now, 0.8)
    assert [(t.book, t.count, t.earlier, t.recent, t.trend) for t in topics] == [
        ("b1", 2, 1, 1, "steady"), ("b2", 1, 0, 1, "rising")]
    assert topics[0].refused == 1 and topics[0].ungrounded == 1 and topics[0].downvoted == 1
    assert len(group(asked, [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], now - timedelta(days=30), now, 0.8)) == 3
