"""The multi-process stack as `make run` starts it, on free ports under a temporary home,
plus what its processes use in memory."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from evaluation.stack import free_port

SERVICES = ("ingest", "retrieval", "chat", "sessions")


@dataclass
class Stack:
    home: Path
    ports: dict[str, int]
    admin_token: str
    process: subprocess.Popen[bytes]

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def address(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"


def stack_env(home: Path, ports: Mapping[str, int], extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"LECTERN_HOME": str(home), "LECTERN_ADMIN_TOKEN": "bench-admin", "LECTERN_LOG_LEVEL": "WARNING",
                "LECTERN_INGEST_ROOTS": "/",
                "LECTERN_RATE_LIMIT_PER_MINUTE": "0"})  # the load comes from one address on purpose
    for name, port in ports.items():
        env[f"LECTERN_{name.upper()}_PORT"] = str(port)
    env.update(extra or {})
    return env


@contextmanager
def running_stack(home: Path, timeout: float = 300.0, extra_env: Mapping[str, str] | None = None
                  ) -> Iterator[Stack]:
    ports = {name: free_port() for name in (*SERVICES, "gateway")}
    log = (home / "supervisor.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "run", "--no-ingest"], env=stack_env(home, ports, extra_env),
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    stack = Stack(home, ports, "bench-admin", process)
    family: set[int] = set()
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the stack exited; see {home / 'supervisor.log'}")
            try:
                if httpx.get(f"{stack.gateway_url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            family.update(descendants(process.pid))
            if time.monotonic() > deadline:
                raise RuntimeError(f"the stack did not become healthy in time; see {home / 'logs'}")
            time.sleep(0.5)
        family.update(descendants(process.pid))
        yield stack
    finally:
        family.update(descendants(process.pid))
        process.send_signal(2)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        # Services run in sessions of their own; none may outlive the benchmark.
        for pid in family:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, 9)
        log.close()


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _status(pid: int) -> dict[str, str]:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _postgres_of(home: Path) -> list[int]:
    """pg_ctl daemonises the postmaster, so it is found by its data directory, with its backends."""
    data = str(home / "postgres")
    roots = [int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit() and data in _cmdline(int(e.name))]
    return [p for r in roots for p in (r, *descendants(r))]


def memory_by_process(root: int, home: Path) -> dict[str, dict[str, float]]:
    """Current and peak RSS (MB) of each Lectern process, and Postgres' processes summed."""
    out: dict[str, dict[str, float]] = {}
    for pid in sorted({root, *descendants(root), *_postgres_of(home)}):
        status = _status(pid)
        if not status:
            continue
        cmd = _cmdline(pid)
        name = next((s for s in (*SERVICES, "gateway") if f"-m services.{s}" in cmd or f"-m {s}" in cmd), "")
        if not name:
            name = "postgres" if "postgres" in cmd or "postgres" in status.get("Name", "") else (
                "supervisor" if pid == root else "other")
        rss = float(status.get("VmRSS", "0 kB").split()[0]) / 1024
        peak = float(status.get("VmHWM", "0 kB").split()[0]) / 1024
        entry = out.setdefault(name, {"rss_mb": 0.0, "peak_rss_mb": 0.0, "processes": 0})
        entry["rss_mb"] += rss
        entry["peak_rss_mb"] += peak
        entry["processes"] += 1
    return out
