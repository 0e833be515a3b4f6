"""Postgres restarts under a running store: health drops, nothing is lost, and writes resume
without restarting the service (its own embedded server, so other tests are untouched)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from records.turn import Turn
from services.sessions.database import open_pool
from services.sessions.embedded_postgres import start_embedded
from services.sessions.store import ConversationStore


async def test_the_store_survives_a_database_restart(tmp_path_factory: pytest.TempPathFactory) -> None:
    home = tmp_path_factory.mktemp("restart")
    server, url = start_embedded(home)
    async with open_pool(url, home, 1, 3, 5000) as pool:
        store = ConversationStore(pool)
        cid, token = await store.create("book")
        await store.append_turn(Turn(cid, "t1", "Before the restart?", "Yes [1]."))
        assert await store.ping()

        server.cleanup()  # the database goes away mid-test
        assert not await store.ping()
        with pytest.raises((OSError, asyncpg.InterfaceError, asyncpg.PostgresError)):
            await store.append_turn(Turn(cid, "t2", "During the outage?", "Lost? [1]."))

        server, _ = start_embedded(home)  # and comes back with the same data
        for _ in range(20):
            if await store.ping():
                break
        assert await store.ping()
        await store.append_turn(Turn(cid, "t2", "During the outage?", "Not lost [1]."))  # the retry
        await store.append_turn(Turn(cid, "t2", "During the outage?", "Not lost [1]."))  # and its duplicate
        messages, _ = await store.list_messages(cid, token, 10, "")
        assert [m.content for m in messages] == ["Before the restart?", "Yes [1].", "During the outage?",
                                                 "Not lost [1]."]
    server.cleanup()




def test_a_start_that_outlasts_pg_ctls_timeout_joins_the_server(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """pgserver gives `pg_ctl start` 10 s. On a loaded machine the server comes up later, after
    pg_ctl was killed: the start waits for it and joins it instead of failing (a CI run failed so)."""
    import pgserver.postgres_server as pg

    real = pg.pg_ctl  # type: ignore[attr-defined]  # pgserver's own import of it, which the start calls
    starts: list[list[str]] = []

    def slow_pg_ctl(args: list[str], **kwargs: Any) -> Any:
        result = real(args, **kwargs)
        if args[-1] == "start" and not starts:  # the server starts, but pg_ctl "timed out"
            starts.append(args)
            raise subprocess.TimeoutExpired(args, 10)
        return result

    monkeypatch.setattr(pg, "pg_ctl", slow_pg_ctl)
    server, _ = start_embedded(tmp_path)
    try:
        assert starts and "1 row" in server.psql("SELECT 1;")
        assert pg.PostgresServer._instances[(tmp_path / "postgres").resolve()] is server
    finally:
        server.cleanup()
