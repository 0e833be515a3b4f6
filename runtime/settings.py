"""Settings every service shares: where data lives, where each service listens, and how
calls between services are bounded. Read once at start-up into frozen objects."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from runtime import env

HOME = env.declare(
    "LECTERN_HOME", Path(".lectern"), env.path, "Folder for all local data: embedded Postgres, Qdrant Edge, caches.",
    "./.lectern",
)
BIND_HOST = env.declare(
    "LECTERN_BIND_HOST", "127.0.0.1", env.text, "Interface the internal gRPC services listen on (loopback by default)."
)
GRACE_SECONDS = env.declare(
    "LECTERN_GRACE_SECONDS", 5.0, env.number(0, 300), "How long in-flight calls may drain after SIGTERM/SIGINT."
)
CALL_TIMEOUT_SECONDS = env.declare(
    "LECTERN_CALL_TIMEOUT_SECONDS", 30.0, env.number(0.1, 3600),
    "Deadline given to every outgoing gRPC call that does not set its own.",
)
HEALTH_INTERVAL_SECONDS = env.declare(
    "LECTERN_HEALTH_INTERVAL_SECONDS", 2.0, env.number(0.1, 600),
    "How often a service re-checks its own dependency for the health service.",
)
LOG_LEVEL = env.declare(
    "LECTERN_LOG_LEVEL", "INFO", env.choice("DEBUG", "INFO", "WARNING", "ERROR"), "Log level of every service."
)
SERVICE = env.declare(
    "LECTERN_SERVICE", "", env.choice("", "ingest", "retrieval", "chat", "sessions"),
    "Which service a container runs; read by its health check (python -m runtime.healthcheck).", "(unset)",
)
EVENT_LOOP = env.declare(
    "LECTERN_EVENT_LOOP", "uvloop", env.choice("uvloop", "asyncio"),
    "Event loop every service runs on: uvloop (libuv; cheaper per call for grpc.aio and asyncpg) "
    "or the standard library's.",
)
KEEPALIVE_SECONDS = env.declare(
    "LECTERN_KEEPALIVE_SECONDS", 30.0, env.number(1, 3600),
    "How often both ends of every gRPC connection ping it when quiet; servers accept pings at that rate, so "
    "long silent streams (an ingest while it embeds) stay open.",
)
KEEPALIVE_TIMEOUT_SECONDS = env.declare(
    "LECTERN_KEEPALIVE_TIMEOUT_SECONDS", 10.0, env.number(1, 600),
    "How long a keepalive ping may go unanswered before the connection is closed as dead.",
)
# Gemini serves two owners, chat's answerer and the Gemini embedder: declared once, here.
GEMINI_API_KEY = env.declare(
    "GEMINI_API_KEY", "", env.text,
    "Gemini API key: with it (and LECTERN_LLM unset) answers come from Gemini with function calling, else from "
    "the offline extractive answerer; LECTERN_EMBEDDER=gemini needs it too.", "(unset: extractive)",
)
GEMINI_BASE_URL = env.declare(
    "LECTERN_GEMINI_BASE_URL", "", env.text,
    "Override of the Gemini API endpoint (a proxy, or a fake server in tests).", "(Google's endpoint)",
)
OTLP_ENDPOINT = env.declare(
    "OTEL_EXPORTER_OTLP_ENDPOINT", "", env.text, "OTLP collector for traces; unset, tracing is off and free.",
    "(unset)",
)


@dataclass(frozen=True)
class Keepalive:
    """The one keepalive policy of every gRPC connection, for channels and servers alike
    (``runtime.channels`` turns it into each side's channel arguments)."""

    interval_seconds: float = KEEPALIVE_SECONDS.default
    """Period of the pings on a quiet connection."""
    timeout_seconds: float = KEEPALIVE_TIMEOUT_SECONDS.default
    """How long a ping may go unanswered."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Keepalive:
        return cls(KEEPALIVE_SECONDS.read(environ), KEEPALIVE_TIMEOUT_SECONDS.read(environ))


DEFAULT_KEEPALIVE = Keepalive()


@dataclass(frozen=True)
class Peer:
    """A service as seen by the others: the port it listens on and the address to reach it."""

    name: str
    port_var: env.EnvVar[int]
    addr_var: env.EnvVar[str]


def _peer(name: str, default_port: int) -> Peer:
    upper = name.upper()
    port = env.declare(
        f"LECTERN_{upper}_PORT", default_port, env.integer(0, 65535),
        f"Port the {name} service listens on (0 picks a free one).",
    )
    addr = env.declare(
        f"LECTERN_{upper}_ADDR", "", env.address,
        f"host:port other services use to reach the {name} service.",
        f"127.0.0.1:$LECTERN_{upper}_PORT",
    )
    return Peer(name, port, addr)


INGEST = _peer("ingest", 50051)
RETRIEVAL = _peer("retrieval", 50052)
CHAT = _peer("chat", 50053)
SESSIONS = _peer("sessions", 50054)
PEERS = {p.name: p for p in (INGEST, RETRIEVAL, CHAT, SESSIONS)}


@dataclass(frozen=True)
class ServerSettings:
    """How one gRPC service listens, shuts down and talks to its peers."""

    service: str
    """Short service name: ingest, retrieval, chat or sessions."""
    host: str
    """Interface to bind."""
    port: int
    """Port to bind; 0 asks the OS for a free one."""
    home: Path
    """Folder for local data."""
    grace_seconds: float
    """Drain time for in-flight calls on shutdown."""
    call_timeout_seconds: float
    """Default deadline of outgoing calls."""
    health_interval_seconds: float
    """Period of the dependency check behind the health service."""
    log_level: str
    """Log level."""
    otlp_endpoint: str
    """OTLP endpoint for traces, or empty."""
    event_loop: str
    """``uvloop`` or ``asyncio``: the loop the service runs on."""
    peers: Mapping[str, str]
    """Address of every service by short name."""
    keepalive: Keepalive = DEFAULT_KEEPALIVE
    """Keepalive of the server and of the channels it opens."""

    @classmethod
    def from_env(cls, service: str, environ: Mapping[str, str] | None = None) -> ServerSettings:
        environ = os.environ if environ is None else environ
        if service not in PEERS:
            raise ValueError(f"unknown service {service!r}")
        return cls(
            service=service,
            host=BIND_HOST.read(environ),
            port=PEERS[service].port_var.read(environ),
            home=HOME.read(environ).resolve(),
            grace_seconds=GRACE_SECONDS.read(environ),
            call_timeout_seconds=CALL_TIMEOUT_SECONDS.read(environ),
            health_interval_seconds=HEALTH_INTERVAL_SECONDS.read(environ),
            log_level=LOG_LEVEL.read(environ),
            otlp_endpoint=OTLP_ENDPOINT.read(environ),
            event_loop=EVENT_LOOP.read(environ),
            peers=peer_addresses(environ),
            keepalive=Keepalive.from_env(environ),
        )


def peer_addresses(environ: Mapping[str, str]) -> dict[str, str]:
    """Address of each service: its *_ADDR variable, else loopback and its *_PORT."""
    result = {}
    for name, peer in PEERS.items():
        result[name] = peer.addr_var.read(environ) or f"127.0.0.1:{peer.port_var.read(environ)}"
    return result
