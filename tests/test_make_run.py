"""`make run` end to end: the supervisor starts every process, ingests the sample book and
answers over HTTP; Ctrl-C stops everything within 10 s; a second run re-uses the data."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [int(s.getsockname()[1]) for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start(home: Path, ports: list[int]) -> subprocess.Popen[str]:
    env = dict(os.environ, LECTERN_HOME=str(home), PYTHONPATH=f"{ROOT}:{ROOT / 'gen'}", HF_HUB_OFFLINE="1",
               LECTERN_INGEST_PORT=str(ports[0]), LECTERN_RETRIEVAL_PORT=str(ports[1]),
               LECTERN_CHAT_PORT=str(ports[2]), LECTERN_SESSIONS_PORT=str(ports[3]),
               LECTERN_GATEWAY_PORT=str(ports[4]), COLUMNS="120")
    env.pop("DATABASE_URL", None)
    env.pop("LECTERN_ADMIN_TOKEN", None)
    return subprocess.Popen([sys.executable, "-m", "cli.main", "run"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_for_line(process: subprocess.Popen[str], marker: str, timeout: float = 300) -> str:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise AssertionError("supervisor exited:\n" + "".join(seen))
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError("timed out:\n" + "".join(seen))


def stop(process: subprocess.Popen[str]) -> float:
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    process.wait(timeout=30)
    return time.monotonic() - started


def test_make_run_answers_and_restarts_without_duplicates(tmp_path: Path) -> None:
    ports = free_ports(5)
    first = start(tmp_path, ports)
    try:
        output = wait_for_line(first, "Press Ctrl-C")
        assert "chunks new" in output
        url = f"http://127.0.0.1:{ports[4]}"
        with httpx.Client(base_url=url, timeout=30) as client:
            assert client.get("/healthz").json()["status"] == "ok"
            with client.stream("POST", "/v1/chat", json={"message": "How do I flash MicroPython on the Pico?"}) as r:
                body = r.read().decode()
            assert r.status_code == 200
            done = json.loads(body.split("event: done\ndata: ")[1].split("\n")[0])
            sources = json.loads(body.split("event: sources\ndata: ")[1].split("\n")[0])["sources"]
            assert done["grounded"] and sources[0]["url"].startswith("/docs/getting-started/first-boot")
        assert (tmp_path / "admin-token").exists()
    finally:
        seconds = stop(first)
    assert seconds < 10, f"stopping took {seconds:.1f}s"
    assert first.returncode == 0

    second = start(tmp_path, ports)
    try:
        output = wait_for_line(second, "Press Ctrl-C")
        new = int(output.split("chunks new")[1].split("│")[1])
        unchanged = int(output.split("chunks unchanged")[1].split("│")[1])
        assert new == 0 and unchanged > 40
    finally:
        stop(second)
