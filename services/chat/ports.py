"""What chat needs from the other services, as interfaces the domain can be tested against."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from records.turn import Turn
from services.chat.evidence import Evidence


@dataclass(frozen=True)
class SearchOutcome:
    evidence: list[Evidence]
    out_of_scope: bool
    degraded: bool = False


@dataclass(frozen=True)
class PastTurn:
    question: str
    answer: str


TurnRecord = Turn  # what chat writes to sessions: its sources are the evidence the answer cited


@dataclass(frozen=True)
class Scope:
    """The version and locale a search reads ("" = any); ``default_version``/``default_locale``
    keep to the book's version served at its docs root / its default locale (a book stored
    without versions or locales is all default)."""

    version: str = ""
    locale: str = ""
    default_version: bool = False
    default_locale: bool = False


WHOLE_BOOK = Scope()


class Search(Protocol):
    async def search(self, query: str, book: str, top_k: int, module: str = "",
                     scope: Scope = WHOLE_BOOK) -> SearchOutcome: ...


class Conversations(Protocol):
    async def create(self, book: str) -> tuple[str, str]: ...
    async def history(self, conversation_id: str, token: str, pairs: int) -> list[PastTurn]: ...
    async def append(self, turn: TurnRecord) -> None: ...


class Sections(Protocol):
    async def pieces(self, query: str, book: str, file_path: str, scope: Scope) -> list[Evidence]:
        """Chunks of one page nearest the query, each with its place in the page: the pieces of a
        long section found beside the one a search returned."""
        ...
