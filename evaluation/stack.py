"""The whole stack in one process on free loopback ports, for eval and bench.

Real services and real engines, as `make run` starts them, but in-process so the embedding
model is loaded once and start-up takes seconds. The gateway runs on a real uvicorn server.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import uvicorn

from runtime.server import RunningService, start_service
from runtime.settings import ServerSettings

ADMIN_TOKEN = "eval-admin-token"  # noqa: S105 - loopback-only stack for measurements


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalStack:
    home: Path
    services: dict[str, RunningService[Any]]
    gateway_url: str

    def address(self, name: str) -> str:
        return self.services[name].address


def _server(service: str, home: Path, peers: Mapping[str, str]) -> ServerSettings:
    base = ServerSettings.from_env(service, {"LECTERN_HOME": str(home)})
    return replace(base, port=0, peers=dict(peers), log_level="WARNING")


@asynccontextmanager
async def local_stack(home: Path, roots: tuple[Path, ...], environ: Mapping[str, str] | None = None
                      ) -> AsyncIterator[LocalStack]:
    """Starts embedded Postgres, the four services and the gateway; `roots` may be ingested."""
    from gateway.app import create_app
    from gateway.settings import GatewaySettings
    from services.chat.service import spec as chat_spec
    from services.chat.settings import ChatSettings
    from services.ingest.service import spec as ingest_spec
    from services.ingest.settings import IngestSettings
    from services.retrieval.service import spec as retrieval_spec
    from services.retrieval.settings import RetrievalSettings
    from services.sessions.embedded_postgres import start_embedded
    from services.sessions.service import spec as sessions_spec
    from services.sessions.settings import SessionsSettings

    env = dict(environ or {})
    home.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - before any server starts
    pg, database_url = start_embedded(home)
    running: dict[str, RunningService[Any]] = {}
    try:
        async with AsyncExitStack() as stack:
            r = replace(RetrievalSettings.from_env(env), server=_server("retrieval", home, {}))
            running["retrieval"] = await stack.enter_async_context(start_service(retrieval_spec(r), r.server))
            s = replace(SessionsSettings.from_env(env), server=_server("sessions", home, {}),
                        database_url=database_url)
            running["sessions"] = await stack.enter_async_context(start_service(sessions_spec(s), s.server))
            peers = {n: running[n].address for n in ("retrieval", "sessions")}
            i = replace(IngestSettings.from_env(env), server=_server("ingest", home, peers), roots=roots)
            running["ingest"] = await stack.enter_async_context(start_service(ingest_spec(i), i.server))
            c = replace(ChatSettings.from_env(env), server=_server("chat", home, peers))
            running["chat"] = await stack.enter_async_context(start_service(chat_spec(c), c.server))
            port = free_port()
            all_peers = {n: svc.address for n, svc in running.items()}
            g = replace(GatewaySettings.from_env(env), host="127.0.0.1", port=port, admin_token=ADMIN_TOKEN,
                        peers=all_peers, log_level="WARNING", rate_per_minute=0)
            server = uvicorn.Server(uvicorn.Config(create_app(g), host="127.0.0.1", port=port, log_config=None,
                                                   access_log=False))
            task = asyncio.create_task(server.serve())
            while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
                await asyncio.sleep(0.05)
            try:
                yield LocalStack(home, running, f"http://127.0.0.1:{port}")
            finally:
                server.should_exit = True
                await task
    finally:
        pg.cleanup()
