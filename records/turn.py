"""A turn: a reader's question and the answer given, as chat records it and sessions stores it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from records.source import Source

MODES = ("general", "selection")  # general: searched in the book; selection: about the reader's selection


@dataclass(frozen=True)
class Turn:
    """Field meanings are stated once, in `lectern.sessions.v1.AppendTurnRequest`
    (protos/lectern/sessions/v1); ``latencies_ms`` is its ``latencies``, by stage."""

    conversation_id: str
    turn_id: str
    question: str
    answer: str
    mode: str = "general"  # one of MODES
    rewritten_query: str = ""
    sources: Sequence[Source] = ()
    latencies_ms: dict[str, float] = field(default_factory=dict)
    tokens: int = 0
    out_of_scope: bool = False
    grounded: bool = False
    answer_message_id: str = ""
