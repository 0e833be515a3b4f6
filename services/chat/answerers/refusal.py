"""A language model's refusal, caught once, where its text comes in.

The model is told to reply with exactly REFUSAL (SELECTION_REFUSAL for a selection) when its
sources hold no answer. Its pieces pass through ``screened``: text that may still turn out to be
that reply is held back until it cannot, so the reader never sees the model's own refusal (the
engine shows the canonical one), and the stream ends with the Verdict. Nothing after this
module reads the text to decide.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Generic, Protocol, TypeVar

from services.chat.answerers.base import ANSWERED, Outcome, Usage, Verdict, Written
from services.chat.evidence import Evidence
from services.chat.llm.prompts import REFUSAL, SELECTION_REFUSAL
from services.chat.ports import PastTurn

REFUSALS = (REFUSAL, SELECTION_REFUSAL)


def _core(text: str) -> str:
    return text.strip().rstrip(".").lower()


def is_refusal(text: str) -> bool:
    """The whole reply is one of the refusals (case and a final full stop aside)."""
    return _core(text) in {_core(r) for r in REFUSALS}


def may_become_refusal(text: str) -> bool:
    """The reply so far is the start of a refusal (or still blank)."""
    start = text.strip().lower()
    return any(r.lower().startswith(start) for r in REFUSALS)


def verdict_of(text: str) -> Verdict:
    if not text.strip():
        return Verdict(Outcome.REFUSED, "the model wrote nothing")
    if is_refusal(text):
        return Verdict(Outcome.REFUSED, "the model replied with the refusal it is told to give")
    return ANSWERED


async def screened(pieces: AsyncIterator[str]) -> AsyncIterator[Written]:
    """The model's pieces, held back while they may still become its refusal, then the Verdict."""
    text = held = ""
    async for piece in pieces:
        text += piece
        held += piece
        if held and not may_become_refusal(text):
            yield held
            held = ""
    verdict = verdict_of(text)
    if held and not verdict.out_of_scope:
        yield held
    yield verdict


class Named(Protocol):
    @property
    def name(self) -> str: ...


M = TypeVar("M", bound=Named)


class ModelAnswerer(Generic[M]):
    """An answerer whose text a language model writes: each kind of model says only how its text
    streams (``_text``); the reply is that text screened for the model's refusal."""

    def __init__(self, model: M, temperature: float = 0.2) -> None:
        self.model = model
        self.temperature = temperature
        self.name = model.name

    def reply(self, question: str, sources: Sequence[Evidence], history: Sequence[PastTurn], *,
              selection: bool, usage: Usage) -> AsyncIterator[Written]:
        return screened(self._text(question, sources, history, selection, usage))

    def _text(self, question: str, sources: Sequence[Evidence], history: Sequence[PastTurn],
              selection: bool, usage: Usage) -> AsyncIterator[str]:
        raise NotImplementedError
