"""Conversations, turns and feedback on Postgres, and the one object the sessions service talks
to: ``ConversationStore`` owns the pool and the clock, and reads analytics and gap questions and
runs retention through them, so no caller passes either around. Knows nothing of gRPC.

Every query is parameterised. A conversation's secret token is returned once and only its
SHA-256 is stored; a wrong token and an unknown id are the same NotFound, so ids cannot be
probed. A value Postgres refuses to store (a DataError, such as NUL in text) is the caller's
InvalidArgument, never an internal error: the last line of defence behind the servicer's checks.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg

from records.gap import GapQuestion
from records.source import Source
from records.turn import Turn
from runtime.errors import InvalidArgument, LecternError, NotFound
from runtime.postgres import Connection
from services.sessions import analytics, gaps, retention
from services.sessions.erasure import erase_locked
from services.sessions.redaction import redact as redact_text

Clock = Callable[[], datetime]

USER, ASSISTANT = 1, 2
UP, DOWN = 1, 2


_PUNCTUATION = re.compile(r"[^\w\s]|_")


def question_key(text: str) -> str:
    """A question as analytics count it: lower case, punctuation dropped, spaces collapsed, so
    "How do I X?" and "how do i x" count together."""
    return " ".join(_PUNCTUATION.sub("", text.lower()).split())[:500]


def utcnow() -> datetime:
    return datetime.now(UTC)


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _uuid(value: str, field_name: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        raise InvalidArgument.of(field_name, "must be a UUID") from None


UNSTORABLE = "holds a value the database cannot store"


@contextmanager
def _storable(field_name: str) -> Iterator[None]:
    """A write whose data Postgres refuses becomes a field violation of ``field_name``."""
    try:
        yield
    except asyncpg.DataError:
        raise InvalidArgument.of(field_name, UNSTORABLE) from None


def source_row(source: Source) -> dict[str, Any]:
    """A source as the retrievals table keeps it: ``rank`` is its number, ``heading`` its heading
    path as JSON text (what analytics group cited sections by)."""
    return {"rank": source.n, "chunk_id": source.chunk_id, "file_path": source.file_path,
            "heading": json.dumps(list(source.heading_path)), "url": source.url, "score": source.score}


def source_from_row(row: asyncpg.Record | Mapping[str, Any]) -> Source:
    return Source(n=row["rank"], chunk_id=row["chunk_id"], file_path=row["file_path"],
                  heading_path=tuple(json.loads(row["heading"])), url=row["url"], score=row["score"])


@dataclass(frozen=True)
class _NewTurn:
    """A turn of a batch with the ids it will get if it is new."""

    index: int
    turn: Turn
    cid: uuid.UUID
    qid: uuid.UUID
    aid: uuid.UUID


@dataclass(frozen=True)
class Conversation:
    conversation_id: str
    book: str
    created_at: datetime
    last_active_at: datetime


@dataclass(frozen=True)
class StoredMessage:
    message_id: str
    role: int
    content: str
    mode: str
    created_at: datetime
    sources: list[Source]


# A whole batch of turns in one statement, so one round trip and one commit. $1 is the batch as
# a JSON array of objects (``ConversationStore._batch_row``) read by column name, so no value
# depends on its position; $2 is when the turns are recorded. The data-modifying parts all see
# the conversations locked (in id order, so batches cannot deadlock) and the turns actually
# inserted; a turn_id already recorded inserts nothing and returns the first ids. The lock is
# also what keeps rows from outliving their conversation (the turn tables have no foreign keys;
# services/sessions/erasure.py takes the same lock before it deletes).
APPEND_TURNS = f"""
WITH req AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(
        i integer, cid uuid, turn_id text, qid uuid, aid uuid, question text, answer text, mode text,
        rewritten_query text, sources jsonb, latencies_ms jsonb, tokens integer, out_of_scope boolean,
        grounded boolean, question_key text)
), locked AS (
    SELECT id, book FROM conversations WHERE id IN (SELECT cid FROM req) ORDER BY id FOR UPDATE
), new_turns AS (
    INSERT INTO turns (conversation_id, turn_id, question_message_id, answer_message_id, created_at)
    SELECT r.cid, r.turn_id, r.qid, r.aid, $2 FROM req r JOIN locked l ON l.id = r.cid ORDER BY r.i
    ON CONFLICT (conversation_id, turn_id) DO NOTHING
    RETURNING conversation_id, turn_id, question_message_id, answer_message_id
), new AS (
    -- the requested turns that were inserted (every request has a question id of its own)
    SELECT r.*, l.book FROM req r JOIN new_turns t ON t.question_message_id = r.qid JOIN locked l ON l.id = r.cid
), new_messages AS (
    INSERT INTO messages (id, conversation_id, role, content, mode, rewritten_query, created_at)
    SELECT m.id, n.cid, m.role, m.content, n.mode, m.rewritten_query, $2
    FROM new n CROSS JOIN LATERAL (VALUES (n.qid, {USER}, n.question, n.rewritten_query),
                                          (n.aid, {ASSISTANT}, n.answer, '')) AS m(id, role, content, rewritten_query)
), new_retrievals AS (
    INSERT INTO retrievals (message_id, conversation_id, rank, chunk_id, file_path, heading, url, score, created_at)
    SELECT n.aid, n.cid, s.rank, s.chunk_id, s.file_path, s.heading, s.url, s.score, $2
    FROM new n CROSS JOIN LATERAL jsonb_to_recordset(n.sources)
         AS s(rank integer, chunk_id text, file_path text, heading text, url text, score float8)
), new_metrics AS (
    INSERT INTO answer_metrics (message_id, conversation_id, latencies_ms, tokens, out_of_scope, grounded,
                                created_at, book, question_key)
    SELECT n.aid, n.cid, n.latencies_ms, n.tokens, n.out_of_scope, n.grounded, $2, n.book, n.question_key FROM new n
), touched AS (
    UPDATE conversations SET last_active_at = $2 WHERE id IN (SELECT conversation_id FROM new_turns)
)
SELECT conversation_id, turn_id, question_message_id, answer_message_id FROM new_turns
UNION ALL
SELECT t.conversation_id, t.turn_id, t.question_message_id, t.answer_message_id
FROM turns t JOIN req r ON t.conversation_id = r.cid AND t.turn_id = r.turn_id
"""  # noqa: S608 - the roles are constants, not input


def _ids(rows: Sequence[asyncpg.Record]) -> dict[tuple[uuid.UUID, str], tuple[uuid.UUID, uuid.UUID]]:
    """(conversation, turn id) -> (question id, answer id)."""
    return {(r["conversation_id"], r["turn_id"]): (r["question_message_id"], r["answer_message_id"]) for r in rows}


class ConversationStore:
    def __init__(self, pool: asyncpg.Pool, clock: Clock = utcnow, redact: bool = True) -> None:
        self.pool = pool
        self.clock = clock
        self._clean = redact_text if redact else (lambda text: text)

    async def create(self, book: str) -> tuple[str, str]:
        conversation_id = uuid.uuid4()
        token = secrets.token_urlsafe(32)
        now = self.clock()
        with _storable("book"):
            await self.pool.execute(
                "INSERT INTO conversations (id, book, token_hash, created_at, last_active_at)"
                " VALUES ($1, $2, $3, $4, $4)", conversation_id, book, _hash(token), now,
            )
        return str(conversation_id), token

    async def _authorise(self, conn: Connection, conversation_id: str, token: str,
                         lock: Literal["", "FOR KEY SHARE", "FOR UPDATE"] = "") -> uuid.UUID:
        """The conversation's id if the token is its own; ``lock`` holds its row until the
        transaction ends (writers of child rows share it, erasure takes it whole)."""
        cid = _uuid(conversation_id, "conversation_id")
        found = await conn.fetchval(
            f"SELECT 1 FROM conversations WHERE id = $1 AND token_hash = $2 {lock}",  # noqa: S608 - a Literal
            cid, _hash(token),
        )
        if not found:
            raise NotFound("no conversation with that id and token")
        return cid

    async def append_turn(self, turn: Turn) -> tuple[str, str]:
        """Records question and answer once per turn_id; a retry returns the first ids."""
        try:
            with _storable("turn"):
                (result,) = await self._append_batch([turn])
        except asyncpg.UniqueViolationError:
            # Not a retry (that is the same turn_id) but another turn's answer id.
            raise InvalidArgument.of("answer_message_id", "is already used by another turn") from None
        if isinstance(result, LecternError):
            raise result
        return result

    async def append_turns(self, turns: Sequence[Turn]) -> list[tuple[str, str] | LecternError]:
        """Many turns in one statement (what makes 32 concurrent writers cheap); per turn, the
        same result ``append_turn`` would give, or its error. If the batch as a whole fails (a
        clash no single check foresaw, or a value Postgres refuses), each turn is written on its
        own so that one bad turn cannot fail the others."""
        try:
            return await self._append_batch(turns)
        except (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError):
            results: list[tuple[str, str] | LecternError] = []
            for turn in turns:
                try:
                    results.append(await self.append_turn(turn))
                except LecternError as exc:
                    results.append(exc)
            return results

    async def _append_batch(self, turns: Sequence[Turn]) -> list[tuple[str, str] | LecternError]:
        now = self.clock()
        results: list[tuple[str, str] | LecternError | None] = [None] * len(turns)
        rows: list[_NewTurn] = []
        for i, turn in enumerate(turns):
            try:
                cid = _uuid(turn.conversation_id, "conversation_id")
                aid = _uuid(turn.answer_message_id, "answer_message_id") if turn.answer_message_id else uuid.uuid4()
            except InvalidArgument as exc:
                results[i] = exc
                continue
            rows.append(_NewTurn(i, turn, cid, uuid.uuid4(), aid))
        if rows:
            batch = json.dumps([self._batch_row(r) for r in rows])
            recorded = _ids(await self.pool.fetch(APPEND_TURNS, batch, now))
            missing = [r for r in rows if (r.cid, r.turn.turn_id) not in recorded]
            if missing:
                # The statement's snapshot predates a retry of the same turn that another
                # statement committed while this one waited for the conversation's lock; a
                # fresh read sees it. What is still missing has no conversation.
                recorded |= _ids(await self.pool.fetch(
                    "SELECT conversation_id, turn_id, question_message_id, answer_message_id FROM turns"
                    " WHERE (conversation_id, turn_id) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))",
                    [r.cid for r in missing], [r.turn.turn_id for r in missing]))
            for r in rows:
                ids = recorded.get((r.cid, r.turn.turn_id))
                results[r.index] = (str(ids[0]), str(ids[1])) if ids else NotFound("no conversation with that id")
        return [r if r is not None else NotFound("turn not recorded") for r in results]

    def _batch_row(self, r: _NewTurn) -> dict[str, Any]:
        """A turn as APPEND_TURNS reads it: its keys are the statement's columns."""
        question = self._clean(r.turn.question)
        return {
            "i": r.index, "cid": str(r.cid), "turn_id": r.turn.turn_id, "qid": str(r.qid), "aid": str(r.aid),
            "question": question, "answer": self._clean(r.turn.answer), "mode": r.turn.mode,
            "rewritten_query": self._clean(r.turn.rewritten_query),
            "sources": [source_row(s) for s in r.turn.sources], "latencies_ms": r.turn.latencies_ms,
            "tokens": r.turn.tokens, "out_of_scope": r.turn.out_of_scope, "grounded": r.turn.grounded,
            "question_key": question_key(question),
        }

    async def get(self, conversation_id: str, token: str) -> Conversation:
        async with self.pool.acquire() as conn:
            cid = await self._authorise(conn, conversation_id, token)
            row = await conn.fetchrow("SELECT book, created_at, last_active_at FROM conversations WHERE id = $1", cid)
            if row is None:
                raise NotFound("no conversation with that id and token")
        return Conversation(str(cid), row["book"], row["created_at"], row["last_active_at"])

    async def list_messages(self, conversation_id: str, token: str, limit: int,
                            after: str) -> tuple[list[StoredMessage], str]:
        """Messages oldest first; ``after`` is the page token (created_at|role|id of the last one)."""
        async with self.pool.acquire() as conn:
            cid = await self._authorise(conn, conversation_id, token)
            if after:
                try:
                    stamp, role, last_id = after.split("|")
                    cursor = (datetime.fromisoformat(stamp), int(role), uuid.UUID(last_id))
                except ValueError:
                    raise InvalidArgument.of("page_token", "is not a token this service issued") from None
                rows = await conn.fetch(
                    "SELECT id, role, content, mode, created_at FROM messages WHERE conversation_id = $1"
                    " AND (created_at, role, id) > ($3, $4, $5) ORDER BY created_at, role, id LIMIT $2",
                    cid, limit + 1, *cursor,
                )
            else:
                rows = await conn.fetch(
                    "SELECT id, role, content, mode, created_at FROM messages WHERE conversation_id = $1"
                    " ORDER BY created_at, role, id LIMIT $2", cid, limit + 1,
                )
            page = rows[:limit]
            ids = [r["id"] for r in page if r["role"] == ASSISTANT]
            sources: dict[uuid.UUID, list[Source]] = {}
            if ids:
                for s in await conn.fetch(
                    "SELECT message_id, rank, chunk_id, file_path, heading, url, score FROM retrievals"
                    " WHERE message_id = ANY($1::uuid[]) ORDER BY message_id, rank", ids,
                ):
                    sources.setdefault(s["message_id"], []).append(source_from_row(s))
        messages = [StoredMessage(str(r["id"]), r["role"], r["content"], r["mode"], r["created_at"],
                                  sources.get(r["id"], [])) for r in page]
        token_out = ""
        if len(rows) > limit and page:
            last = page[-1]
            token_out = f"{last['created_at'].isoformat()}|{last['role']}|{last['id']}"
        return messages, token_out

    async def record_feedback(self, conversation_id: str, token: str, message_id: str, rating: int,
                              comment: str) -> None:
        mid = _uuid(message_id, "message_id")
        async with self.pool.acquire() as conn, conn.transaction():
            # Shared lock: erasure cannot run between the check and the insert.
            cid = await self._authorise(conn, conversation_id, token, "FOR KEY SHARE")
            if not await conn.fetchval(
                "SELECT 1 FROM turns WHERE conversation_id = $1 AND answer_message_id = $2", cid, mid
            ):
                raise NotFound("no answer with that message_id in this conversation")
            with _storable("comment"):
                await conn.execute(
                    "INSERT INTO feedback (message_id, conversation_id, rating, comment, created_at)"
                    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (message_id) DO UPDATE"
                    " SET rating = EXCLUDED.rating, comment = EXCLUDED.comment, created_at = EXCLUDED.created_at",
                    mid, cid, rating, self._clean(comment), self.clock(),
                )

    async def delete(self, conversation_id: str, token: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            cid = await self._authorise(conn, conversation_id, token, "FOR UPDATE")
            await erase_locked(conn, [cid])

    async def ping(self) -> bool:
        """True when Postgres answers; the pool replaces dead connections on the next acquire,
        so a restarted database is picked up without restarting the service."""
        try:
            return bool(await self.pool.fetchval("SELECT 1", timeout=2))
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False

    # The reports and the upkeep: what the servicer and the service reach only through the store.

    async def analytics(self, days: int, book: str = "", limit: int = 10) -> analytics.Analytics:
        return await analytics.analytics(self.pool, self.clock(), days, book, limit)

    async def gap_questions(self, days: int, book: str = "", limit: int = 1000) -> list[GapQuestion]:
        return await gaps.gap_questions(self.pool, self.clock(), days, book, limit)

    async def run_retention(self, days: int) -> retention.RetentionReport:
        return await retention.run_retention(self.pool, self.clock(), days)

    async def ensure_partitions(self, months_ahead: int = 2) -> list[str]:
        return await retention.ensure_partitions(self.pool, self.clock().date(), months_ahead)

    async def retention_loop(self, days: int, interval_seconds: float) -> None:
        """The background job: partitions ahead, then retention, every interval, until cancelled."""
        while True:
            try:
                await self.ensure_partitions()
                await self.run_retention(days)
            except (asyncpg.PostgresError, OSError) as exc:
                retention.log.warning("retention run failed; will retry", extra={"error": str(exc)})
            await asyncio.sleep(interval_seconds)
