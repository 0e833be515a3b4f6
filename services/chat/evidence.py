"""What the answerers work from: numbered sources of book text. No gRPC here."""

from __future__ import annotations

import re
from dataclasses import dataclass

_WORD = re.compile(r"[A-Za-z0-9_$]+(?:[.'][A-Za-z0-9_]+)*")
STOPWORDS = frozenset("""
a an the and or but if then else of to in on at by for with from into onto about as is are was were
be been being do does did doing have has had having i me my we our you your he she it its they them
their this that these those what which who whom whose when where why how can could should would may
might must will shall not no yes so than too very just also there here any all some each every more
most other such only own same few both again further once up down out over under between through
during before after above below off s t don use used using get got
""".split())


@dataclass(frozen=True)
class Evidence:
    """One retrieved (or selected) passage, numbered as the answer will cite it."""

    n: int
    chunk_id: str
    file_path: str
    heading_path: tuple[str, ...]
    url: str
    score: float
    content: str


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def content_words(text: str, keep_case: bool = False) -> list[str]:
    found = _WORD.findall(text) if keep_case else words(text)
    return [w for w in found if w.lower() not in STOPWORDS and len(w) > 1]
