"""`make run` end to end: the supervisor starts every process, ingests the sample book and
answers over HTTP; Ctrl-C stops everything within 10 s; a second run re-uses the data.

The helpers here (free ports, a supervisor in a subprocess with its output read by a thread)
are shared by the supervisor and chaos tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx
import pytest

from cli.supervisor.run_state import ProcessRecord, RunState
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

SERVICES = ("sessions", "retrieval", "ingest", "chat", "gateway")


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [int(s.getsockname()[1]) for s in sockets]
    for s in sockets:
        s.close()
    return ports


class Run:
    """One `python -m cli.main run` on its own $LECTERN_HOME and ports. Its output is read by a
    thread, so a chatty supervisor never blocks on a full pipe while a test is busy elsewhere."""

    def __init__(self, home: Path, ports: Sequence[int], extra_env: Mapping[str, str] | None = None,
                 args: Sequence[str] = ()) -> None:
        self.home = home
        self.ports = list(ports)
        env = dict(os.environ, LECTERN_HOME=str(home), PYTHONPATH=f"{ROOT}:{ROOT / 'gen'}", HF_HUB_OFFLINE="1",
                   LECTERN_INGEST_PORT=str(ports[0]), LECTERN_RETRIEVAL_PORT=str(ports[1]),
                   LECTERN_CHAT_PORT=str(ports[2]), LECTERN_SESSIONS_PORT=str(ports[3]),
                   LECTERN_GATEWAY_PORT=str(ports[4]), COLUMNS="120")
        env.pop("DATABASE_URL", None)
        env.pop("LECTERN_ADMIN_TOKEN", None)
        env.update(extra_env or {})
        self.process = subprocess.Popen([sys.executable, "-m", "cli.main", "run", *args], cwd=ROOT, env=env,
                                        text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self.lines.append("")  # end of output
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "".join(self.lines)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports[4]}"

    def wait_for(self, marker: str, timeout: float = 300, start: int = 0) -> int:
        """Waits for a line containing ``marker`` from line ``start`` on; returns the line after it."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for i in range(start, len(self.lines)):
                    if marker in self.lines[i]:
                        return i + 1
                if self.lines and self.lines[-1] == "":
                    raise AssertionError(f"supervisor exited without {marker!r}:\n" + "".join(self.lines))
                if not self._changed.wait(max(0.0, deadline - time.monotonic())):
                    raise AssertionError(f"timed out waiting for {marker!r}:\n" + "".join(self.lines))

    def state(self) -> RunState:
        state = RunState.load(self.home)
        assert state is not None, "no supervisor.json"
        return state

    def children(self) -> dict[str, ProcessRecord]:
        return dict(self.state().children)

    def stop(self, sig: int = signal.SIGINT) -> float:
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(sig)
        self.process.wait(timeout=30)
        return time.monotonic() - started


def test_make_run_answers_and_restarts_without_duplicates(tmp_path: Path) -> None:
    ports = free_ports(5)
    first = Run(tmp_path, ports)
    try:
        first.wait_for("Press Ctrl-C")
        assert "chunks new" in first.output
        with httpx.Client(base_url=first.url, timeout=30) as client:
            assert client.get("/healthz").json()["status"] == "ok"
            with client.stream("POST", "/v1/chat", json={"message": "How do I flash MicroPython on the Pico?"}) as r:
                body = r.read().decode()
            assert r.status_code == 200
            done = json.loads(body.split("event: done\ndata: ")[1].split("\n")[0])
            sources = json.loads(body.split("event: sources\ndata: ")[1].split("\n")[0])["sources"]
            assert done["grounded"] and sources[0]["url"].startswith("/robot/docs/getting-started/first-boot")
        assert (tmp_path / "admin-token").exists()
        children = first.children()
        assert set(children) == {"postgres", *SERVICES}
    finally:
        seconds = first.stop()
    assert seconds < 10, f"stopping took {seconds:.1f}s"
    assert first.process.returncode == 0
    assert [c.name for c in children.values() if c.process() is not None] == []  # Postgres too
    assert not (tmp_path / "supervisor.json").exists()

    second = Run(tmp_path, ports)
    try:
        second.wait_for("Press Ctrl-C")
        output = second.output
        new = int(output.split("chunks new")[1].split("│")[1])
        unchanged = int(output.split("chunks unchanged")[1].split("│")[1])
        assert new == 0 and unchanged > 40
    finally:
        second.stop()
