"""The whole stack in one process on loopback ports, for the tests, eval and bench.

Real services and real engines, as `make run` starts them, but in-process so the embedding
model is loaded once and start-up takes seconds. Every setting is read from the mapping the
caller gives, never from the process environment, so a developer's shell changes nothing a
test or a measurement runs. The gateway runs on a real uvicorn server, served as in production.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gateway.settings import GatewaySettings
from runtime.server import RunningService, start_service
from runtime.settings import ServerSettings

ADMIN_TOKEN = "eval-admin-token"  # noqa: S105 - loopback-only stack for measurements


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Services:
    """The four gRPC services, started on loopback."""

    retrieval: RunningService[Any]
    sessions: RunningService[Any]
    ingest: RunningService[Any]
    chat: RunningService[Any]

    @property
    def peers(self) -> dict[str, str]:
        return {n: getattr(self, n).address for n in ("retrieval", "sessions", "ingest", "chat")}


def server_settings(service: str, home: Path, environ: Mapping[str, str],
                    peers: Mapping[str, str] | None = None) -> ServerSettings:
    """How one service of the stack listens: loopback, a port the OS picks, ``environ`` for the rest."""
    base = ServerSettings.from_env(service, {**environ, "LECTERN_HOME": str(home)})
    return replace(base, host="127.0.0.1", port=0, peers=dict(peers or {}))


@asynccontextmanager
async def start_services(home: Path, database_url: str, roots: tuple[Path, ...],
                         environ: Mapping[str, str] | None = None) -> AsyncIterator[Services]:
    """Retrieval and sessions, then ingest and chat, which call them; ingest may read ``roots``."""
    from services.chat.service import spec as chat_spec
    from services.chat.settings import ChatSettings
    from services.ingest.service import spec as ingest_spec
    from services.ingest.settings import IngestSettings
    from services.retrieval.service import spec as retrieval_spec
    from services.retrieval.settings import RetrievalSettings
    from services.sessions.service import spec as sessions_spec
    from services.sessions.settings import SessionsSettings

    env = dict(environ or {})
    async with AsyncExitStack() as stack:
        r = replace(RetrievalSettings.from_env(env), server=server_settings("retrieval", home, env))
        retrieval = await stack.enter_async_context(start_service(retrieval_spec(r), r.server))
        s = replace(SessionsSettings.from_env(env), server=server_settings("sessions", home, env),
                    database_url=database_url)
        sessions = await stack.enter_async_context(start_service(sessions_spec(s), s.server))
        peers = {"retrieval": retrieval.address, "sessions": sessions.address}
        i = replace(IngestSettings.from_env(env), server=server_settings("ingest", home, env, peers),
                    roots=tuple(p.resolve() for p in roots))
        ingest = await stack.enter_async_context(start_service(ingest_spec(i), i.server))
        c = replace(ChatSettings.from_env(env), server=server_settings("chat", home, env, peers))
        chat = await stack.enter_async_context(start_service(chat_spec(c), c.server))
        yield Services(retrieval, sessions, ingest, chat)


def gateway_settings(peers: Mapping[str, str], admin_token: str,
                     environ: Mapping[str, str] | None = None) -> GatewaySettings:
    """Loopback, a port the OS picks, no rate limit (one client sends every request), ``environ``
    for the rest."""
    return replace(GatewaySettings.from_env(dict(environ or {})), host="127.0.0.1", port=0,
                   admin_token=admin_token, peers=dict(peers), rate_per_minute=0)


@asynccontextmanager
async def serve_gateway(settings: GatewaySettings, app: Any = None) -> AsyncIterator[str]:
    """The gateway app (``app``, else one built from ``settings``) on uvicorn as `python -m
    gateway` serves it, limits included; yields its base URL."""
    import uvicorn

    from gateway.app import create_app
    from gateway.server import uvicorn_config

    server = uvicorn.Server(uvicorn_config(app or create_app(settings), settings))
    task = asyncio.create_task(server.serve())
    while not server.started:  # uvicorn exposes a flag, not an event
        if task.done():
            task.result()  # start-up failed (uvicorn exits): raise, never wait for ever
            raise RuntimeError("the gateway stopped before it started")
        await asyncio.sleep(0.02)
    try:
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class LocalStack:
    home: Path
    services: Services
    gateway_url: str

    def address(self, name: str) -> str:
        running: RunningService[Any] = getattr(self.services, name)
        return running.address


@asynccontextmanager
async def local_stack(home: Path, roots: tuple[Path, ...], environ: Mapping[str, str] | None = None
                      ) -> AsyncIterator[LocalStack]:
    """Starts embedded Postgres, the four services and the gateway; `roots` may be ingested."""
    from services.sessions.embedded_postgres import start_embedded

    env = {"LECTERN_LOG_LEVEL": "WARNING", **(environ or {})}
    home.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - before any server starts
    pg, database_url = start_embedded(home)
    try:
        async with (start_services(home, database_url, roots, env) as services,
                    serve_gateway(gateway_settings(services.peers, ADMIN_TOKEN, env)) as url):
            yield LocalStack(home, services, url)
    finally:
        pg.cleanup()
