"""Time-based retention: conversations inactive for longer than the retention
period are removed; monthly message partitions that hold nothing still needed are dropped
whole; daily roll-ups without message text keep the analytics that must outlive it all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import asyncpg

from services.sessions.erasure import erase_inactive
from services.sessions.summaries import summarize_finished_days

log = logging.getLogger("lectern.sessions.retention")

BATCH = 1000


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def partition_name(month: date) -> str:
    return f"messages_{month:%Y_%m}"


async def ensure_partitions(pool: asyncpg.Pool, today: date, months_ahead: int = 2) -> list[str]:
    """Creates this month's and the next months' partitions; returns the names created."""
    created = []
    month = month_start(today)
    for _ in range(months_ahead + 1):
        name = partition_name(month)
        exists = await pool.fetchval("SELECT to_regclass($1) IS NOT NULL", name)
        if not exists:
            try:
                # Identifiers cannot be parameters; name and bounds come from dates, not input.
                await pool.execute(
                    f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF messages "
                    f"FOR VALUES FROM ('{month.isoformat()}') TO ('{next_month(month).isoformat()}')"
                )
                created.append(name)
            except asyncpg.PostgresError as exc:
                # Rows of that month already sit in the default partition (an old deployment):
                # they stay there and are removed row by row instead.
                log.warning("partition not created", extra={"partition": name, "error": str(exc)})
        month = next_month(month)
    return created


@dataclass(frozen=True)
class RetentionReport:
    conversations_deleted: int
    partitions_dropped: list[str]
    days_rolled_up: int


async def run_retention(pool: asyncpg.Pool, now: datetime, days: int) -> RetentionReport:
    """Rolls up finished days, then removes what is older than ``days`` before ``now``."""
    cutoff = now - timedelta(days=days)
    rolled = await summarize_finished_days(pool, now)
    dropped = await _drop_old_partitions(pool, cutoff)
    deleted = 0
    while True:
        # Batches keep each transaction (and its locks) short on a busy database.
        count = await erase_inactive(pool, cutoff, BATCH)
        deleted += count
        if count < BATCH:
            break
    log.info("retention run", extra={"conversations_deleted": deleted, "partitions_dropped": len(dropped),
                                     "days_rolled_up": rolled})
    return RetentionReport(deleted, dropped, rolled)


async def _drop_old_partitions(pool: asyncpg.Pool, cutoff: datetime) -> list[str]:
    """Drops whole months before the cutoff unless a conversation still active has messages there."""
    dropped = []
    rows = await pool.fetch("""
        SELECT child.relname AS name FROM pg_inherits i
        JOIN pg_class child ON child.oid = i.inhrelid JOIN pg_class parent ON parent.oid = i.inhparent
        WHERE parent.relname = 'messages' AND child.relname ~ '^messages_[0-9]{4}_[0-9]{2}$'
    """)
    for row in rows:
        name = row["name"]
        month = datetime.strptime(name, "messages_%Y_%m").replace(tzinfo=UTC)
        if datetime.combine(next_month(month.date()), datetime.min.time(), UTC) > cutoff:
            continue
        # The name comes from the catalogue and matched the pattern above; it is not input.
        still_needed = await pool.fetchval(
            f"SELECT EXISTS (SELECT 1 FROM {name} m JOIN conversations c ON c.id = m.conversation_id"  # noqa: S608
            " WHERE c.last_active_at >= $1)", cutoff)
        if not still_needed:
            await pool.execute(f"DROP TABLE {name}")
            dropped.append(name)
    return dropped
