"""A gap question: a question the book answered badly, as sessions finds it and the gateway's
gap report groups it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class GapQuestion:
    """Field meanings are stated once, in `lectern.sessions.v1.GapQuestion` (protos/lectern/sessions/v1)."""

    question: str
    book: str
    asked_at: datetime
    out_of_scope: bool
    ungrounded: bool
    downvoted: bool
