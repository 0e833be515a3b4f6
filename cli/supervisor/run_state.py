"""What a ``lectern run`` leaves under $LECTERN_HOME so the next one can tell a live stack from
the leftovers of a dead one: a lock held for the supervisor's life, and a file naming the
supervisor and each child by pid and start time (a pid alone may have been reused)."""

from __future__ import annotations

import fcntl
import json
import os
import signal
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

import psutil

from runtime import processes

STATE_FILE = "supervisor.json"
LOCK_FILE = "supervisor.lock"
SAME_START = 0.1  # seconds; psutil's start times are in clock ticks, so equal within a tick


@dataclass(frozen=True)
class ProcessRecord:
    name: str
    pid: int
    started: float
    """Start time (epoch seconds) as the kernel reports it: tells our process from a reused pid."""
    stop_signal: int = int(signal.SIGTERM)

    @classmethod
    def of(cls, name: str, pid: int, stop_signal: int = signal.SIGTERM) -> ProcessRecord:
        return cls(name, pid, psutil.Process(pid).create_time(), int(stop_signal))

    def process(self) -> psutil.Process | None:
        """The process if it is still this one and not a zombie, else None."""
        try:
            process = psutil.Process(self.pid)
            if abs(process.create_time() - self.started) > SAME_START:
                return None
            return process if processes.running(process) else None
        except psutil.Error:
            return None


@dataclass
class RunState:
    supervisor: ProcessRecord
    children: dict[str, ProcessRecord] = field(default_factory=dict)

    def save(self, home: Path) -> None:
        tmp = home / f"{STATE_FILE}.tmp"
        tmp.write_text(json.dumps({"supervisor": asdict(self.supervisor),
                                   "children": [asdict(c) for c in self.children.values()]}, indent=1))
        tmp.replace(home / STATE_FILE)  # atomic: a reader never sees half a file

    @classmethod
    def load(cls, home: Path) -> RunState | None:
        try:
            raw = json.loads((home / STATE_FILE).read_text())
            children = [ProcessRecord(**c) for c in raw["children"]]
            return cls(ProcessRecord(**raw["supervisor"]), {c.name: c for c in children})
        except (OSError, ValueError, TypeError, KeyError):
            return None

    @staticmethod
    def remove(home: Path) -> None:
        (home / STATE_FILE).unlink(missing_ok=True)


class RunLock:
    """An flock on $LECTERN_HOME/supervisor.lock. The kernel drops it when its holder dies, however
    it dies, so holding it proves that no other supervisor is alive on this home."""

    def __init__(self, home: Path) -> None:
        self.path = home / LOCK_FILE
        self._file: IO[bytes] | None = None

    def acquire(self) -> bool:
        handle = self.path.open("ab")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def leftovers(state: RunState | None) -> list[ProcessRecord]:
    """Children a dead supervisor left running (call with the lock held, so it is dead)."""
    if state is None:
        return []
    return [c for c in state.children.values() if c.process() is not None]


def stop_processes(records: list[ProcessRecord], grace: float = 10.0) -> None:
    """Each gets its own stop signal; whatever still runs after ``grace`` seconds is killed."""
    processes.stop([(p, r.stop_signal) for r in records if (p := r.process()) is not None], grace)


def describe(record: ProcessRecord) -> str:
    return f"{record.name} (pid {record.pid})"


def me() -> ProcessRecord:
    return ProcessRecord.of("supervisor", os.getpid())
