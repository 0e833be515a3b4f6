"""The answerer interface: numbered sources in, answer text out, streamed in pieces."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from services.chat.evidence import Evidence
from services.chat.ports import PastTurn


@dataclass
class Usage:
    """Filled in by the answerer while it streams."""

    tokens: int = 0


class Answerer(Protocol):
    name: str
    """"extractive" or "gemini:<model>", as /healthz reports it."""

    def stream(self, question: str, sources: Sequence[Evidence], history: Sequence[PastTurn], *,
               selection: bool, usage: Usage) -> AsyncIterator[str]:
        """Pieces of the answer; nothing at all when the sources hold no answer."""
        ...
