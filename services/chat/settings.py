"""Chat settings, read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from runtime import env
from runtime.settings import ServerSettings

ANSWER_DEADLINE = env.declare(
    "LECTERN_ANSWER_DEADLINE_SECONDS", 30.0, env.number(1, 600), "Overall deadline of one answer."
)
RECORD_BUFFER = env.declare(
    "LECTERN_RECORD_BUFFER", 10_000, env.integer(10, 10_000_000),
    "Turns held for sessions while it is down; beyond this the oldest is dropped and counted.",
)


@dataclass(frozen=True)
class ChatSettings:
    server: ServerSettings
    """How the service listens and reaches retrieval and sessions."""
    answer_deadline_seconds: float
    """Deadline of one whole answer."""
    record_buffer: int
    """Capacity of the buffer of turns awaiting sessions."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ChatSettings:
        environ = os.environ if environ is None else environ
        return cls(
            server=ServerSettings.from_env("chat", environ),
            answer_deadline_seconds=ANSWER_DEADLINE.read(environ),
            record_buffer=RECORD_BUFFER.read(environ),
        )
