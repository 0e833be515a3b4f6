"""The events of an answer stream, in domain terms."""

from __future__ import annotations

from dataclasses import dataclass

from services.chat.answerers.base import Verdict
from services.chat.evidence import Evidence


@dataclass(frozen=True)
class Meta:
    conversation_id: str
    conversation_token: str
    message_id: str


@dataclass(frozen=True)
class TokenText:
    text: str


@dataclass(frozen=True)
class Sources:
    sources: list[Evidence]


@dataclass(frozen=True)
class Warning:
    code: str
    message: str


@dataclass(frozen=True)
class Done:
    answer: str
    grounded: bool
    verdict: Verdict
    """The answerer's verdict (or the research's, when nothing was found to answer from)."""

    @property
    def out_of_scope(self) -> bool:
        return self.verdict.out_of_scope


@dataclass(frozen=True)
class Failed:
    code: str
    message: str


Event = Meta | TokenText | Sources | Warning | Done | Failed
