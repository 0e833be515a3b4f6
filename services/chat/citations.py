"""Citations that hold: [n] must name a source actually given, in the stream and the final text."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from services.chat.answerers.passages import SENTENCE_END
from services.chat.evidence import Evidence

CITATION = re.compile(r"\[(\d+)\]")


def verify_citations(answer: str, sources: Sequence[Evidence]) -> tuple[str, bool]:
    """Drops [n] that name no given source; grounded when every sentence keeps a citation."""
    valid = {s.n for s in sources}
    cleaned = CITATION.sub(lambda m: m.group(0) if int(m.group(1)) in valid else "", answer)
    cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", cleaned).strip()
    sentences = [s for s in SENTENCE_END.split(re.sub(r"```.*?```", "", cleaned, flags=re.S)) if s.strip()]
    grounded = bool(sentences) and all(CITATION.search(s) for s in sentences)
    return cleaned, grounded


class CitationFilter:
    """Streaming form of verify_citations: holds back an unfinished "[12" until it closes,
    then passes it on only if source 12 exists."""

    def __init__(self, valid: Collection[int]) -> None:
        self.valid = set(valid)
        self._pending = ""

    def feed(self, text: str) -> str:
        data = self._pending + text
        self._pending = ""
        out = []
        i = 0
        while i < len(data):
            ch = data[i]
            if ch != "[":
                out.append(ch)
                i += 1
                continue
            m = re.match(r"\[(\d{0,4})(\]?)", data[i:])
            assert m is not None
            if i + m.end() == len(data) and not m.group(2):
                self._pending = data[i:]  # may still become a citation
                break
            if m.group(2) and m.group(1):
                if int(m.group(1)) in self.valid:
                    out.append(m.group(0))
                i += m.end()
                continue
            out.append(ch)
            i += 1
        return "".join(out)

    def flush(self) -> str:
        rest, self._pending = self._pending, ""
        return rest
