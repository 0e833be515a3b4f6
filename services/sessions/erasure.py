"""Removing conversations with every row that belongs to them.

The turn tables carry no foreign keys (migration 4): a turn's rows are written by one statement
that holds its conversation's row lock, and they leave here, after the caller has locked the
same conversations. Locking first matters: the deletes below then read a snapshot taken after
any append that got the lock before us, and no append can follow until we commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from runtime.postgres import Connection

# Children by key (each a primary key or an index), then the conversations themselves.
ERASE = """
WITH answers AS (
    SELECT answer_message_id AS id FROM turns WHERE conversation_id = ANY($1::uuid[])
), gone_retrievals AS (
    DELETE FROM retrievals WHERE message_id IN (SELECT id FROM answers)
), gone_metrics AS (
    DELETE FROM answer_metrics WHERE message_id IN (SELECT id FROM answers)
), gone_feedback AS (
    DELETE FROM feedback WHERE message_id IN (SELECT id FROM answers)
), gone_messages AS (
    DELETE FROM messages WHERE conversation_id = ANY($1::uuid[])
), gone_turns AS (
    DELETE FROM turns WHERE conversation_id = ANY($1::uuid[])
)
DELETE FROM conversations WHERE id = ANY($1::uuid[])
"""


async def erase_locked(conn: Connection, conversation_ids: Sequence[uuid.UUID]) -> int:
    """Deletes conversations this transaction holds FOR UPDATE, with all their rows; returns
    how many conversations went."""
    if not conversation_ids:
        return 0
    status = await conn.execute(ERASE, list(conversation_ids))
    return int(status.split()[-1])


async def erase_inactive(pool: asyncpg.Pool, cutoff: datetime, limit: int) -> int:
    """Erases up to ``limit`` conversations inactive since before ``cutoff``, in one short
    transaction; returns how many. Conversations an append holds right now are skipped, not
    waited for: they are active, and retention must never stall the write path."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "SELECT id FROM conversations WHERE last_active_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED", cutoff, limit)
        return await erase_locked(conn, [r["id"] for r in rows])
