"""The supervisor's life: refuse or clean up before starting, start in order, keep every process
up (a crashed one is restarted with backoff while the rest keep serving), stop in reverse order."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from lectern.ingest.v1 import ingest_service_pb2 as ipb

from cli.ingest import console, describe_error, print_summary, run_ingest
from cli.supervisor.children import (
    Child,
    ChildFailed,
    ChildSpec,
    call_probe,
    grpc_probe,
    http_probe,
    stop_children,
    wait_http,
)
from cli.supervisor.ports import ports_in_use
from cli.supervisor.restart_policy import RestartPolicy
from cli.supervisor.run_state import ProcessRecord, RunLock, RunState, describe, leftovers, me, stop_processes
from gateway.settings import ADMIN_TOKEN, GATEWAY_HOST, GATEWAY_PORT
from runtime.env import SettingsError
from runtime.errors import LecternError
from runtime.settings import BIND_HOST, HOME, PEERS, peer_addresses

SERVICES = ("sessions", "retrieval", "ingest", "chat", "gateway")
MODULES = {name: f"services.{name}" for name in SERVICES[:-1]} | {"gateway": "gateway"}
READY_TIMEOUT = 240.0  # first start: models load, the data directory may be created
RESTART_READY_TIMEOUT = 120.0
WHOLE_TIMEOUT = 60.0  # after a restart, for the gateway to see every part SERVING again
STOP_TIMEOUT = 8.0  # services drain LECTERN_GRACE_SECONDS (5 s by default) before this
WATCH_PERIOD = 0.2
# A closed terminal (SIGHUP) stops the stack like Ctrl-C, instead of killing the supervisor alone.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
T = TypeVar("T")


class Refused(Exception):
    """The stack cannot start as asked; the message says why and what to do."""


def say(text: str, style: str | None = None) -> None:
    """One timestamped line on the terminal. After SIGHUP the terminal is gone: lines are dropped."""
    with contextlib.suppress(OSError):
        console.print(f"{time.strftime('%H:%M:%S')} {text}", style=style, soft_wrap=True, highlight=False,
                      markup=False)


def shout(text: str) -> None:
    """Plain stdout, for what a user copies (URLs, commands); dropped after SIGHUP too."""
    with contextlib.suppress(OSError):
        print(text, flush=True)


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


@dataclass
class Supervised:
    spec: ChildSpec
    child: Child | None = None
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    serving_since: float | None = None
    """time.monotonic() when it last became SERVING; None while it is down or starting."""


class Stack:
    def __init__(self, home: Path, specs: list[ChildSpec], healthz: str) -> None:
        self.home = home
        self.parts = {s.name: Supervised(s) for s in specs}
        self.healthz = healthz
        self.stopping = asyncio.Event()
        self.whole = asyncio.Event()
        self.failure = ""
        self.broken_since: float | None = None
        self.state = RunState(me())

    def request_stop(self, sig: signal.Signals) -> None:
        if not self.stopping.is_set():
            say(f"{sig.name} received: stopping")
        self.stopping.set()

    def _launch(self, name: str) -> Child:
        part = self.parts[name]
        child = part.child = part.spec.start()
        self.state.children[name] = ProcessRecord.of(name, child.process.pid, part.spec.stop_signal)
        self.state.save(self.home)
        return child

    async def unless_stopped(self, work: Awaitable[T]) -> tuple[bool, T | None]:
        """Runs ``work`` unless a stop comes first: (True, result), or (False, None) if stopped."""
        task = asyncio.ensure_future(work)
        stop = asyncio.ensure_future(self.stopping.wait())
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if task.done():
            return True, task.result()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return False, None

    async def start(self, names: tuple[str, ...], within: float) -> bool:
        """Starts ``names`` together and waits for all to serve; raises ChildFailed, False if stopped."""
        children = [self._launch(n) for n in names]
        deadline = time.monotonic() + within
        done, _ = await self.unless_stopped(
            asyncio.gather(*(self.parts[c.name].spec.ready(c, deadline) for c in children)))
        now = time.monotonic()
        for name in names:
            self.parts[name].serving_since = now
        return done

    async def watch(self, name: str) -> None:
        """Restarts ``name`` whenever it exits, until the stack stops or the policy gives up."""
        part = self.parts[name]
        while not self.stopping.is_set():
            assert part.child is not None
            how = part.child.exited()
            if how is None:
                await asyncio.sleep(WATCH_PERIOD)
                continue
            crashed = time.monotonic()
            served = crashed - part.serving_since if part.serving_since is not None else 0.0
            part.serving_since = None
            self.whole.clear()
            self.broken_since = self.broken_since or crashed
            delay = part.policy.after_crash(served)
            if delay is None:
                self.failure = (f"{name} crashed {part.policy.max_attempts} times in a row; giving up "
                                f"(see {part.child.log})")
                self.stopping.set()
                return
            say(f"{name} exited ({how}) after serving {served:.0f}s; restarting in {delay:.1f}s "
                f"(attempt {part.policy.attempts} of {part.policy.max_attempts}); see {part.child.log}", "red")
            if (await self.unless_stopped(asyncio.sleep(delay)))[0] is False:
                return
            child = self._launch(name)
            try:
                ready, _ = await self.unless_stopped(part.spec.ready(child, time.monotonic() + RESTART_READY_TIMEOUT))
            except ChildFailed as exc:
                say(f"restart failed: {exc}", "red")
                if child.process.poll() is None:
                    child.process.kill()  # hung while starting: the next turn of the loop counts it as a crash
                    child.process.wait()
                continue
            if not ready:
                return
            part.serving_since = time.monotonic()
            say(f"{name} is SERVING again (pid {child.process.pid}, "
                f"{part.serving_since - crashed:.1f}s after it exited)", "green")
            await self._announce_whole()

    async def _announce_whole(self) -> None:
        if any(p.serving_since is None for p in self.parts.values()):
            return  # another part is still restarting; the last one to come back announces
        gateway = self.parts["gateway"].child
        assert gateway is not None
        try:
            ok, _ = await self.unless_stopped(wait_http(gateway, self.healthz, time.monotonic() + WHOLE_TIMEOUT))
        except ChildFailed:
            return  # the gateway went down meanwhile; its watcher takes over
        if ok and self.broken_since is not None and all(p.serving_since for p in self.parts.values()):
            say(f"the stack is whole again: every process is SERVING, {time.monotonic() - self.broken_since:.1f}s "
                "after the first crash", "green")
            self.broken_since = None
            self.whole.set()

    async def stop(self) -> None:
        """Services first (newest first), then Postgres, so no service loses its database mid-drain."""
        running = [p.child for p in reversed(self.parts.values()) if p.child is not None]
        signals = {p.spec.name: p.spec.stop_signal for p in self.parts.values()}
        await stop_children([c for c in running if c.name != "postgres"], signals, STOP_TIMEOUT)
        await stop_children([c for c in running if c.name == "postgres"], signals, STOP_TIMEOUT)


def clean_up_after_dead_supervisor(home: Path, lock: RunLock) -> None:
    """Refuses if another supervisor is alive on ``home``; stops what a dead one left running."""
    if not lock.acquire():
        state = RunState.load(home)
        pid = f" (pid {state.supervisor.pid})" if state else ""
        raise Refused(f"another `lectern run`{pid} is already running with LECTERN_HOME={home}; stop it first "
                      "(Ctrl-C in its terminal) or give this one another LECTERN_HOME")
    state = RunState.load(home)
    left = leftovers(state)
    if state is not None and left:
        say(f"a previous `lectern run` (pid {state.supervisor.pid}) died and left "
            f"{', '.join(describe(r) for r in left)} running; stopping them", "yellow")
        stop_processes(left)
    RunState.remove(home)


def check_ports(environ: Mapping[str, str]) -> None:
    wanted = {p.port_var.name: (BIND_HOST.read(environ), p.port_var.read(environ)) for p in PEERS.values()}
    wanted[GATEWAY_PORT.name] = (GATEWAY_HOST.read(environ), GATEWAY_PORT.read(environ))
    busy = ports_in_use(wanted)
    if busy:
        raise Refused("; ".join(b.message() for b in busy))


def embedded_postgres_spec(home: Path, logs: Path) -> tuple[ChildSpec, str]:
    """The embedded server as a supervised child, after stopping a leftover one nobody holds."""
    from services.sessions.embedded_postgres import ensure_database, prepare_embedded, stop_postmaster

    server = prepare_embedded(home)
    leftover = server.running_postmaster()
    if leftover is not None:
        holders = server.holders()
        if holders:
            raise Refused(f"the embedded Postgres in {server.data} (pid {leftover.pid}) is in use by pid(s) "
                          f"{', '.join(map(str, holders))}; stop them or set DATABASE_URL")
        say(f"stopping an embedded Postgres (pid {leftover.pid}) left running by an earlier run", "yellow")
        stop_postmaster(leftover)
    spec = ChildSpec("postgres", tuple(server.command()), dict(os.environ), logs / "postgres.log",
                     call_probe(lambda: ensure_database(server)), signal.SIGINT, server.user)
    return spec, server.url()


def service_specs(env: Mapping[str, str], logs: Path, gateway_port: int) -> list[ChildSpec]:
    peers = peer_addresses(env)
    specs = [ChildSpec(n, (sys.executable, "-m", MODULES[n]), env, logs / f"{n}.log", grpc_probe(peers[n]))
             for n in SERVICES[:-1]]
    healthz = f"http://127.0.0.1:{gateway_port}/healthz"
    return [*specs, ChildSpec("gateway", (sys.executable, "-m", "gateway"), env, logs / "gateway.log",
                              http_probe(healthz))]


async def supervise(book_dir: str, ingest: bool, home: Path, gateway_port: int) -> int:
    lock = RunLock(home)
    loop = asyncio.get_running_loop()
    stack: Stack | None = None
    pending: list[signal.Signals] = []

    def on_signal(sig: signal.Signals) -> None:
        if stack is None:
            pending.append(sig)  # before the stack exists: honoured as soon as it does
        else:
            stack.request_stop(sig)

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, on_signal, sig)
    watchers: list[asyncio.Task[None]] = []
    try:
        clean_up_after_dead_supervisor(home, lock)
        logs = home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, LECTERN_HOME=str(home), PYTHONUNBUFFERED="1")
        # glibc gives every thread its own malloc arena; the model threads' arenas then hold freed
        # memory for good. Two arenas keep the services' resident memory close to what they use.
        env.setdefault("MALLOC_ARENA_MAX", "2")
        env["LECTERN_ADMIN_TOKEN"] = token = admin_token(home)
        env.setdefault("LECTERN_INGEST_ROOTS", str(Path.cwd()))
        check_ports(env)
        specs = []
        if not env.get("DATABASE_URL"):
            say("preparing embedded Postgres …")
            postgres, env["DATABASE_URL"] = await asyncio.to_thread(embedded_postgres_spec, home, logs)
            specs.append(postgres)
        specs += service_specs(env, logs, gateway_port)
        stack = Stack(home, specs, f"http://127.0.0.1:{gateway_port}/healthz")
        if pending:
            stack.request_stop(pending[0])
            return 0
        started = time.monotonic()
        if "postgres" in stack.parts and not await stack.start(("postgres",), READY_TIMEOUT):
            return 0
        say(f"starting {', '.join(SERVICES)} (logs in {logs}) …")
        if not await stack.start(SERVICES, READY_TIMEOUT):
            return 0
        say(f"all services SERVING after {time.monotonic() - started:.1f}s")
        stack.whole.set()
        watchers = [asyncio.create_task(stack.watch(n)) for n in stack.parts]
        if ingest:
            source = str(Path(book_dir).resolve())  # noqa: ASYNC240 - one stat before the stack serves anyone
            # No base URL: a site root brings its own baseUrl; a docs folder gets /docs/.
            request = ipb.IngestRequest(source_dir=source, book="default")
            try:
                _, summary = await stack.unless_stopped(run_ingest(peer_addresses(env)["ingest"], request))
            except LecternError as exc:  # a bad --book-dir, named by its absolute path
                say(f"ingest failed: {describe_error(exc, request)}", "red")
                return 1
            if summary is not None:
                print_summary(summary)
        if not (await stack.unless_stopped(stack.whole.wait()))[0]:
            return 1 if stack.failure else 0
        url = f"http://127.0.0.1:{gateway_port}"
        shout(f"\nLectern is running at {url}  (API docs: {url}/api/docs)\n")
        shout("Try:\n  curl -N -X POST " + url + "/v1/chat -H 'Content-Type: application/json' "
              "-d '{\"message\": \"How do I install the sample robot kit?\"}'\n")
        shout(f"Admin token (for /v1/ingest): {token}\nPress Ctrl-C to stop.")
        await stack.stopping.wait()
        if stack.failure:
            say(stack.failure, "red")
            return 1
        return 0
    except (Refused, ChildFailed) as exc:
        say(str(exc), "red")
        return 1
    except Exception as exc:  # a failed start is reported, then everything stops
        say(f"{type(exc).__name__}: {exc}", "red")
        return 1
    finally:
        for watcher in watchers:
            watcher.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        if stack is not None:
            say("stopping …")
            await stack.stop()
            RunState.remove(home)
            say("stopped.")
        lock.release()


def run_stack(book_dir: str, ingest: bool = True) -> int:
    try:
        home = HOME.read(os.environ).resolve()
        gateway_port = GATEWAY_PORT.read(os.environ)
        peer_addresses(os.environ)
    except SettingsError as exc:
        say(f"configuration error: {exc}", "red")
        return 2
    home.mkdir(parents=True, exist_ok=True)
    return asyncio.run(supervise(book_dir, ingest, home, gateway_port))
