"""The sessions store on the real embedded Postgres."""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from lectern.common.v1 import common_pb2
from lectern.sessions.v1 import sessions_service_pb2 as spb

from records.gap import GapQuestion
from records.source import Source
from records.turn import Turn
from runtime.batching import Batcher
from runtime.env import SettingsError
from runtime.errors import InvalidArgument, NotFound
from runtime.postgres import split_sslmode
from services.retrieval.settings import RetrievalSettings
from services.sessions.database import open_pool
from services.sessions.migrations import MIGRATIONS, migrate
from services.sessions.servicer import SessionsServicer
from services.sessions.settings import SessionsSettings
from services.sessions.store import ASSISTANT, DOWN, USER, ConversationStore, question_key
from tests.conftest import new_database

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def store(postgres_url: str, home: Path) -> AsyncIterator[ConversationStore]:
    async with open_pool(postgres_url, home, 1, 5, 5000) as pool:
        yield ConversationStore(pool)


async def test_migrations_are_recorded_and_idempotent(postgres_url: str, store: ConversationStore) -> None:
    conn = await asyncpg.connect(postgres_url)
    try:
        assert await migrate(conn) == []  # already applied at start-up
        versions = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY 1")]
        assert versions == [m.version for m in MIGRATIONS]
    finally:
        await conn.close()


async def test_concurrent_migrations_apply_once(postgres_url: str) -> None:
    url = await new_database(postgres_url)
    conns = [await asyncpg.connect(url) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in conns))
        assert sorted(v for r in results for v in r) == [m.version for m in MIGRATIONS]
    finally:
        for c in conns:
            await c.close()


