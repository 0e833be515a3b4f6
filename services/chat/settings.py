"""Chat settings, read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from embedding.factory import GEMINI_API_KEY, GEMINI_BASE_URL
from runtime import env
from runtime.settings import ServerSettings

ANSWER_DEADLINE = env.declare(
    "LECTERN_ANSWER_DEADLINE_SECONDS", 30.0, env.number(1, 600), "Overall deadline of one answer."
)
RECORD_BUFFER = env.declare(
    "LECTERN_RECORD_BUFFER", 10_000, env.integer(10, 10_000_000),
    "Turns waiting for sessions (each retried for about a minute); beyond this the oldest is dropped and counted.",
)
GEMINI_MODEL = env.declare("LECTERN_GEMINI_MODEL", "gemini-2.5-flash", env.text, "Gemini model for answers.")
LLM_TIMEOUT = env.declare(
    "LECTERN_LLM_TIMEOUT_SECONDS", 20.0, env.number(1, 300), "Deadline of each single Gemini call."
)


@dataclass(frozen=True)
class GeminiSettings:
    api_key: str
    """Empty: Gemini is off and the extractive answerer runs."""
    model: str
    """Model name, such as gemini-2.5-flash."""
    base_url: str
    """Endpoint override; empty for Google's."""
    timeout_seconds: float
    """Deadline of each call."""


@dataclass(frozen=True)
class ChatSettings:
    server: ServerSettings
    """How the service listens and reaches retrieval and sessions."""
    answer_deadline_seconds: float
    """Deadline of one whole answer."""
    record_buffer: int
    """Capacity of the buffer of turns awaiting sessions."""
    gemini: GeminiSettings
    """The language model, when a key is set."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ChatSettings:
        environ = os.environ if environ is None else environ
        return cls(
            server=ServerSettings.from_env("chat", environ),
            answer_deadline_seconds=ANSWER_DEADLINE.read(environ),
            record_buffer=RECORD_BUFFER.read(environ),
            gemini=GeminiSettings(
                api_key=GEMINI_API_KEY.read(environ), model=GEMINI_MODEL.read(environ),
                base_url=GEMINI_BASE_URL.read(environ), timeout_seconds=LLM_TIMEOUT.read(environ),
            ),
        )
