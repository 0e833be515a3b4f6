"""The supervisor's pieces: backoff, the pid file and its leftovers, busy ports (no stack needed);
then real runs: a SIGKILLed supervisor's orphans are stopped by the next start, a second
supervisor on the same home is refused, SIGHUP stops everything, a foreign port is named."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from cli.supervisor.ports import ports_in_use
from cli.supervisor.restart_policy import RestartPolicy
from cli.supervisor.run_state import ProcessRecord, RunLock, RunState, leftovers, me, stop_processes
from services.sessions.embedded_postgres import HANDLES, prepare_embedded, release_stale_handles
from tests.conftest import ROOT
from tests.test_make_run import SERVICES, Run, free_ports


def test_backoff_doubles_up_to_its_cap_then_gives_up() -> None:
    policy = RestartPolicy(first_delay=0.5, max_delay=4.0, healthy_after=30.0, max_attempts=6)
    assert [policy.after_crash(1.0) for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert policy.after_crash(1.0) is None  # a seventh crash in a row: give up


def test_backoff_is_forgiven_after_a_healthy_spell() -> None:
    policy = RestartPolicy(first_delay=0.5, max_delay=10.0, healthy_after=30.0, max_attempts=3)
    assert [policy.after_crash(0.0) for _ in range(3)] == [0.5, 1.0, 2.0]
    assert policy.after_crash(45.0) == 0.5  # it served 45 s before this crash: start over
    assert policy.after_crash(29.0) == 1.0  # not long enough to be forgiven


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(["sleep", "60"])
    yield process
    process.kill()
    process.wait()


def test_run_state_round_trips_and_finds_only_our_live_leftovers(tmp_path: Path,
                                                                 sleeper: subprocess.Popen[bytes]) -> None:
    live = ProcessRecord.of("chat", sleeper.pid)
    reused = ProcessRecord("retrieval", sleeper.pid, live.started - 100)  # same pid, another process
    dead = ProcessRecord("ingest", 2 ** 22 + 7, live.started)  # above pid_max: never alive
    RunState(me(), {r.name: r for r in (live, reused, dead)}).save(tmp_path)
    state = RunState.load(tmp_path)
    assert state is not None and state.children["chat"] == live
    assert leftovers(state) == [live]

    stop_processes(leftovers(state), grace=5)
    assert leftovers(state) == []
    assert not psutil.pid_exists(sleeper.pid)  # stopped and reaped


def test_a_garbled_state_file_reads_as_none(tmp_path: Path) -> None:
    (tmp_path / "supervisor.json").write_text("{not json")
    assert RunState.load(tmp_path) is None
    assert leftovers(None) == []


def test_the_run_lock_admits_one_supervisor_at_a_time(tmp_path: Path) -> None:
    first, second = RunLock(tmp_path), RunLock(tmp_path)
    assert first.acquire()
    assert not second.acquire()
    first.release()
    assert second.acquire()
    second.release()


def test_a_busy_port_is_named_with_its_variable_and_holder() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        (free,) = free_ports(1)
        busy = ports_in_use({"LECTERN_CHAT_PORT": ("127.0.0.1", port), "LECTERN_GATEWAY_PORT": ("127.0.0.1", free),
                             "LECTERN_INGEST_PORT": ("127.0.0.1", 0)})
    assert [(b.variable, b.port) for b in busy] == [("LECTERN_CHAT_PORT", port)]
    message = busy[0].message()
    assert f"port {port} (LECTERN_CHAT_PORT)" in message and f"pid {os.getpid()}" in message
    assert "set LECTERN_CHAT_PORT to a free port" in message


def test_dead_processes_are_dropped_from_pgservers_handle_list(tmp_path: Path,
                                                               sleeper: subprocess.Popen[bytes]) -> None:
    (tmp_path / HANDLES).write_text(json.dumps([2 ** 22 + 7, sleeper.pid, 2 ** 22 + 9]))
    assert release_stale_handles(tmp_path) == [sleeper.pid]
    assert json.loads((tmp_path / HANDLES).read_text()) == [sleeper.pid]


def gone(records: dict[str, ProcessRecord], within: float = 15) -> list[str]:
    """Names of the processes still running after ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        alive = [name for name, r in records.items() if r.process() is not None]
        if not alive:
            return []
        time.sleep(0.1)
    return alive


