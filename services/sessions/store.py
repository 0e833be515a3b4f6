"""Conversations, turns and feedback on Postgres. Knows nothing of gRPC.

Every query is parameterised. A conversation's secret token is returned once and only its
SHA-256 is stored; a wrong token and an unknown id are the same NotFound, so ids cannot be
probed. A value Postgres refuses to store (a DataError, such as NUL in text) is the caller's
InvalidArgument, never an internal error: the last line of defence behind the servicer's checks.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg

from runtime.errors import InvalidArgument, LecternError, NotFound
from runtime.postgres import Connection
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


@dataclass(frozen=True)
class Source:
    n: int
    chunk_id: str
    file_path: str
    heading_path: tuple[str, ...]
    url: str
    score: float


@dataclass(frozen=True)
class Turn:
    conversation_id: str
    turn_id: str
    question: str
    answer: str
    mode: str = "general"
    rewritten_query: str = ""
    sources: Sequence[Source] = ()
    latencies_ms: dict[str, float] = field(default_factory=dict)
    tokens: int = 0
    out_of_scope: bool = False
    grounded: bool = False
    answer_message_id: str = ""


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


# A whole batch of turns in one statement, so one round trip and one commit: the data-modifying
# parts all see the conversations locked (in id order, so batches cannot deadlock) and the turns
# actually inserted; a turn_id already recorded inserts nothing and returns the first ids. The
# lock is also what keeps rows from outliving their conversation (the turn tables have no
# foreign keys; services/sessions/erasure.py takes the same lock before it deletes).
APPEND_TURNS = """
WITH req AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::uuid[]) WITH ORDINALITY AS r(cid, turn_id, qid, aid, i)
), locked AS (
    SELECT id, book FROM conversations WHERE id IN (SELECT cid FROM req) ORDER BY id FOR UPDATE
), new_turns AS (
    INSERT INTO turns (conversation_id, turn_id, question_message_id, answer_message_id, created_at)
    SELECT r.cid, r.turn_id, r.qid, r.aid, $23 FROM req r JOIN locked l ON l.id = r.cid ORDER BY r.i
    ON CONFLICT (conversation_id, turn_id) DO NOTHING
    RETURNING conversation_id, turn_id, question_message_id, answer_message_id
), new_messages AS (
    INSERT INTO messages (id, conversation_id, role, content, mode, rewritten_query, created_at)
    SELECT m.id, m.cid, m.role, m.content, m.mode, m.rewritten, $23
    FROM unnest($5::uuid[], $6::uuid[], $7::smallint[], $8::text[], $9::text[], $10::text[])
         AS m(id, cid, role, content, mode, rewritten)
    WHERE m.id IN (SELECT question_message_id FROM new_turns UNION ALL SELECT answer_message_id FROM new_turns)
), new_retrievals AS (
    INSERT INTO retrievals (message_id, conversation_id, rank, chunk_id, file_path, heading, url, score, created_at)
    SELECT t.answer_message_id, t.conversation_id, s.n, s.chunk_id, s.file_path, s.heading, s.url, s.score, $23
    FROM unnest($11::uuid[], $12::integer[], $13::text[], $14::text[], $15::text[], $16::text[], $17::float8[])
         AS s(aid, n, chunk_id, file_path, heading, url, score)
    JOIN new_turns t ON t.answer_message_id = s.aid
), new_metrics AS (
    INSERT INTO answer_metrics (message_id, conversation_id, latencies_ms, tokens, out_of_scope, grounded,
                                created_at, book, question_key)
    SELECT t.answer_message_id, t.conversation_id, x.latencies::jsonb, x.tokens, x.out_of_scope, x.grounded,
           $23, l.book, x.question_key
    FROM unnest($4::uuid[], $18::text[], $19::integer[], $20::boolean[], $21::boolean[], $22::text[])
         AS x(aid, latencies, tokens, out_of_scope, grounded, question_key)
    JOIN new_turns t ON t.answer_message_id = x.aid
    JOIN locked l ON l.id = t.conversation_id
), touched AS (
    UPDATE conversations SET last_active_at = $23 WHERE id IN (SELECT conversation_id FROM new_turns)
)
SELECT conversation_id, turn_id, question_message_id, answer_message_id FROM new_turns
UNION ALL
SELECT t.conversation_id, t.turn_id, t.question_message_id, t.answer_message_id
FROM turns t JOIN req r ON t.conversation_id = r.cid AND t.turn_id = r.turn_id
"""


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
            recorded = _ids(await self.pool.fetch(APPEND_TURNS, *self._batch_arrays(rows), now))
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

    def _batch_arrays(self, rows: list[_NewTurn]) -> tuple[list[Any], ...]:
        """The columns of APPEND_TURNS's arrays, $1 to $22."""
        questions = [self._clean(r.turn.question) for r in rows]
        sources = [(r, s) for r in rows for s in r.turn.sources]
        return (
            [r.cid for r in rows], [r.turn.turn_id for r in rows], [r.qid for r in rows], [r.aid for r in rows],
            # messages: questions, then answers
            [r.qid for r in rows] + [r.aid for r in rows], [r.cid for r in rows] * 2,
            [USER] * len(rows) + [ASSISTANT] * len(rows),
            questions + [self._clean(r.turn.answer) for r in rows], [r.turn.mode for r in rows] * 2,
            [self._clean(r.turn.rewritten_query) for r in rows] + [""] * len(rows),
            # retrievals
            [r.aid for r, _ in sources], [s.n for _, s in sources], [s.chunk_id for _, s in sources],
            [s.file_path for _, s in sources], [json.dumps(list(s.heading_path)) for _, s in sources],
            [s.url for _, s in sources], [s.score for _, s in sources],
            # answer metrics
            [json.dumps(r.turn.latencies_ms) for r in rows], [r.turn.tokens for r in rows],
            [r.turn.out_of_scope for r in rows], [r.turn.grounded for r in rows], [question_key(q) for q in questions],
        )

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
                    heading = tuple(json.loads(s["heading"]))
                    sources.setdefault(s["message_id"], []).append(
                        Source(s["rank"], s["chunk_id"], s["file_path"], heading, s["url"], s["score"])
                    )
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
