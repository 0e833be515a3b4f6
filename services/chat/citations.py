"""Citations that hold: [n] must name a source actually given, in the stream and the final text."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from services.chat.answerers.passages import SENTENCE_END, segments
from services.chat.evidence import Evidence
from services.ingest.book.fences import closes, opening_fence

CITATION = re.compile(r"\[(\d+)\]")
_CITATION_START = re.compile(r"\[(\d{0,4})(\]?)")  # "[", "[1", "[12]": what may become a citation
_LINE_LEAD = re.compile(r"[ \t]*([`~]*)")  # a line's indent and the fence characters after it


def verify_citations(answer: str, sources: Sequence[Evidence]) -> tuple[str, bool]:
    """Drops [n] that name no given source; grounded when every sentence keeps a citation. Fenced
    code is left exactly as written (`argv[2]` is no citation) and holds no sentences."""
    valid = {s.n for s in sources}

    def clean(prose: str) -> str:
        kept = CITATION.sub(lambda m: m.group(0) if int(m.group(1)) in valid else "", prose)
        return re.sub(r"[ \t]+([.,;:!?])", r"\1", kept)

    parts = [(code, text if code else clean(text)) for code, text in segments(answer)]
    cleaned = "".join(text for _, text in parts).strip()
    prose = "\n".join(text for code, text in parts if not code)
    sentences = [s for s in SENTENCE_END.split(prose) if s.strip()]
    grounded = bool(sentences) and all(CITATION.search(s) for s in sentences)
    return cleaned, grounded


class CitationFilter:
    """Streaming form of verify_citations: holds back an unfinished "[12" until it closes,
    then passes it on only if source 12 exists. Fenced code passes untouched: a line that may
    open or close a fence is held until its end."""

    def __init__(self, valid: Collection[int]) -> None:
        self.valid = set(valid)
        self._pending = ""
        self._line_start = True
        self._fence: str | None = None  # the open fence, while inside code

    def _fence_line(self, data: str, i: int) -> int | None:
        """At a line start: the end of this line when it is a whole fence line (passed on as is),
        -1 when it cannot be told yet, None when it is no fence line."""
        lead = _LINE_LEAD.match(data, i)
        assert lead is not None
        if lead.end() == len(data):
            return -1  # only spaces and fence characters so far
        if len(lead.group(1)) < 3:
            return None
        end = data.find("\n", i)
        if end < 0:
            return -1
        line = data[i:end]
        if self._fence is None:
            self._fence = opening_fence(line)
            return end + 1 if self._fence is not None else None
        if closes(line, self._fence):
            self._fence = None
        return end + 1

    def feed(self, text: str) -> str:
        data = self._pending + text
        self._pending = ""
        out = []
        i = 0
        while i < len(data):
            if self._line_start:
                end = self._fence_line(data, i)
                if end == -1:
                    self._pending = data[i:]
                    break
                self._line_start = False
                if end is not None:
                    out.append(data[i:end])
                    i, self._line_start = end, True
                    continue
            ch = data[i]
            if ch == "\n" or self._fence is not None:
                out.append(ch)
                self._line_start = ch == "\n"
                i += 1
                continue
            if ch != "[":
                out.append(ch)
                i += 1
                continue
            m = _CITATION_START.match(data, i)
            assert m is not None
            if m.end() == len(data) and not m.group(2):
                self._pending = data[i:]  # may still become a citation
                break
            if m.group(2) and m.group(1):
                if int(m.group(1)) in self.valid:
                    out.append(m.group(0))
                i = m.end()
                continue
            out.append(ch)
            i += 1
        return "".join(out)

    def flush(self) -> str:
        rest, self._pending = self._pending, ""
        return rest
