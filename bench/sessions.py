"""Write load on the sessions service: AppendTurn with sources and latencies, as chat sends it."""

from __future__ import annotations

import uuid

import grpc
from lectern.common.v1 import common_pb2
from lectern.sessions.v1 import sessions_service_pb2 as spb
from lectern.sessions.v1 import sessions_service_pb2_grpc as spb_grpc

from bench.load import LoadResult, run_load


async def append_load(address: str, concurrency: int, seconds: float) -> LoadResult:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = spb_grpc.SessionsServiceStub(channel)
        conversations = [(await stub.CreateConversation(spb.CreateConversationRequest(book="bench"))).conversation_id
                         for _ in range(concurrency)]
        sources = [common_pb2.SourceReference(n=n, chunk_id=str(uuid.uuid4()), file_path="api/Store.md",
                                              heading_path=["Store", "dispatch"], url="/docs/api/store#dispatch",
                                              score=0.5) for n in (1, 2, 3)]

        async def call(i: int) -> None:
            await stub.AppendTurn(spb.AppendTurnRequest(
                conversation_id=conversations[i % len(conversations)], turn_id=str(uuid.uuid4()),
                question="How do I dispatch an action?", answer="Call store.dispatch(action) [1].", mode="general",
                sources=sources, latencies=[spb.StageLatency(stage="retrieve", ms=12.0)], grounded=True,
                answer_message_id=str(uuid.uuid4()),
            ), timeout=30)

        return await run_load(call, concurrency, seconds)


async def seed_turns(database_url: str, turns: int, days: int = 30, days_ago: int = 0) -> float:
    """Writes `turns` answered questions spread over `days` that end `days_ago` straight into
    the sessions schema (the rows AppendTurn would write, in bulk); returns the seconds spent."""
    import time

    import asyncpg

    started = time.perf_counter()
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            await conn.execute("""
                CREATE TEMP TABLE seed AS
                SELECT g AS i, gen_random_uuid() AS cid, gen_random_uuid() AS qid, gen_random_uuid() AS aid,
                       now() - make_interval(days => $3::int) - (g % ($2::int * 24)) * interval '1 hour'
                             - interval '5 minutes' AS at
                FROM generate_series(1, $1::int) g""", turns, days, days_ago)
            await conn.execute("""
                INSERT INTO conversations (id, book, token_hash, created_at, last_active_at)
                SELECT cid, 'seed', '\\x00', at, at FROM seed""")
            await conn.execute("""
                INSERT INTO turns (conversation_id, turn_id, question_message_id, answer_message_id, created_at)
                SELECT cid, 't', qid, aid, at FROM seed""")
            await conn.execute("""
                INSERT INTO messages (id, conversation_id, role, content, mode, rewritten_query, created_at)
                SELECT qid, cid, 1, 'How do I tune question ' || (i % 500) || '?', 'general', '', at FROM seed
                UNION ALL
                SELECT aid, cid, 2, 'An answer [1].', 'general', '', at FROM seed""")
            await conn.execute("""
                INSERT INTO retrievals (message_id, conversation_id, rank, chunk_id, file_path, heading, url, score,
                                        created_at)
                SELECT aid, cid, r, 'c' || (i % 300), 'f' || (i % 300) || '.md', '["Page", "Section"]',
                       '/docs/f' || (i % 300) || '#s', 0.5, at FROM seed, generate_series(1, 3) r""")
            await conn.execute("""
                INSERT INTO answer_metrics (message_id, conversation_id, latencies_ms, tokens, out_of_scope, grounded,
                                            created_at, book, question_key)
                SELECT aid, cid, jsonb_build_object('retrieve', 5 + i % 20, 'total', 20 + i % 80), 0,
                       i % 10 = 0, i % 10 <> 0, at, 'seed', 'how do i tune question ' || (i % 500) FROM seed""")
            await conn.execute("""
                INSERT INTO feedback (message_id, conversation_id, rating, comment, created_at)
                SELECT aid, cid, CASE WHEN i % 3 = 0 THEN 2 ELSE 1 END, '', at FROM seed WHERE i % 7 = 0""")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return time.perf_counter() - started


async def retention_seconds(address: str) -> tuple[int, float]:
    """One RunRetention; returns the conversations it removed and the seconds it took."""
    import time

    async with grpc.aio.insecure_channel(address) as channel:
        started = time.perf_counter()
        report = await spb_grpc.SessionsServiceStub(channel).RunRetention(spb.RunRetentionRequest(), timeout=600)
        return report.conversations_deleted, time.perf_counter() - started


async def analytics_latency(address: str, days: int, repeats: int) -> list[float]:
    import time

    async with grpc.aio.insecure_channel(address) as channel:
        stub = spb_grpc.SessionsServiceStub(channel)
        timings = []
        for _ in range(repeats):
            started = time.perf_counter()
            await stub.Analytics(spb.AnalyticsRequest(days=days), timeout=60)
            timings.append((time.perf_counter() - started) * 1000)
        return timings
