"""Analytics, retention and redaction on the real embedded Postgres, in a database of their own
so counts are exact."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio

from records.source import Source
from records.turn import Turn
from services.sessions.database import open_pool
from services.sessions.redaction import redact
from services.sessions.retention import partition_name
from services.sessions.store import DOWN, UP, ConversationStore
from tests.conftest import new_database

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest_asyncio.fixture(loop_scope="session")
async def fresh(postgres_url: str, home: Path) -> AsyncIterator[tuple[ConversationStore, Clock]]:
    clock = Clock(NOW)
    async with open_pool(await new_database(postgres_url), home, 1, 4, 5000) as pool:
        yield ConversationStore(pool, clock=clock), clock


async def turn(store: ConversationStore, question: str, *, out_of_scope: bool = False, total_ms: float = 50.0,
               cid: str = "") -> tuple[str, str, str]:
    if not cid:
        cid, token = await store.create("robot")
    else:
        token = ""
    _, answer_id = await store.append_turn(Turn(
        cid, str(uuid.uuid4()), question, "I couldn't find this in the book." if out_of_scope else "Answer [1].",
        sources=[] if out_of_scope else [Source(1, "c1", "motion/pid.md", ("PID", "Tuning"), "/docs/pid#tuning", 0.9)],
        latencies_ms={"retrieve": total_ms / 5, "total": total_ms}, out_of_scope=out_of_scope,
        grounded=not out_of_scope,
    ))
    return cid, token, answer_id


def test_redaction_removes_personal_data_and_secrets_but_not_ordinary_text() -> None:
    text = ("Mail me at jane.doe@example.com or call +44 20 7946 0958. "
            "My key is AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW and token=ghp_abcdefghijklmnopqrstuvwxyz123456; "
            "sk-proj-abcdefghijklmnop1234 too.")
    clean = redact(text)
    for secret in ("jane.doe@example.com", "7946", "AIzaSy", "ghp_", "sk-proj"):
        assert secret not in clean, secret
    assert "[redacted email]" in clean and "[redacted phone]" in clean and "[redacted secret]" in clean
    ordinary = "Run PID at 100 Hz on port 8080 with version 1.2.3 (2026-11-20); call store.dispatch(action)."
    assert redact(ordinary) == ordinary


async def test_stored_messages_are_redacted(fresh: tuple[ConversationStore, Clock]) -> None:
    store, _ = fresh
    cid, token = await store.create("robot")
    await store.append_turn(Turn(cid, "t1", "I am bob@example.org, why does my robot drift?", "Drift [1]."))
    messages, _ = await store.list_messages(cid, token, 10, "")
    assert "bob@example.org" not in messages[0].content and "[redacted email]" in messages[0].content


async def test_analytics_report_what_authors_need(fresh: tuple[ConversationStore, Clock]) -> None:
    store, _ = fresh
    await turn(store, "How do I tune PID?", total_ms=40)
    await turn(store, "how do i tune pid", total_ms=60)
    await turn(store, "What is the weather?", out_of_scope=True, total_ms=20)
    cid, token, answer = await turn(store, "Why does Rover curve?", total_ms=80)
    await store.record_feedback(cid, token, answer, DOWN, "wrong section")
    cid2, token2, answer2 = await turn(store, "How fast is the PID loop?")
    await store.record_feedback(cid2, token2, answer2, UP, "")
    report = await store.analytics(7)
    assert report.questions_per_day == [(NOW.date(), 5)]
    assert report.top_questions[0].text == "how do i tune pid" and report.top_questions[0].count == 2
    assert [u.text for u in report.unanswered] == ["what is the weather"]
    assert report.downvoted[0].question == "Why does Rover curve?" and report.downvoted[0].comment == "wrong section"
    assert report.downvoted[0].sources == ["/docs/pid#tuning"]
    assert report.most_cited[0].url == "/docs/pid#tuning" and report.most_cited[0].count == 4
    total = next(s for s in report.latency if s.stage == "total")
    # Nearest-rank percentiles read from 2%-wide buckets: within 1% of the true values.
    assert total.p50_ms == pytest.approx(50.0, rel=0.01) and total.p95_ms == pytest.approx(80.0, rel=0.01)
    assert (report.upvotes, report.downvotes, report.feedback_ratio) == (1, 1, 0.5)
    assert (await store.analytics(7, book="another")).questions_per_day == []


async def test_retention_drops_old_months_keeps_active_conversations_and_rolls_up(
        fresh: tuple[ConversationStore, Clock]) -> None:
    store, clock = fresh
    old = NOW - timedelta(days=75)
    clock.now = old
    await store.ensure_partitions(months_ahead=3)
    gone, gone_token, gone_answer = await turn(store, "An old question?")
    await store.record_feedback(gone, gone_token, gone_answer, DOWN, "old news")
    still_active, token, _ = await turn(store, "An old question that continues?")
    clock.now = NOW - timedelta(days=2)
    await turn(store, "A follow-up today", cid=still_active)
    await turn(store, "A recent question?")
    clock.now = NOW

    report = await store.run_retention(30)
    assert report.conversations_deleted == 1
    assert report.days_rolled_up >= 2
    # The old month keeps the active conversation's first message, so it is not dropped.
    assert partition_name(old.date().replace(day=1)) not in report.partitions_dropped
    messages, _ = await store.list_messages(still_active, token, 10, "")
    assert len(messages) == 4

    clock.now = NOW + timedelta(days=40)  # now the continuing conversation is inactive too
    report = await store.run_retention(30)
    assert report.conversations_deleted == 2
    assert partition_name(old.date().replace(day=1)) in report.partitions_dropped
    for table in ("conversations", "turns", "messages", "retrievals", "answer_metrics", "feedback"):
        assert await store.pool.fetchval(f"SELECT count(*) FROM {table}") == 0, table
    history = await store.analytics(120)
    assert sum(n for _, n in history.questions_per_day) == 4  # from the roll-ups alone
    again = await store.run_retention(30)
    assert (again.conversations_deleted, again.partitions_dropped) == (0, [])


async def test_finished_days_are_read_from_summaries_with_the_same_figures(
        fresh: tuple[ConversationStore, Clock]) -> None:
    store, clock = fresh
    clock.now = NOW - timedelta(days=3)
    await turn(store, "How do I tune PID?", total_ms=40)
    await turn(store, "What is the weather?", out_of_scope=True, total_ms=20)
    secret_cid, secret_token, _ = await turn(store, "A question only one reader asked?", total_ms=30)
    clock.now = NOW - timedelta(days=2)
    await turn(store, "how do i tune pid", total_ms=60)
    clock.now = NOW
    await turn(store, "How do I tune PID", total_ms=80)

    report = await store.analytics(7)
    assert await store.pool.fetchval("SELECT count(*) FROM summarized_days") >= 3  # days before today
    three, two = (NOW - timedelta(days=3)).date(), (NOW - timedelta(days=2)).date()
    assert report.questions_per_day == [(three, 3), (two, 1), (NOW.date(), 1)]
    assert (report.top_questions[0].text, report.top_questions[0].count) == ("how do i tune pid", 3)
    assert [(u.text, u.count) for u in report.unanswered] == [("what is the weather", 1)]
    assert report.most_cited[0].count == 4  # every in-scope answer cites the PID section
    total = next(s for s in report.latency if s.stage == "total")
    assert total.p50_ms == pytest.approx(40.0, rel=0.01) and total.p95_ms == pytest.approx(80.0, rel=0.01)
    assert await store.analytics(7) == report  # summaries are written once

    # The reader erases their conversation: counts stay, their words go.
    await store.delete(secret_cid, secret_token)
    after = await store.analytics(7)
    assert "a question only one reader asked" not in [q.text for q in after.top_questions]
    assert after.questions_per_day == report.questions_per_day