async def test_an_existing_database_upgrades_with_its_data(postgres_url: str, home: Path) -> None:
    url = await new_database(postgres_url)
    old = await asyncpg.connect(url)
    try:
        for migration in MIGRATIONS[:3]:  # a deployment from before migration 4, with a conversation
            await old.execute(migration.sql)
        await old.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
                          " applied_at timestamptz NOT NULL DEFAULT now())")
        await old.executemany("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                              [(m.version, m.name) for m in MIGRATIONS[:3]])
        cid = uuid.uuid4()
        await old.execute("INSERT INTO conversations VALUES ($1, 'book', '\\x00', now(), now())", cid)
        await old.execute("INSERT INTO messages (id, conversation_id, role, content, created_at)"
                          " VALUES ($1, $2, 1, 'Kept?', now())", uuid.uuid4(), cid)
    finally:
        await old.close()
    async with open_pool(url, home, 1, 2, 5000) as pool:  # start-up applies what is missing
        applied = await pool.fetchval("SELECT max(version) FROM schema_migrations")
        assert applied == MIGRATIONS[-1].version
        assert await pool.fetchval("SELECT content FROM messages WHERE conversation_id = $1", cid) == "Kept?"
        assert await pool.fetchval("SELECT count(*) FROM pg_constraint WHERE contype = 'f'") == 0


async def lock_waiters(pool: asyncpg.Pool, count: int) -> None:
    """Returns once ``count`` statements wait for a row lock: a race set up by waiting, not by
    sleeping and hoping the other side got there first."""
    for _ in range(200):
        waiting = await pool.fetchval("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                                      " AND datname = current_database()")
        if waiting >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{count} lock waiters expected, {waiting} seen")


async def test_append_turn_is_idempotent_under_retries(store: ConversationStore) -> None:
    cid, token = await store.create("book")
    turn = Turn(cid, "turn-1", "What is a reducer?", "A pure function [1].",
                sources=[Source(1, "c1", "a.md", ("A", "B"), "/docs/a#b", 0.5)], latencies_ms={"retrieve": 3.0})
    results = await asyncio.gather(*(store.append_turn(turn) for _ in range(5)))
    assert len(set(results)) == 1
    messages, next_page = await store.list_messages(cid, token, 50, "")
    assert [m.content for m in messages] == ["What is a reducer?", "A pure function [1]."]
    assert messages[1].sources[0].heading_path == ("A", "B") and next_page == ""


async def test_batched_turns_keep_each_turns_own_outcome(store: ConversationStore) -> None:
    cid, token = await store.create("book")
    other, other_token = await store.create("book")
    recorded = await store.append_turn(Turn(cid, "old", "Asked before?", "Yes."))
    source = Source(1, "c1", "a.md", ("A",), "/docs/a", 0.5)
    batcher: Batcher[Turn, tuple[str, str]] = Batcher(store.append_turns)
    turns = [
        Turn(cid, "t1", "First?", "One [1].", sources=[source], latencies_ms={"total": 5.0}),
        Turn(cid, "t1", "First?", "One [1].", sources=[source]),  # a retry inside the same batch
        Turn(other, "t2", "Second?", "Two."),
        Turn(str(uuid.uuid4()), "t3", "Unknown conversation?", "No."),
        Turn("not-a-uuid", "t4", "Bad id?", "No."),
        Turn(cid, "old", "Asked before?", "Yes."),  # a retry of a turn recorded earlier
    ]
    results = await asyncio.gather(*(batcher.submit(t) for t in turns), return_exceptions=True)
    assert batcher.calls == 1
    assert results[0] == results[1] and not isinstance(results[0], BaseException)
    assert isinstance(results[3], NotFound) and isinstance(results[4], InvalidArgument)
    assert results[5] == recorded
    messages, _ = await store.list_messages(cid, token, 50, "")
    assert [m.content for m in messages] == ["Asked before?", "Yes.", "First?", "One [1]."]
    assert messages[3].sources[0].url == "/docs/a"
    assert [m.content for m in (await store.list_messages(other, other_token, 50, ""))[0]] == ["Second?", "Two."]

    # Two turns claiming one answer id clash in the database: each is then written on its own,
    # so only the second fails.
    answer = str(uuid.uuid4())
    clash = await asyncio.gather(batcher.submit(Turn(cid, "t5", "Q5?", "A5.", answer_message_id=answer)),
                                 batcher.submit(Turn(other, "t6", "Q6?", "A6.", answer_message_id=answer)),
                                 return_exceptions=True)
    assert isinstance(clash[0], tuple) and clash[0][1] == answer
    assert isinstance(clash[1], InvalidArgument)


async def test_every_field_of_a_batch_of_turns_is_stored_where_it_belongs(store: ConversationStore) -> None:
    """Two turns written by one statement, no value of one equal to any of the other's: a value
    written to another column, or to the other turn's rows, reads back wrong."""
    when = datetime.now(UTC)
    fixed = ConversationStore(store.pool, clock=lambda: when)
    book = f"fields-{uuid.uuid4().hex[:8]}"
    (first, first_token), (second, second_token) = [await fixed.create(book) for _ in range(2)]
    turns = [
        Turn(first, "fields-1", "Question one?", "Answer one [1] [2].", mode="general",
             rewritten_query="rewritten one", latencies_ms={"retrieve": 1.5, "total": 10.25}, tokens=17,
             out_of_scope=True, grounded=False, answer_message_id=str(uuid.uuid4()),
             sources=(Source(1, "chunk 1a", "one/a.md", ("Page 1", "Section a"), "/docs/one/a#s", 0.25),
                      Source(2, "chunk 1b", "one/b.md", ("Page 1b",), "/docs/one/b", 0.75))),
        Turn(second, "fields-2", "Question two?", "Answer two [3].", mode="selection",
             rewritten_query="rewritten two", latencies_ms={"generate": 3.75}, tokens=29,
             out_of_scope=False, grounded=True, answer_message_id=str(uuid.uuid4()),
             sources=(Source(3, "chunk 2a", "two/a.md", ("Page 2", "Section b", "Sub"), "/docs/two/a#b", 1.5),)),
    ]
    results = await fixed.append_turns(turns)
    for turn, token, result in zip(turns, (first_token, second_token), results, strict=True):
        assert isinstance(result, tuple) and result[1] == turn.answer_message_id
        qid, aid = result
        messages, _ = await fixed.list_messages(turn.conversation_id, token, 10, "")
        assert [(m.message_id, m.role, m.content, m.mode, m.created_at, tuple(m.sources)) for m in messages] == [
            (qid, USER, turn.question, turn.mode, when, ()),
            (aid, ASSISTANT, turn.answer, turn.mode, when, turn.sources)]
        row = await store.pool.fetchrow(
            "SELECT q.rewritten_query AS asked, a.rewritten_query AS answered, m.* FROM messages q, messages a,"
            " answer_metrics m WHERE q.id = $1 AND a.id = $2 AND m.message_id = $2", uuid.UUID(qid), uuid.UUID(aid))
        assert row is not None and (row["asked"], row["answered"]) == (turn.rewritten_query, "")
        assert json.loads(row["latencies_ms"]) == turn.latencies_ms
        assert (str(row["conversation_id"]), row["tokens"], row["out_of_scope"], row["grounded"], row["book"],
                row["question_key"], row["created_at"]) == (turn.conversation_id, turn.tokens, turn.out_of_scope,
                                                           turn.grounded, book, question_key(turn.question), when)
    # And as the gap report reads them back.
    await fixed.record_feedback(second, second_token, turns[1].answer_message_id, DOWN, "")
    assert sorted(await fixed.gap_questions(1, book), key=lambda q: q.question) == [
        GapQuestion("Question one?", book, when, out_of_scope=True, ungrounded=True, downvoted=False),
        GapQuestion("Question two?", book, when, out_of_scope=False, ungrounded=False, downvoted=True)]


async def test_a_score_or_latency_json_cannot_hold_is_refused_with_its_field(store: ConversationStore) -> None:
    servicer = SessionsServicer(store)
    request = spb.AppendTurnRequest(
        conversation_id=str(uuid.uuid4()), turn_id="t", question="Q?", answer="A.",
        sources=[common_pb2.SourceReference(n=1, score=0.5), common_pb2.SourceReference(n=2, score=math.nan)],
        latencies=[spb.StageLatency(stage="total", ms=math.inf)])
    with pytest.raises(InvalidArgument) as caught:
        await servicer.AppendTurn(request, None)
    assert [v.field for v in caught.value.violations] == ["sources[1].score", "latencies[0].ms"]


async def test_a_retry_racing_its_original_in_another_batch_gets_the_first_ids(store: ConversationStore) -> None:
    cid, token = await store.create("book")
    turn = Turn(cid, "raced", "Twice at once?", "Once [1].")
    async with store.pool.acquire() as conn, conn.transaction():
        # Both statements start, then wait for the conversation's lock: the second one's
        # snapshot predates the first one's commit.
        await conn.execute("SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE", uuid.UUID(cid))
        racing = [asyncio.create_task(store.append_turns([turn])) for _ in range(2)]
        await lock_waiters(store.pool, 2)
    first, second = await asyncio.gather(*racing)
    assert first == second and isinstance(first[0], tuple)
    assert len((await store.list_messages(cid, token, 50, ""))[0]) == 2


# Rows no conversation owns: what the turn tables' missing foreign keys must never let through.
ORPHANS = {
    table: f"SELECT count(*) FROM {table} x WHERE NOT EXISTS "
           f"(SELECT 1 FROM {parent} p WHERE p.{key} = x.{ref})"
    for table, parent, key, ref in (
        ("turns", "conversations", "id", "conversation_id"),
        ("messages", "conversations", "id", "conversation_id"),
        ("retrievals", "turns", "answer_message_id", "message_id"),
        ("answer_metrics", "turns", "answer_message_id", "message_id"),
        ("feedback", "turns", "answer_message_id", "message_id"),
    )
}


async def orphans(pool: asyncpg.Pool) -> dict[str, int]:
    return {table: await pool.fetchval(sql) for table, sql in ORPHANS.items()}


async def rows_of(pool: asyncpg.Pool, cid: str) -> dict[str, int]:
    """Rows in each table that belong to one conversation."""
    found = {}
    for table in ("conversations", "turns", "messages", "retrievals", "answer_metrics", "feedback"):
        column = "id" if table == "conversations" else "conversation_id"
        found[table] = await pool.fetchval(
            f"SELECT count(*) FROM {table} WHERE {column} = $1", uuid.UUID(cid))
    return found


async def test_erasure_removes_every_row_of_the_conversation_and_nothing_else(store: ConversationStore) -> None:
    source = Source(1, "c1", "a.md", ("A",), "/docs/a", 0.5)
    kept, kept_token = await store.create("book")
    await store.append_turn(Turn(kept, "k1", "Kept?", "Yes [1].", sources=[source], latencies_ms={"total": 4.0}))
    cid, token = await store.create("book")
    second = Source(2, "c2", "b.md", ("B",), "/docs/b", 0.4)
    for i in range(2):
        _, answer = await store.append_turn(Turn(cid, f"t{i}", f"Q{i}?", f"A{i} [1].", sources=[source, second],
                                                 latencies_ms={"total": 5.0}))
    await store.record_feedback(cid, token, answer, 2, "wrong")
    before = await rows_of(store.pool, cid)
    assert before == {"conversations": 1, "turns": 2, "messages": 4, "retrievals": 4, "answer_metrics": 2,
                      "feedback": 1}
    kept_rows = await rows_of(store.pool, kept)

    await store.delete(cid, token)
    assert set((await rows_of(store.pool, cid)).values()) == {0}
    assert await rows_of(store.pool, kept) == kept_rows
    assert set((await orphans(store.pool)).values()) == {0}
    assert len((await store.list_messages(kept, kept_token, 10, ""))[0]) == 2


@pytest.mark.parametrize("append_first", [True, False])
async def test_an_append_racing_erasure_leaves_no_orphans(store: ConversationStore, append_first: bool) -> None:
    cid, token = await store.create("book")
    turn = Turn(cid, "racing", "Gone soon?", "Yes [1].", sources=[Source(1, "c1", "a.md", ("A",), "/docs/a", 0.5)],
                latencies_ms={"total": 5.0})
    async with store.pool.acquire() as conn, conn.transaction():
        # Both wait for the conversation's lock and get it in the order they asked.
        await conn.execute("SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE", uuid.UUID(cid))
        first = asyncio.create_task(store.append_turns([turn]) if append_first else store.delete(cid, token))
        await lock_waiters(store.pool, 1)
        second = asyncio.create_task(store.delete(cid, token) if append_first else store.append_turns([turn]))
        await lock_waiters(store.pool, 2)
    done = await asyncio.gather(first, second)
    appended = done[0 if append_first else 1]
    assert isinstance(appended, list)
    # Appended then erased, or refused because the conversation was gone: never left behind.
    assert isinstance(appended[0], tuple) if append_first else isinstance(appended[0], NotFound)
    assert set((await rows_of(store.pool, cid)).values()) == {0}
    assert set((await orphans(store.pool)).values()) == {0}


async def test_tokens_isolate_conversations(store: ConversationStore) -> None:
    cid, token = await store.create("book")
    _other, other_token = await store.create("book")
    with pytest.raises(NotFound):
        await store.get(cid, other_token)
    with pytest.raises(NotFound):
        await store.get(str(uuid.uuid4()), token)  # unknown id: same answer as a wrong token
    with pytest.raises(InvalidArgument):
        await store.get("not-a-uuid", token)
    assert (await store.get(cid, token)).book == "book"


async def test_paging_feedback_and_erasure(store: ConversationStore) -> None:
    cid, token = await store.create("book")
    ids = [await store.append_turn(Turn(cid, f"t{i}", f"q{i}", f"a{i}")) for i in range(3)]
    first, page = await store.list_messages(cid, token, 4, "")
    rest, end = await store.list_messages(cid, token, 4, page)
    assert [m.content for m in first + rest] == ["q0", "a0", "q1", "a1", "q2", "a2"] and end == ""
    await store.record_feedback(cid, token, ids[0][1], 2, "wrong section")
    with pytest.raises(NotFound):
        await store.record_feedback(cid, token, ids[0][0], 1, "")  # a question, not an answer
    await store.delete(cid, token)
    with pytest.raises(NotFound):
        await store.list_messages(cid, token, 10, "")


@pytest.mark.parametrize("statement_cache", [0, 256])
async def test_prepared_statements_are_kept_unless_the_cache_is_off(postgres_url: str, home: Path,
                                                                     statement_cache: int) -> None:
    # 0 is for a pooler without protocol-level prepared statements: the store must work the same.
    async with open_pool(postgres_url, home, 1, 1, 5000, statement_cache) as pool:
        store = ConversationStore(pool)
        cid, token = await store.create("book")
        await store.append_turn(Turn(cid, "t1", "Cached?", "Maybe [1].",
                                     sources=[Source(1, "c1", "a.md", ("A",), "/docs/a", 0.5)]))
        assert [m.content for m in (await store.list_messages(cid, token, 10, ""))[0]] == ["Cached?", "Maybe [1]."]
        kept = await pool.fetchval("SELECT count(*) FROM pg_prepared_statements")
        assert (kept > 0) == (statement_cache > 0)


async def test_the_statement_cache_is_one_setting_for_both_postgres_owners() -> None:
    environ = {"LECTERN_DB_STATEMENT_CACHE": "0"}
    assert SessionsSettings.from_env(environ).statement_cache == 0
    assert RetrievalSettings.from_env(environ).pgvector.statement_cache == 0
    assert SessionsSettings.from_env({}).statement_cache == 256
    with pytest.raises(SettingsError, match="LECTERN_DB_STATEMENT_CACHE"):
        SessionsSettings.from_env({"LECTERN_DB_STATEMENT_CACHE": "-1"})


async def test_sslmode_is_honoured() -> None:
    url, ssl_arg = split_sslmode("postgresql://u:p@ep-x.neon.tech/db?sslmode=require&application_name=x")
    assert "sslmode" not in url and "application_name=x" in url
    assert ssl_arg is not None and ssl_arg is not False
    assert split_sslmode("postgresql://localhost/db?sslmode=disable")[1] is False
