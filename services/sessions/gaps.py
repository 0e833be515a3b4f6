"""The questions a gap report groups: those whose answers fell short (refused, not grounded,
or rated down), as stored (already redacted), newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from services.sessions.store import Clock, utcnow


@dataclass(frozen=True)
class GapQuestion:
    question: str
    book: str
    asked_at: datetime
    out_of_scope: bool
    ungrounded: bool
    downvoted: bool


async def gap_questions(pool: asyncpg.Pool, days: int, book: str = "", limit: int = 1000,
                        clock: Clock = utcnow) -> list[GapQuestion]:
    """Questions of the last ``days`` whose answer was refused, not grounded or rated down.
    Only live turns: roll-ups past retention keep counts, not the texts a report groups."""
    since = clock() - timedelta(days=days)
    rows = await pool.fetch("""
        SELECT q.content AS question, m.book, m.created_at, m.out_of_scope, NOT m.grounded AS ungrounded,
               coalesce(f.rating = 2, false) AS downvoted
        FROM answer_metrics m
        JOIN turns t ON t.answer_message_id = m.message_id
        JOIN messages q ON q.id = t.question_message_id AND q.created_at = t.created_at
        LEFT JOIN feedback f ON f.message_id = m.message_id
        WHERE m.created_at >= $1 AND ($2 = '' OR m.book = $2)
          AND (m.out_of_scope OR NOT m.grounded OR f.rating = 2)
        ORDER BY m.created_at DESC, m.message_id LIMIT $3""", since, book, limit)
    return [GapQuestion(r["question"], r["book"], r["created_at"], r["out_of_scope"], r["ungrounded"],
                        r["downvoted"]) for r in rows]
