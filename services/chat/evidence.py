"""What the answerers work from: numbered sources of book text. No gRPC here."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from records.source import Source

_WORD = re.compile(r"[A-Za-z0-9_$]+(?:[.'][A-Za-z0-9_]+)*")
STOPWORDS = frozenset("""
a an the and or but if then else of to in on at by for with from into onto about as is are was were
be been being do does did doing have has had having i me my we our you your he she it its they them
their this that these those what which who whom whose when where why how can could should would may
might must will shall not no yes so than too very just also there here any all some each every more
most other such only own same few both again further once up down out over under between through
during before after above below off s t don use used using get got
""".split())


SECTION = "section"
OUTLINE = "outline"  # an entry of the book's outline (a part or a page), for questions about the book


@dataclass(frozen=True)
class Evidence(Source):
    """One retrieved (or selected) passage, numbered as the answer will cite it: the source it
    is cited as, with the text the answerer reads."""

    content: str
    kind: str = SECTION
    position: int = -1  # the chunk's place in its page (-1: unknown)


def one_per_section(evidence: Sequence[Evidence]) -> list[Evidence]:
    """One source per link, renumbered: a long section stored as several chunks is one source,
    cited as the first found, whose text is its chunks' in page order where their places are known
    (else as found), so no answer lists a link twice. A section's chunks that start under different
    sub-headings link to each (they are different places), and two sections with the same headings
    on one page are two sources (their anchors differ)."""
    pieces: dict[str, list[Evidence]] = {}
    for e in evidence:
        found = pieces.setdefault(e.url or e.chunk_id, [])
        if not any(e.content in p.content for p in found):
            found.append(e)
    merged = []
    for found in pieces.values():
        lead = found[0]
        if all(p.position >= 0 for p in found):
            found = sorted(found, key=lambda p: p.position)
        merged.append(replace(lead, content="\n\n".join(p.content for p in found if p.content)))
    return [replace(e, n=i) for i, e in enumerate(merged, start=1)]


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def content_words(text: str, keep_case: bool = False) -> list[str]:
    found = _WORD.findall(text) if keep_case else words(text)
    return [w for w in found if w.lower() not in STOPWORDS and len(w) > 1]


def stem(word: str) -> str:
    """A crude stem, enough to match "calibrate" with "calibrated" and "sensors" with "sensor"."""
    for suffix in ("ing", "ers", "ed", "es", "er", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) > 4 else word  # "calibrate", "calibrating"


# A section is close to a question the book cannot answer when it holds this share of the
# question's content words: near enough to be worth reading, never a list of loose matches.
CLOSE_SHARE = 0.6


def close_sections(question: str, evidence: Sequence[Evidence]) -> list[Evidence]:
    """The sections that share most of the question's words (renumbered); often none."""
    wanted = {stem(w) for w in content_words(question)}
    if not wanted:
        return []
    need = max(1, math.ceil(CLOSE_SHARE * len(wanted)))
    close = [e for e in evidence
             if len(wanted & {stem(w) for w in content_words(" ".join((*e.heading_path, e.content)))}) >= need]
    return [replace(e, n=i) for i, e in enumerate(close, start=1)]
