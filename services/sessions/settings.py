"""Sessions settings, read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from runtime import env
from runtime.postgres import STATEMENT_CACHE
from runtime.settings import ServerSettings

DATABASE_URL = env.declare(
    "DATABASE_URL", "", env.text,
    "Postgres URL (Neon or any Postgres; sslmode honoured). Unset: embedded Postgres under $LECTERN_HOME.",
    "(embedded)",
)
POOL_MIN = env.declare("LECTERN_DB_POOL_MIN", 1, env.integer(0, 100), "Fewest pooled Postgres connections.")
POOL_MAX = env.declare("LECTERN_DB_POOL_MAX", 10, env.integer(1, 500), "Most pooled Postgres connections.")
STATEMENT_TIMEOUT_MS = env.declare(
    "LECTERN_DB_STATEMENT_TIMEOUT_MS", 5000, env.integer(100, 600_000), "Statement timeout for every query."
)
RETENTION_DAYS = env.declare(
    "LECTERN_RETENTION_DAYS", 30, env.integer(1, 3650),
    "Conversations inactive for longer are removed (daily roll-ups without text are kept).",
)
RETENTION_INTERVAL = env.declare(
    "LECTERN_RETENTION_INTERVAL_SECONDS", 3600.0, env.number(10, 86_400 * 7),
    "How often the retention job runs.",
)
REDACT = env.declare(
    "LECTERN_REDACT", True, env.boolean,
    "Redact e-mail addresses, phone numbers and secret-looking strings before messages are stored.",
)


@dataclass(frozen=True)
class SessionsSettings:
    server: ServerSettings
    """How the service listens."""
    database_url: str
    """Postgres URL, or empty for the embedded server."""
    pool_min: int
    """Fewest pooled connections."""
    pool_max: int
    """Most pooled connections."""
    statement_timeout_ms: int
    """Statement timeout, sent with every connection (works through Neon's pooler)."""
    statement_cache: int = STATEMENT_CACHE.default
    """Prepared statements kept per connection (0 for a pooler without protocol-level ones)."""
    retention_days: int = 30
    """Inactivity after which a conversation is removed."""
    retention_interval_seconds: float = 3600.0
    """Period of the background retention job."""
    redact: bool = True
    """Whether personal data and secrets are redacted before storage."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SessionsSettings:
        environ = os.environ if environ is None else environ
        pool_min, pool_max = POOL_MIN.read(environ), POOL_MAX.read(environ)
        if pool_min > pool_max:
            raise env.SettingsError(f"LECTERN_DB_POOL_MIN={pool_min} is larger than LECTERN_DB_POOL_MAX={pool_max}")
        return cls(
            server=ServerSettings.from_env("sessions", environ),
            database_url=DATABASE_URL.read(environ),
            pool_min=pool_min, pool_max=pool_max,
            statement_timeout_ms=STATEMENT_TIMEOUT_MS.read(environ),
            statement_cache=STATEMENT_CACHE.read(environ),
            retention_days=RETENTION_DAYS.read(environ),
            retention_interval_seconds=RETENTION_INTERVAL.read(environ),
            redact=REDACT.read(environ),
        )
