"""Versioned schema migrations, applied at start-up.

Each migration runs in its own transaction under a transaction-level advisory lock, so two
instances starting at once apply each migration exactly once, and nothing relies on
session state (safe behind Neon's transaction pooler).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from runtime.postgres import Connection

log = logging.getLogger("lectern.sessions.migrations")

LOCK_KEY = 7_215_020_513  # any constant shared by every instance


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "conversations, messages, retrievals, metrics, feedback", """
CREATE TABLE conversations (
    id              uuid PRIMARY KEY,
    book            text NOT NULL,
    token_hash      bytea NOT NULL,
    created_at      timestamptz NOT NULL,
    last_active_at  timestamptz NOT NULL
);
CREATE INDEX conversations_last_active ON conversations (last_active_at);

-- Messages are partitioned by month so that retention can drop whole partitions.
CREATE TABLE messages (
    id               uuid NOT NULL,
    conversation_id  uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    role             smallint NOT NULL,
    content          text NOT NULL,
    mode             text NOT NULL DEFAULT 'general',
    rewritten_query  text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL,
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE messages_default PARTITION OF messages DEFAULT;
CREATE INDEX messages_conversation ON messages (conversation_id, created_at, id);

-- One row per client turn id: what makes AppendTurn idempotent.
CREATE TABLE turns (
    conversation_id      uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    turn_id              text NOT NULL,
    question_message_id  uuid NOT NULL,
    answer_message_id    uuid NOT NULL,
    created_at           timestamptz NOT NULL,
    PRIMARY KEY (conversation_id, turn_id)
);
CREATE UNIQUE INDEX turns_answer ON turns (answer_message_id);

CREATE TABLE retrievals (
    message_id       uuid NOT NULL,
    conversation_id  uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    rank             integer NOT NULL,
    chunk_id         text NOT NULL,
    file_path        text NOT NULL,
    heading          text NOT NULL,
    url              text NOT NULL,
    score            double precision NOT NULL,
    created_at       timestamptz NOT NULL,
    PRIMARY KEY (message_id, rank)
);
CREATE INDEX retrievals_created ON retrievals (created_at);

CREATE TABLE answer_metrics (
    message_id       uuid PRIMARY KEY,
    conversation_id  uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    latencies_ms     jsonb NOT NULL DEFAULT '{}',
    tokens           integer NOT NULL DEFAULT 0,
    out_of_scope     boolean NOT NULL DEFAULT false,
    grounded         boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL
);
CREATE INDEX answer_metrics_created ON answer_metrics (created_at);

CREATE TABLE feedback (
    message_id       uuid PRIMARY KEY,
    conversation_id  uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    rating           smallint NOT NULL,
    comment          text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL
);
"""),
    Migration(2, "daily roll-ups that outlive retention", """
CREATE TABLE daily_rollups (
    day                   date NOT NULL,
    book                  text NOT NULL,
    questions             integer NOT NULL,
    out_of_scope          integer NOT NULL,
    ungrounded            integer NOT NULL,
    upvotes               integer NOT NULL,
    downvotes             integer NOT NULL,
    latency_total_ms_sum  double precision NOT NULL,
    answers_with_latency  integer NOT NULL,
    PRIMARY KEY (day, book)
);
CREATE INDEX turns_created ON turns (created_at);
CREATE INDEX feedback_created ON feedback (created_at);
"""),
    Migration(3, "analytics columns and per-day summaries without message text", """
-- Written by AppendTurn so analytics need no joins: the conversation's book and the question
-- normalised (lower case, punctuation dropped, spaces collapsed).
ALTER TABLE answer_metrics ADD COLUMN book text NOT NULL DEFAULT '',
                           ADD COLUMN question_key text NOT NULL DEFAULT '';
UPDATE answer_metrics m SET book = c.book FROM conversations c WHERE c.id = m.conversation_id;
UPDATE answer_metrics m
   SET question_key = btrim(regexp_replace(regexp_replace(lower(q.content), '[^[:alnum:][:space:]]', '', 'g'),
                                           '\\s+', ' ', 'g'))
  FROM turns t JOIN messages q ON q.id = t.question_message_id AND q.created_at = t.created_at
 WHERE t.answer_message_id = m.message_id;
CREATE INDEX answer_metrics_question ON answer_metrics (hashtextextended(question_key, 0));
CREATE INDEX feedback_downvotes ON feedback (created_at DESC) WHERE rating = 2;

-- Finished days are summarised once; analytics read these instead of every row. Questions are
-- kept as hashes only: the text lives with the conversation and goes when it goes.
CREATE TABLE summarized_days (
    day            date PRIMARY KEY,
    summarized_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE daily_questions (
    day            date NOT NULL,
    book           text NOT NULL,
    question_hash  bigint NOT NULL,
    asked          integer NOT NULL,
    unanswered     integer NOT NULL,
    PRIMARY KEY (day, book, question_hash)
);
CREATE TABLE daily_citations (
    day        date NOT NULL,
    book       text NOT NULL,
    url        text NOT NULL,
    file_path  text NOT NULL,
    heading    text NOT NULL,
    cited      integer NOT NULL,
    PRIMARY KEY (day, book, url, file_path, heading)
);
-- Latency as a histogram of 2%-wide logarithmic buckets: histograms of days add up, and
-- percentiles read from them are within 1% of the exact ones.
CREATE TABLE daily_latency (
    day      date NOT NULL,
    book     text NOT NULL,
    stage    text NOT NULL,
    bucket   integer NOT NULL,
    answers  integer NOT NULL,
    PRIMARY KEY (day, book, stage, bucket)
);
"""),
    Migration(4, "turn rows without per-row foreign-key checks", """
-- A turn's rows are all written by one statement holding its conversation's row lock (which is
-- what guarantees the conversation exists), and services/sessions/erasure.py removes them by key
-- after locking the conversations. The per-row checks cost about a quarter of Postgres's time
-- per AppendTurn, and the cascades they drove scanned retrievals, answer_metrics and feedback
-- whole for every conversation deleted (none of them is indexed by conversation).
ALTER TABLE turns DROP CONSTRAINT IF EXISTS turns_conversation_id_fkey;
ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_conversation_id_fkey;
ALTER TABLE retrievals DROP CONSTRAINT IF EXISTS retrievals_conversation_id_fkey;
ALTER TABLE answer_metrics DROP CONSTRAINT IF EXISTS answer_metrics_conversation_id_fkey;
ALTER TABLE feedback DROP CONSTRAINT IF EXISTS feedback_conversation_id_fkey;
"""),
)


async def migrate(conn: Connection) -> list[int]:
    """Applies pending migrations; returns the versions applied now."""
    applied_now: list[int] = []
    for migration in MIGRATIONS:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = await conn.fetchval("SELECT 1 FROM schema_migrations WHERE version = $1", migration.version)
            if done:
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", migration.version, migration.name
            )
            applied_now.append(migration.version)
            log.info("migration applied", extra={"version": migration.version, "migration": migration.name})
    return applied_now
