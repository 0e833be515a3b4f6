"""Stopping processes that may not be our children. Once such a process exits, only its parent
can reap it; where that is an init that never reaps (some containers), it stays a zombie, which
psutil still reports as running. Here a zombie counts as gone."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence

import psutil

POLL_SECONDS = 0.05


def running(process: psutil.Process) -> bool:
    try:
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def stop(processes: Sequence[tuple[psutil.Process, int]], grace: float) -> None:
    """Sends each process its signal, waits up to ``grace`` seconds for all, then kills the rest."""
    for process, sig in processes:
        with contextlib.suppress(psutil.Error):
            process.send_signal(sig)
    deadline = time.monotonic() + grace
    while any(running(p) for p, _ in processes) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    for process, _ in processes:
        if running(process):
            with contextlib.suppress(psutil.Error):
                process.kill()
    for process, _ in processes:
        with contextlib.suppress(psutil.Error):
            if process.ppid() == psutil.Process().pid:
                process.wait(grace)  # our child: reap it, or it stays a zombie of ours
