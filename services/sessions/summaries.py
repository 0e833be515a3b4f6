"""Per-day summaries of finished days, written once, so that analytics over a month read a few
thousand summary rows instead of every turn, and so that the figures outlive retention.

Summaries hold no message text: counts per day and book, questions as hashes of their
normalised text, cited sections, and latency histograms. A day is summarised once it has been
over for ``SETTLE`` (a turn still being written at midnight lands first).
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import asyncpg

SETTLE = timedelta(minutes=10)
LOCK_KEY = 7_215_020_514
# Logarithmic latency buckets 2% wide: bucket b holds [1.02**b, 1.02**(b+1)) milliseconds.
BUCKET_RATIO = 1.02
BUCKET_SQL = f"floor(ln(greatest({{value}}, 0.01)) / ln({BUCKET_RATIO}))::integer"


def bucket_value(bucket: int) -> float:
    """A bucket's representative latency: its geometric middle (within 1% of any value in it)."""
    return float(BUCKET_RATIO ** (bucket + 0.5))


def percentile(histogram: list[tuple[int, int]], q: float) -> float:
    """Nearest-rank percentile of a histogram of (bucket, count), buckets ascending."""
    total = sum(n for _, n in histogram)
    if not total:
        return 0.0
    rank = max(1, math.ceil(q * total))
    seen = 0
    for bucket, n in histogram:
        seen += n
        if seen >= rank:
            return bucket_value(bucket)
    return bucket_value(histogram[-1][0])


def day_start(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC)


def first_unsettled_day(now: datetime) -> date:
    """Days before this one are over (and settled) and can be summarised."""
    return (now - SETTLE).astimezone(UTC).date()


# $1 = the day's start, $2 = the next day's start, $3 = the day.
_SUMMARIES = (
    """INSERT INTO daily_rollups (day, book, questions, out_of_scope, ungrounded, upvotes, downvotes,
                                  latency_total_ms_sum, answers_with_latency)
       SELECT $3, b.book, coalesce(d.questions, 0), coalesce(d.out_of_scope, 0), coalesce(d.ungrounded, 0),
              coalesce(f.up, 0), coalesce(f.down, 0), coalesce(d.latency_sum, 0), coalesce(d.with_latency, 0)
       FROM (SELECT book FROM answer_metrics WHERE created_at >= $1 AND created_at < $2
             UNION
             SELECT c.book FROM feedback fb JOIN conversations c ON c.id = fb.conversation_id
             WHERE fb.created_at >= $1 AND fb.created_at < $2) b
       LEFT JOIN (SELECT book, count(*) AS questions,
                         count(*) FILTER (WHERE out_of_scope) AS out_of_scope,
                         count(*) FILTER (WHERE NOT grounded AND NOT out_of_scope) AS ungrounded,
                         sum((latencies_ms->>'total')::float8) AS latency_sum,
                         count(latencies_ms->>'total') AS with_latency
                  FROM answer_metrics WHERE created_at >= $1 AND created_at < $2 GROUP BY book) d USING (book)
       LEFT JOIN (SELECT c.book, count(*) FILTER (WHERE fb.rating = 1) AS up,
                         count(*) FILTER (WHERE fb.rating = 2) AS down
                  FROM feedback fb JOIN conversations c ON c.id = fb.conversation_id
                  WHERE fb.created_at >= $1 AND fb.created_at < $2 GROUP BY c.book) f USING (book)
       ON CONFLICT (day, book) DO NOTHING""",
    """INSERT INTO daily_questions (day, book, question_hash, asked, unanswered)
       SELECT $3, book, hashtextextended(question_key, 0), count(*), count(*) FILTER (WHERE out_of_scope)
       FROM answer_metrics WHERE created_at >= $1 AND created_at < $2
       GROUP BY book, hashtextextended(question_key, 0)
       ON CONFLICT DO NOTHING""",
    """INSERT INTO daily_citations (day, book, url, file_path, heading, cited)
       SELECT $3, m.book, rv.url, rv.file_path, rv.heading, count(*)
       FROM retrievals rv JOIN answer_metrics m ON m.message_id = rv.message_id
       WHERE rv.created_at >= $1 AND rv.created_at < $2 AND NOT m.out_of_scope
       GROUP BY m.book, rv.url, rv.file_path, rv.heading
       ON CONFLICT DO NOTHING""",
    f"""INSERT INTO daily_latency (day, book, stage, bucket, answers)
       SELECT $3, m.book, e.key, {BUCKET_SQL.format(value="e.value::float8")}, count(*)
       FROM answer_metrics m, jsonb_each_text(m.latencies_ms) e
       WHERE m.created_at >= $1 AND m.created_at < $2
       GROUP BY 2, 3, 4
       ON CONFLICT DO NOTHING""",  # noqa: S608 - the bucket expression is a constant, not input
)


async def summarize_day(pool: asyncpg.Pool, day: date) -> bool:
    """Summarises one finished day unless another instance already has; True if this call did."""
    start, end = day_start(day), day_start(day + timedelta(days=1))
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
        if await conn.fetchval("SELECT 1 FROM summarized_days WHERE day = $1", day):
            return False
        for sql in _SUMMARIES:
            await conn.execute(sql, start, end, day)
        await conn.execute("INSERT INTO summarized_days (day) VALUES ($1)", day)
    return True


async def summarize_finished_days(pool: asyncpg.Pool, now: datetime, since: date | None = None) -> int:
    """Summarises every finished day not summarised yet, from the oldest turn still stored (or
    ``since``, whichever is later); returns how many days were summarised now."""
    # least() ignores NULLs: either table may be empty.
    oldest = await pool.fetchval(
        "SELECT least((SELECT min(created_at) FROM answer_metrics), (SELECT min(created_at) FROM feedback))")
    if oldest is None:
        return 0
    first = oldest.astimezone(UTC).date()
    if since is not None:
        first = max(first, since)
    done = {r["day"] for r in await pool.fetch(
        "SELECT day FROM summarized_days WHERE day >= $1", first)}
    summarised = 0
    day = first
    while day < first_unsettled_day(now):
        if day not in done and await summarize_day(pool, day):
            summarised += 1
        day += timedelta(days=1)
    return summarised
