"""Analytics for the book's authors: what readers ask, what the book could not answer, which
answers they disliked, which sections are cited, and how fast answers were."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta

import asyncpg

from services.sessions.store import Clock, utcnow

# Lower case, punctuation dropped, spaces collapsed: "How do I X?" and "how do i x" count together.
NORMALISED = "btrim(regexp_replace(regexp_replace(lower({col}), '[^[:alnum:][:space:]]', '', 'g'), '\\s+', ' ', 'g'))"


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


async def analytics(pool: asyncpg.Pool, days: int, book: str = "", limit: int = 10, clock: Clock = utcnow
                    ) -> Analytics:
    since = clock() - timedelta(days=days)
    out = Analytics(days)
    book_clause = "AND c.book = $2" if book else "AND $2 = ''"
    args = (since, book)
    live = await pool.fetch(f"""
        SELECT (m.created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n
        FROM answer_metrics m JOIN conversations c ON c.id = m.conversation_id
        WHERE m.created_at >= $1 {book_clause} GROUP BY 1""", *args)
    per_day = {r["day"]: int(r["n"]) for r in live}
    # Days whose conversations retention already removed live on in the roll-ups.
    for r in await pool.fetch(f"""
            SELECT day, sum(questions) AS n FROM daily_rollups c
            WHERE day >= ($1 AT TIME ZONE 'UTC')::date {book_clause} GROUP BY day""", *args):
        per_day.setdefault(r["day"], int(r["n"]))
    out.questions_per_day = sorted(per_day.items())

    question = NORMALISED.format(col="q.content")
    out.top_questions = [CountedText(r["text"], int(r["n"])) for r in await pool.fetch(f"""
        SELECT {question} AS text, count(*) AS n
        FROM turns t JOIN messages q ON q.id = t.question_message_id AND q.created_at = t.created_at
        JOIN conversations c ON c.id = t.conversation_id
        WHERE t.created_at >= $1 {book_clause} GROUP BY 1 ORDER BY n DESC, text LIMIT $3""", *args, limit)]
    out.unanswered = [CountedText(r["text"], int(r["n"])) for r in await pool.fetch(f"""
        SELECT {question} AS text, count(*) AS n
        FROM turns t JOIN messages q ON q.id = t.question_message_id AND q.created_at = t.created_at
        JOIN answer_metrics m ON m.message_id = t.answer_message_id
        JOIN conversations c ON c.id = t.conversation_id
        WHERE t.created_at >= $1 AND m.out_of_scope {book_clause} GROUP BY 1 ORDER BY n DESC, text LIMIT $3""",
        *args, limit)]
    for r in await pool.fetch(f"""
            SELECT q.content AS question, a.content AS answer, f.comment,
                   coalesce((SELECT json_agg(rv.url ORDER BY rv.rank) FROM retrievals rv
                             WHERE rv.message_id = t.answer_message_id), '[]') AS sources
            FROM feedback f JOIN turns t ON t.answer_message_id = f.message_id
            JOIN messages q ON q.id = t.question_message_id AND q.created_at = t.created_at
            JOIN messages a ON a.id = t.answer_message_id AND a.created_at = t.created_at
            JOIN conversations c ON c.id = t.conversation_id
            WHERE f.rating = 2 AND f.created_at >= $1 {book_clause}
            ORDER BY f.created_at DESC LIMIT $3""", *args, limit):
        out.downvoted.append(Downvote(r["question"], r["answer"], r["comment"], json.loads(r["sources"])))
    out.most_cited = [CitedSection(r["file_path"], " > ".join(json.loads(r["heading"])), r["url"], int(r["n"]))
                      for r in await pool.fetch(f"""
        SELECT rv.file_path, rv.heading, rv.url, count(*) AS n
        FROM retrievals rv JOIN conversations c ON c.id = rv.conversation_id
        JOIN answer_metrics m ON m.message_id = rv.message_id
        WHERE rv.created_at >= $1 AND NOT m.out_of_scope {book_clause}
        GROUP BY 1, 2, 3 ORDER BY n DESC, rv.file_path LIMIT $3""", *args, limit)]
    out.latency = [StageLatency(r["stage"], float(r["p50"]), float(r["p95"])) for r in await pool.fetch(f"""
        SELECT e.key AS stage,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY e.value::float8) AS p50,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY e.value::float8) AS p95
        FROM answer_metrics m JOIN conversations c ON c.id = m.conversation_id,
             jsonb_each_text(m.latencies_ms) e
        WHERE m.created_at >= $1 {book_clause} GROUP BY 1 ORDER BY 1""", *args)]
    votes = await pool.fetchrow(f"""
        SELECT count(*) FILTER (WHERE f.rating = 1) AS up, count(*) FILTER (WHERE f.rating = 2) AS down
        FROM feedback f JOIN conversations c ON c.id = f.conversation_id
        WHERE f.created_at >= $1 {book_clause}""", *args)
    if votes is not None:
        out.upvotes, out.downvotes = int(votes["up"]), int(votes["down"])
    return out
