"""The stack's processes: how each is started, when it counts as ready, and how it is stopped."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

PROBE_PERIOD = 0.2


@dataclass
class Child:
    """One running process of the stack."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def exited(self) -> str | None:
        """None while it runs, else how it ended ("status 1", "SIGKILL")."""
        code = self.process.poll()
        if code is None:
            return None
        return signal.Signals(-code).name if code < 0 else f"status {code}"


ReadyProbe = Callable[[Child, float], Awaitable[None]]
"""Returns once the child serves; raises ChildFailed if it exits or the deadline passes."""


class ChildFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class ChildSpec:
    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    log: Path
    ready: ReadyProbe
    stop_signal: int = signal.SIGTERM
    user: str | None = None

    def start(self) -> Child:
        with self.log.open("ab") as handle:
            handle.write(f"--- lectern run: starting {self.name} at {time.strftime('%H:%M:%S')} ---\n".encode())
            handle.flush()
            process = subprocess.Popen(  # noqa: S603 - our own modules and the bundled postgres
                self.argv, env=dict(self.env), stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT,
                user=self.user,
                start_new_session=True,  # Ctrl-C reaches the supervisor only, which stops children in order
            )
        return Child(self.name, process, self.log)


def _check_alive(child: Child, deadline: float) -> None:
    how = child.exited()
    if how is not None:
        raise ChildFailed(f"{child.name} exited ({how}); see {child.log}")
    if time.monotonic() > deadline:
        raise ChildFailed(f"{child.name} did not become ready in time; see {child.log}")


async def wait_serving(child: Child, address: str, deadline: float) -> None:
    """Until the gRPC health service of ``child`` at ``address`` says SERVING."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            _check_alive(child, deadline)
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(PROBE_PERIOD)


async def wait_http(child: Child, url: str, deadline: float) -> None:
    """Until ``url`` answers 200 (for the gateway's /healthz: every part it sees is SERVING)."""
    async with httpx.AsyncClient() as client:
        while True:
            _check_alive(child, deadline)
            try:
                if (await client.get(url, timeout=2)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(PROBE_PERIOD)


def grpc_probe(address: str) -> ReadyProbe:
    return lambda child, deadline: wait_serving(child, address, deadline)


def http_probe(url: str) -> ReadyProbe:
    return lambda child, deadline: wait_http(child, url, deadline)


def call_probe(check: Callable[[], Awaitable[None]]) -> ReadyProbe:
    """Ready once ``check`` returns without raising (e.g. a database connection)."""
    async def probe(child: Child, deadline: float) -> None:
        while True:
            _check_alive(child, deadline)
            try:
                await check()
                return
            except Exception:  # anything short of success means "not yet"
                await asyncio.sleep(PROBE_PERIOD)
    return probe


async def stop_children(children: list[Child], signals: Mapping[str, int], grace: float) -> None:
    """Signals them all (in the order given), waits up to ``grace`` seconds, then kills the rest."""
    for child in children:
        if child.process.poll() is None:
            child.process.send_signal(signals.get(child.name, signal.SIGTERM))
    deadline = time.monotonic() + grace
    while any(c.process.poll() is None for c in children) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)  # the exits of processes are polled; there is no event to wait on
    for child in children:
        if child.process.poll() is None:
            child.process.kill()
            child.process.wait()
