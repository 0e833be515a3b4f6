"""The questions a gap report groups: those whose answers fell short (refused, not grounded,
or rated down), as stored (already redacted), newest first."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime, timedelta

import asyncpg

from records.gap import GapQuestion

# The query's columns are the record's fields by name: a field the query does not give is a
# KeyError on the first row, never a silent default.
_FIELDS = tuple(f.name for f in fields(GapQuestion))


async def gap_questions(pool: asyncpg.Pool, now: datetime, days: int, book: str, limit: int) -> list[GapQuestion]:
    """Questions of the ``days`` before ``now`` whose answer was refused, not grounded or rated
    down. Only live turns: roll-ups past retention keep counts, not the texts a report groups."""
    rows = await pool.fetch("""
        SELECT q.content AS question, m.book, m.created_at AS asked_at, m.out_of_scope,
               NOT m.grounded AS ungrounded, coalesce(f.rating = 2, false) AS downvoted
        FROM answer_metrics m
        JOIN turns t ON t.answer_message_id = m.message_id
        JOIN messages q ON q.id = t.question_message_id AND q.created_at = t.created_at
        LEFT JOIN feedback f ON f.message_id = m.message_id
        WHERE m.created_at >= $1 AND ($2 = '' OR m.book = $2)
          AND (m.out_of_scope OR NOT m.grounded OR f.rating = 2)
        ORDER BY m.created_at DESC, m.message_id LIMIT $3""", now - timedelta(days=days), book, limit)
    return [GapQuestion(**{name: r[name] for name in _FIELDS}) for r in rows]
