"""The asyncpg pool: Neon or any Postgres by DATABASE_URL, else the embedded server.

Settings travel as connection parameters, not SET commands, so nothing depends on session
state (Neon's pooler hands each transaction to any backend).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from services.sessions.embedded_postgres import start_embedded
from services.sessions.migrations import migrate


def split_sslmode(url: str) -> tuple[str, Any]:
    """asyncpg takes sslmode through ``ssl=``; require/verify-* get a real TLS context."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    mode = query.pop("sslmode", "")
    clean = urlunsplit(parts._replace(query=urlencode(query)))
    if mode in ("", "disable"):
        return clean, False if mode == "disable" else None
    if mode in ("allow", "prefer"):
        return clean, mode
    if mode == "require":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return clean, ctx
    return clean, ssl.create_default_context()  # verify-ca, verify-full


@asynccontextmanager
async def open_pool(database_url: str, home: Path, pool_min: int, pool_max: int,
                    statement_timeout_ms: int) -> AsyncIterator[asyncpg.Pool]:
    embedded = None
    if not database_url:
        embedded, database_url = start_embedded(home)
    url, ssl_arg = split_sslmode(database_url)
    kwargs: dict[str, Any] = {"ssl": ssl_arg} if ssl_arg is not None else {}
    pool = await asyncpg.create_pool(
        url, min_size=pool_min, max_size=pool_max, command_timeout=statement_timeout_ms / 1000 + 5,
        server_settings={"statement_timeout": str(statement_timeout_ms), "application_name": "lectern-sessions"},
        statement_cache_size=0,  # prepared statements do not survive transaction pooling
        **kwargs,
    )
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
        yield pool
    finally:
        await pool.close()
        del embedded  # the embedded server stops when its last handle in this process exits
