"""Ports the stack will listen on, checked before anything starts, so a port held by another
program is reported with its variable instead of as a service that exited with status 1."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Mapping
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class PortInUse:
    variable: str
    host: str
    port: int
    holder: str
    """Who holds it: "pid 123 (python -m http.server)", or "another program" when unknown."""

    def message(self) -> str:
        return (f"port {self.port} ({self.variable}) on {self.host} is already in use by {self.holder}; "
                f"stop it or set {self.variable} to a free port")


def _can_bind(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As the servers do: a port left in TIME_WAIT is free, one with a listener is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _holder(port: int) -> str:
    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                with contextlib.suppress(psutil.Error):
                    command = " ".join(psutil.Process(conn.pid).cmdline())[:80]
                    return f"pid {conn.pid} ({command})"
                return f"pid {conn.pid}"
    return "another program"


def ports_in_use(wanted: Mapping[str, tuple[str, int]]) -> list[PortInUse]:
    """``wanted``: variable name -> (host, port). Port 0 (any free port) is never busy."""
    return [PortInUse(var, host, port, _holder(port))
            for var, (host, port) in wanted.items() if port and not _can_bind(host, port)]
