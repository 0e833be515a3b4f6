"""The sessions pool: Neon or any Postgres by DATABASE_URL, else the embedded server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from runtime.postgres import STATEMENT_CACHE, create_pool
from services.sessions.embedded_postgres import start_embedded
from services.sessions.migrations import migrate


@asynccontextmanager
async def open_pool(database_url: str, home: Path, pool_min: int, pool_max: int, statement_timeout_ms: int,
                    statement_cache: int = STATEMENT_CACHE.default) -> AsyncIterator[asyncpg.Pool]:
    embedded = None
    if not database_url:
        embedded, database_url = start_embedded(home)
    pool = await create_pool(database_url, pool_min=pool_min, pool_max=pool_max,
                             statement_timeout_ms=statement_timeout_ms, application_name="lectern-sessions",
                             statement_cache=statement_cache)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
        yield pool
    finally:
        await pool.close()
        del embedded  # the embedded server stops when its last handle in this process exits
