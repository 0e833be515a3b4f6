"""asyncpg pools for any Postgres URL (Neon included), shared by the services that own one.

Settings travel as connection parameters, not SET commands, so nothing depends on session
state (Neon's pooler hands each transaction to any backend).
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from runtime import env
from runtime.status import NETWORK, Unreachable

# Errors that mean the database cannot be reached right now (down, restarting, a dropped
# connection): retryable UNAVAILABLE for callers, never INTERNAL. Declared here, with the pools,
# so every service that talks to Postgres maps them the same way by naming this in its
# ServiceSpec. PostgresConnectionError is SQLSTATE class 08 (a connection lost mid-query among
# them); the shutdown errors are what a server that is stopping or crashing sends its clients.
UNREACHABLE: Unreachable = NETWORK.plus(
    asyncpg.InterfaceError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError, asyncpg.CrashShutdownError, dependency="postgres",
)
STATEMENT_CACHE = env.declare(
    "LECTERN_DB_STATEMENT_CACHE", 256, env.integer(0, 10_000),
    "Prepared statements kept per Postgres connection. 0 for a pooler without protocol-level prepared "
    "statements (PgBouncer before 1.21, or max_prepared_statements=0); Neon's pooler has them.",
)

Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy
"""A connection of our own or one borrowed from a pool: queries take either."""


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
        # libpq's "require" encrypts without verifying the certificate; do the same.
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return clean, ctx
    return clean, ssl.create_default_context()  # verify-ca, verify-full


class StatelessConnection(asyncpg.Connection):
    """Skips the reset query asyncpg sends on every release to the pool (unlock advisory locks,
    close cursors, unlisten, RESET ALL): our code holds no session state to reset, since
    locks are transaction-level and settings travel at connect. That query was a round trip
    on every pooled call, on the sessions write path's critical path. Open transactions are
    still rolled back on release."""

    def get_reset_query(self) -> str:
        return ""


async def create_pool(database_url: str, *, pool_min: int, pool_max: int, statement_timeout_ms: int,
                      application_name: str, statement_cache: int) -> asyncpg.Pool:
    """A pool whose connections carry their settings from the start. ``statement_cache`` keeps
    that many prepared statements per connection: a statement is then parsed and planned once,
    not on every call (parsing and planning AppendTurn's batch statement is a large share of its
    Postgres CPU, and a round trip per call). Poolers that track protocol-level prepared statements (PgBouncer 1.21+,
    so Neon's) keep them working; for others it must be 0."""
    url, ssl_arg = split_sslmode(database_url)
    kwargs: dict[str, Any] = {"ssl": ssl_arg} if ssl_arg is not None else {}
    pool: asyncpg.Pool = await asyncpg.create_pool(
        url, min_size=pool_min, max_size=pool_max, command_timeout=statement_timeout_ms / 1000 + 5,
        server_settings={"statement_timeout": str(statement_timeout_ms), "application_name": application_name},
        statement_cache_size=statement_cache,
        connection_class=StatelessConnection,
        **kwargs,
    )
    return pool
