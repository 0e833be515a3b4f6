"""The answerer interface: numbered sources in; answer text out, streamed in pieces, then its verdict.

Whether the sources answered the question is decided once, by the answerer, and said in a
``Verdict``: the engine follows it and never reads the text to find out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from services.chat.evidence import Evidence
from services.chat.ports import PastTurn


@dataclass
class Usage:
    """Filled in by the answerer while it streams."""

    tokens: int = 0


class Outcome(StrEnum):
    ANSWERED = "answered"
    REFUSED = "refused"  # the answerer read the sources and found no answer in them
    NO_EVIDENCE = "no_evidence"  # there was nothing to answer from, so no answerer was asked


@dataclass(frozen=True)
class Verdict:
    """Whether the book answered the question: decided once, followed by everything after."""

    outcome: Outcome
    reason: str = ""
    """Why, in a few words, for logs and tests (not shown to the reader)."""

    @property
    def out_of_scope(self) -> bool:
        """The reader gets the refusal instead of an answer."""
        return self.outcome is not Outcome.ANSWERED


ANSWERED = Verdict(Outcome.ANSWERED)

Written = str | Verdict
"""What an answerer yields: text pieces for the reader, then exactly one Verdict."""


class Answerer(Protocol):
    name: str
    """"extractive" or "gemini:<model>", as /healthz reports it."""

    def reply(self, question: str, sources: Sequence[Evidence], history: Sequence[PastTurn], *,
              selection: bool, usage: Usage) -> AsyncIterator[Written]:
        """Pieces of the answer, then its Verdict, last. An answerer that refuses yields no text:
        the reader is shown the refusal, so no word of the answerer's own may reach them first."""
        ...


class TextAnswerer:
    """An answerer that writes only text (the extractive one): writing nothing is its refusal.
    Leading blanks are held back until words follow, so a refusal shows the reader nothing."""

    name: str

    def stream(self, question: str, sources: Sequence[Evidence], history: Sequence[PastTurn], *,
               selection: bool, usage: Usage) -> AsyncIterator[str]:
        """Pieces of the answer; nothing at all when the sources hold no answer."""
        raise NotImplementedError

    async def reply(self, question: str, sources: Sequence[Evidence], history: Sequence[PastTurn], *,
                    selection: bool, usage: Usage) -> AsyncIterator[Written]:
        blanks, wrote = "", False
        async for piece in self.stream(question, sources, history, selection=selection, usage=usage):
            if not wrote and not piece.strip():
                blanks += piece
                continue
            yield piece if wrote else blanks + piece
            wrote = True
        yield ANSWERED if wrote else Verdict(Outcome.REFUSED, "no sentence of the sources answers the question")
