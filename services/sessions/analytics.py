"""Analytics for the book's authors: what readers ask, what the book could not answer, which
answers they disliked, which sections are cited, and how fast answers were."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import asyncpg

from services.sessions.summaries import (
    BUCKET_SQL,
    day_start,
    first_unsettled_day,
    percentile,
    summarize_finished_days,
)


@dataclass(frozen=True)
class CountedText:
    text: str
    count: int


@dataclass(frozen=True)
class Downvote:
    question: str
    answer: str
    comment: str
    sources: list[str]


@dataclass(frozen=True)
class CitedSection:
    file_path: str
    heading: str
    url: str
    count: int


@dataclass(frozen=True)
class StageLatency:
    stage: str
    p50_ms: float
    p95_ms: float


@dataclass
class Analytics:
    days: int
    questions_per_day: list[tuple[date, int]] = field(default_factory=list)
    top_questions: list[CountedText] = field(default_factory=list)
    unanswered: list[CountedText] = field(default_factory=list)
    downvoted: list[Downvote] = field(default_factory=list)
    most_cited: list[CitedSection] = field(default_factory=list)
    latency: list[StageLatency] = field(default_factory=list)
    upvotes: int = 0
    downvotes: int = 0

    @property
    def feedback_ratio(self) -> float:
        """Share of rated answers rated up (0 when none were rated)."""
        rated = self.upvotes + self.downvotes
        return self.upvotes / rated if rated else 0.0


@dataclass(frozen=True)
class _Window:
    """The days asked for, split into summarised days (read from summaries) and the rest
    (read live): the partial first day, and today with any day not yet settled."""

    since: datetime
    live_until: datetime  # live: [since, live_until) and [live_from, now]
    live_from: datetime
    first_summarised: date
    last_summarised: date

    @classmethod
    def of(cls, now: datetime, days: int) -> _Window:
        since = now - timedelta(days=days)
        first = since.astimezone(UTC).date() + timedelta(days=1)
        last = first_unsettled_day(now) - timedelta(days=1)
        if last < first:  # nothing summarised: everything is live
            return cls(since, since, since, first, last)
        return cls(since, day_start(first), day_start(last + timedelta(days=1)), first, last)

    def args(self, book: str) -> tuple[object, ...]:
        return (self.since, self.live_until, self.live_from, book, self.first_summarised, self.last_summarised)


def _live(column: str) -> str:
    return f"(({column} >= $1 AND {column} < $2) OR {column} >= $3)"


def _book(column: str) -> str:
    return f"($4 = '' OR {column} = $4)"


SUMMARISED = "day BETWEEN $5 AND $6 AND ($4 = '' OR book = $4)"


async def analytics(pool: asyncpg.Pool, now: datetime, days: int, book: str, limit: int) -> Analytics:
    """Analytics over the ``days`` before ``now``: finished days from their summaries (written
    here first if the background job has not yet), the rest from the live tables. The parts are
    independent queries, run at once on connections of their own."""
    window = _Window.of(now, days)
    await summarize_finished_days(pool, now, since=window.first_summarised)
    args = window.args(book)
    out = Analytics(days)
    try:
        async with asyncio.TaskGroup() as parts:
            per_day = parts.create_task(_questions_per_day(pool, args))
            top = parts.create_task(_top_questions(pool, args, limit, unanswered=False))
            unanswered = parts.create_task(_top_questions(pool, args, limit, unanswered=True))
            downvoted = parts.create_task(_downvoted(pool, window.since, book, limit))
            cited = parts.create_task(_most_cited(pool, args, limit))
            latency = parts.create_task(_latency(pool, args))
            votes = parts.create_task(_votes(pool, args))
    except ExceptionGroup as failed:
        # The first failure as itself, so it maps to its status (e.g. UNAVAILABLE), not INTERNAL.
        raise failed.exceptions[0] from None
    out.questions_per_day, out.top_questions, out.unanswered = per_day.result(), top.result(), unanswered.result()
    out.downvoted, out.most_cited, out.latency = downvoted.result(), cited.result(), latency.result()
    out.upvotes, out.downvotes = votes.result()
    return out


async def _questions_per_day(pool: asyncpg.Pool, args: tuple[object, ...]) -> list[tuple[date, int]]:
    per_day: dict[date, int] = {}
    for r in await pool.fetch(f"""
            SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n FROM answer_metrics
            WHERE {_live("created_at")} AND {_book("book")} GROUP BY 1
            UNION ALL
            SELECT day, sum(questions) FROM daily_rollups WHERE {SUMMARISED} GROUP BY day""", *args):
        per_day[r["day"]] = per_day.get(r["day"], 0) + int(r["n"])
    return sorted((d, n) for d, n in per_day.items() if n)


async def _downvoted(pool: asyncpg.Pool, since: datetime, book: str, limit: int) -> list[Downvote]:
    # The latest downvotes first, then their texts: joining every downvote of the month
    # before the LIMIT costs ten times more.
    return [Downvote(r["question"], r["answer"], r["comment"], json.loads(r["sources"])) for r in await pool.fetch("""
        WITH recent AS (
            SELECT f.message_id, f.comment, f.created_at FROM feedback f
            JOIN conversations c ON c.id = f.conversation_id
            WHERE f.rating = 2 AND f.created_at >= $1 AND ($2 = '' OR c.book = $2)
            ORDER BY f.created_at DESC LIMIT $3)
        SELECT q.content AS question, a.content AS answer, r.comment,
               coalesce((SELECT json_agg(rv.url ORDER BY rv.rank) FROM retrievals rv
                         WHERE rv.message_id = t.answer_message_id), '[]') AS sources
        FROM recent r JOIN turns t ON t.answer_message_id = r.message_id
        JOIN messages q ON q.id = t.question_message_id AND q.created_at = t.created_at
        JOIN messages a ON a.id = t.answer_message_id AND a.created_at = t.created_at
        ORDER BY r.created_at DESC""", since, book, limit)]


async def _most_cited(pool: asyncpg.Pool, args: tuple[object, ...], limit: int) -> list[CitedSection]:
    return [CitedSection(r["file_path"], " > ".join(json.loads(r["heading"])), r["url"], int(r["n"]))
            for r in await pool.fetch(f"""
        SELECT file_path, heading, url, sum(n)::bigint AS n FROM (
            SELECT rv.file_path, rv.heading, rv.url, count(*) AS n
            FROM retrievals rv JOIN answer_metrics m ON m.message_id = rv.message_id
            WHERE {_live("rv.created_at")} AND NOT m.out_of_scope AND {_book("m.book")} GROUP BY 1, 2, 3
            UNION ALL
            SELECT file_path, heading, url, sum(cited) FROM daily_citations WHERE {SUMMARISED} GROUP BY 1, 2, 3
        ) x GROUP BY 1, 2, 3 ORDER BY n DESC, file_path, url LIMIT $7""", *args, limit)]


async def _latency(pool: asyncpg.Pool, args: tuple[object, ...]) -> list[StageLatency]:
    histograms: dict[str, list[tuple[int, int]]] = {}
    for r in await pool.fetch(f"""
            SELECT stage, bucket, sum(n)::bigint AS n FROM (
                SELECT e.key AS stage, {BUCKET_SQL.format(value="e.value::float8")} AS bucket, count(*) AS n
                FROM answer_metrics m, jsonb_each_text(m.latencies_ms) e
                WHERE {_live("m.created_at")} AND {_book("m.book")} GROUP BY 1, 2
                UNION ALL
                SELECT stage, bucket, sum(answers) FROM daily_latency WHERE {SUMMARISED} GROUP BY 1, 2
            ) x GROUP BY 1, 2 ORDER BY 1, 2""", *args):
        histograms.setdefault(r["stage"], []).append((int(r["bucket"]), int(r["n"])))
    return [StageLatency(stage, percentile(h, 0.5), percentile(h, 0.95)) for stage, h in sorted(histograms.items())]


async def _votes(pool: asyncpg.Pool, args: tuple[object, ...]) -> tuple[int, int]:
    votes = await pool.fetchrow(f"""
        SELECT coalesce(sum(up), 0) AS up, coalesce(sum(down), 0) AS down FROM (
            SELECT count(*) FILTER (WHERE f.rating = 1) AS up, count(*) FILTER (WHERE f.rating = 2) AS down
            FROM feedback f JOIN conversations c ON c.id = f.conversation_id
            WHERE {_live("f.created_at")} AND {_book("c.book")}
            UNION ALL
            SELECT sum(upvotes), sum(downvotes) FROM daily_rollups WHERE {SUMMARISED}
        ) x""", *args)
    return (int(votes["up"]), int(votes["down"])) if votes is not None else (0, 0)


async def _top_questions(pool: asyncpg.Pool, args: tuple[object, ...], limit: int, unanswered: bool
                         ) -> list[CountedText]:
    """Most asked (or most often unanswered) questions. Summaries hold hashes; the text comes
    from a stored question with that hash, so a question whose every conversation is gone (erased
    or past retention) is left out."""
    live_filter = "AND out_of_scope" if unanswered else ""
    counted = "unanswered" if unanswered else "asked"
    # More hashes than asked for: ties are then ordered by text, and erased questions dropped.
    rows = await pool.fetch(f"""
        SELECT h, sum(n)::bigint AS n FROM (
            SELECT hashtextextended(question_key, 0) AS h, count(*) AS n FROM answer_metrics
            WHERE {_live("created_at")} AND {_book("book")} {live_filter} GROUP BY 1
            UNION ALL
            SELECT question_hash, sum({counted}) FROM daily_questions WHERE {SUMMARISED} GROUP BY 1
        ) x GROUP BY h HAVING sum(n) > 0 ORDER BY n DESC, h LIMIT $7""", *args, limit * 3)
    if not rows:
        return []
    texts = {r["h"]: r["question_key"] for r in await pool.fetch("""
        SELECT DISTINCT ON (hashtextextended(question_key, 0)) hashtextextended(question_key, 0) AS h, question_key
        FROM answer_metrics WHERE hashtextextended(question_key, 0) = ANY($1::bigint[])""", [r["h"] for r in rows])}
    found = [CountedText(texts[r["h"]], int(r["n"])) for r in rows if r["h"] in texts]
    return sorted(found, key=lambda c: (-c.count, c.text))[:limit]
