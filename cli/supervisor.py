"""``lectern run``: the whole stack on embedded defaults, as separate processes.

Starts embedded Postgres (unless DATABASE_URL is set), then sessions, retrieval, ingest,
chat and the gateway, each its own process talking gRPC over loopback; waits until every
one reports SERVING; ingests the sample book; prints the gateway URL and a curl command.
Ctrl-C (or SIGTERM) stops the processes in reverse order, each draining its calls.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc
from lectern.ingest.v1 import ingest_service_pb2 as ipb

from cli.ingest import console, print_summary, run_ingest
from gateway.settings import ADMIN_TOKEN, GATEWAY_PORT
from runtime.env import SettingsError
from runtime.settings import HOME, peer_addresses

START_ORDER = ("sessions", "retrieval", "ingest", "chat", "gateway")
MODULES = {name: f"services.{name}" for name in START_ORDER[:-1]} | {"gateway": "gateway"}
READY_TIMEOUT = 240.0
STOP_TIMEOUT = 8.0


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path


def admin_token(home: Path) -> str:
    """LECTERN_ADMIN_TOKEN, else the one stored under $LECTERN_HOME, else a new one."""
    given = ADMIN_TOKEN.read(os.environ)
    if given:
        return given
    path = home / "admin-token"
    if path.exists():
        return path.read_text().strip()
    token = secrets.token_urlsafe(24)
    path.write_text(token)
    path.chmod(0o600)
    return token


def start(name: str, env: dict[str, str], logs: Path) -> Child:
    log = logs / f"{name}.log"
    handle = log.open("ab")
    process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", MODULES[name]], env=env, stdout=handle, stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches the supervisor, which stops children in order
    )
    return Child(name, process, log)


async def wait_serving(child: Child, address: str, deadline: float) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if child.process.poll() is not None:
                raise RuntimeError(f"{child.name} exited with {child.process.returncode}; see {child.log}")
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.3)
    raise RuntimeError(f"{child.name} did not report SERVING in time; see {child.log}")


async def wait_http(child: Child, url: str, deadline: float) -> None:
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if child.process.poll() is not None:
                raise RuntimeError(f"{child.name} exited with {child.process.returncode}; see {child.log}")
            try:
                if (await client.get(url, timeout=2)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.3)
    raise RuntimeError(f"gateway did not become healthy; see {child.log}")


def stop_all(children: list[Child]) -> None:
    for child in reversed(children):
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for child in reversed(children):
        try:
            child.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()


def run_stack(book_dir: str, ingest: bool = True) -> int:
    try:
        home = HOME.read(os.environ).resolve()
        peers = peer_addresses(os.environ)
        gateway_port = GATEWAY_PORT.read(os.environ)
    except SettingsError as exc:
        console.print(f"[red]configuration error[/red]: {exc}")
        return 2
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, LECTERN_HOME=str(home), PYTHONUNBUFFERED="1")
    # glibc gives every thread its own malloc arena; the model threads' arenas then hold freed
    # memory for good. Two arenas keep the services' resident memory close to what they use.
    env.setdefault("MALLOC_ARENA_MAX", "2")
    env["LECTERN_ADMIN_TOKEN"] = token = admin_token(home)
    env.setdefault("LECTERN_INGEST_ROOTS", str(Path.cwd()))
    postgres = None
    if not env.get("DATABASE_URL"):
        from services.sessions.embedded_postgres import start_embedded

        console.print("starting embedded Postgres …")
        postgres, env["DATABASE_URL"] = start_embedded(home)

    stop = {"requested": False}

    def request_stop(signum: int, frame: object) -> None:
        stop["requested"] = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    children: list[Child] = []
    started = time.monotonic()
    try:
        for name in START_ORDER:
            children.append(start(name, env, logs))
        deadline = time.monotonic() + READY_TIMEOUT
        console.print(f"starting {', '.join(START_ORDER)} (logs in {logs}) …")

        async def ready() -> None:
            await asyncio.gather(*(wait_serving(c, peers[c.name], deadline) for c in children[:-1]))
            await wait_http(children[-1], f"http://127.0.0.1:{gateway_port}/healthz", deadline)

        asyncio.run(ready())
        console.print(f"all services SERVING after {time.monotonic() - started:.1f}s")
        if ingest and not stop["requested"]:
            request = ipb.IngestRequest(source_dir=str(Path(book_dir).resolve()), book="default", base_url="/docs/")
            print_summary(asyncio.run(run_ingest(peers["ingest"], request)))
        url = f"http://127.0.0.1:{gateway_port}"
        print(f"\nLectern is running at {url}  (API docs: {url}/docs)\n", flush=True)
        print("Try:\n  curl -N -X POST " + url + "/v1/chat -H 'Content-Type: application/json' "
              "-d '{\"message\": \"How do I install the sample robot kit?\"}'\n", flush=True)
        print(f"Admin token (for /v1/ingest): {token}\nPress Ctrl-C to stop.", flush=True)
        while not stop["requested"]:
            for child in children:
                if child.process.poll() is not None:
                    console.print(f"[red]{child.name} exited ({child.process.returncode}); see {child.log}[/red]")
                    stop["requested"] = True
            time.sleep(0.3)
        return 0
    except Exception as exc:  # a failed start is reported, then everything stops
        console.print(f"[red]{exc}[/red]")
        return 1
    finally:
        console.print("stopping …")
        stop_all(children)
        if postgres is not None:
            postgres.cleanup()
        console.print("stopped.")
