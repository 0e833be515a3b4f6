"""The events of an answer stream, in domain terms."""

from __future__ import annotations

from dataclasses import dataclass

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
    out_of_scope: bool


@dataclass(frozen=True)
class Failed:
    code: str
    message: str


Event = Meta | TokenText | Sources | Warning | Done | Failed