def kill_leftovers(home: Path) -> None:
    """Whatever a failed test left running on ``home``."""
    state = RunState.load(home)
    for record in state.children.values() if state else ():
        if (process := record.process()) is not None:
            process.kill()


@pytest.mark.slow
def test_orphans_of_a_killed_supervisor_are_stopped_and_sighup_stops_everything(tmp_path: Path) -> None:
    ports = free_ports(5)
    first = Run(tmp_path, ports, args=["--no-ingest"])
    try:
        first.wait_for("Press Ctrl-C")
        orphans = first.children()
        assert set(orphans) == {"postgres", *SERVICES}
        os.kill(first.process.pid, signal.SIGKILL)  # as the OOM killer would
        first.process.wait(10)
        assert gone(orphans, within=1) == list(orphans)  # all left running

        second = Run(tmp_path, ports, args=["--no-ingest"])
        try:
            second.wait_for("Press Ctrl-C")
            assert f"a previous `lectern run` (pid {first.process.pid}) died and left" in second.output
            assert gone(orphans, within=0.1) == []
            children = second.children()
            assert {c.pid for c in children.values()}.isdisjoint({c.pid for c in orphans.values()})

            third = Run(tmp_path, ports, args=["--no-ingest"])  # while the second runs: refused
            assert third.process.wait(60) == 1
            assert f"another `lectern run` (pid {second.process.pid}) is already running" in third.output
            assert second.process.poll() is None and gone(children, within=0.1) == list(children)

            second.stop(signal.SIGHUP)  # the terminal closes
            assert second.process.returncode == 0
            assert gone(children, within=0.1) == []
            assert "SIGHUP received: stopping" in second.output
            assert not (tmp_path / "supervisor.json").exists()
        finally:
            second.stop()
    finally:
        kill_leftovers(tmp_path)


@pytest.mark.slow
def test_a_port_held_by_another_program_is_named_and_nothing_starts(tmp_path: Path) -> None:
    ports = free_ports(5)
    with socket.socket() as held:
        held.bind(("127.0.0.1", ports[3]))
        held.listen()
        run = Run(tmp_path, ports, args=["--no-ingest"])
        assert run.process.wait(60) == 1
    assert f"port {ports[3]} (LECTERN_SESSIONS_PORT) on 127.0.0.1 is already in use by pid {os.getpid()}" \
        in run.output
    assert "Lectern is running" not in run.output
    assert not (tmp_path / "supervisor.json").exists()
    ours = [p for p in psutil.process_iter(["cmdline"]) if str(tmp_path) in " ".join(p.info["cmdline"] or [])]
    assert ours == []  # the refused run started neither Postgres nor any service


@pytest.mark.slow
def test_a_postgres_left_by_a_killed_pgserver_user_is_stopped_and_replaced(tmp_path: Path) -> None:
    """The old supervisor's way: pgserver started Postgres (pg_ctl) and listed its pid as a holder;
    killed, it left the server running with a dead holder, so no one would ever stop it."""
    script = ("import sys, time; from pathlib import Path; from services.sessions.embedded_postgres import "
              "start_embedded; start_embedded(Path(sys.argv[1])); print('up', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                              cwd=ROOT, env=dict(os.environ, PYTHONPATH=f"{ROOT}:{ROOT / 'gen'}"))
    assert holder.stdout is not None and holder.stdout.readline() == "up\n"
    holder.kill()
    holder.wait()
    server = prepare_embedded(tmp_path)
    leftover = server.running_postmaster()
    assert leftover is not None and json.loads((server.data / HANDLES).read_text()) == [holder.pid]

    run = Run(tmp_path, free_ports(5), args=["--no-ingest"])
    try:
        run.wait_for("Press Ctrl-C")
        assert f"stopping an embedded Postgres (pid {leftover.pid}) left running by an earlier run" in run.output
        ours = run.children()["postgres"]
        assert ours.pid != leftover.pid and server.running_postmaster() is not None
        assert json.loads((server.data / HANDLES).read_text()) == []
    finally:
        run.stop()
        kill_leftovers(tmp_path)
    assert server.running_postmaster() is None and ours.process() is None
