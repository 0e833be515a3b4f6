"""The offline answerer: the most relevant sentences of the best sources, each cited.

No model, no network: it scores every sentence of the top sources by how many of the
question's content words (and their stems) it holds, prefers earlier sources and earlier
sentences, and writes the best few in the source's own order, each ending with [n].
Instructions inside documents are quoted like any other text, never acted on.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from services.chat.answerers.base import Usage
from services.chat.evidence import Evidence, content_words
from services.chat.ports import PastTurn

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z`\"'(\[])|\n{2,}|\n(?=[-*] )")
MAX_SENTENCES = 3
MAX_SOURCES = 3


def _stem(word: str) -> str:
    for suffix in ("ing", "ers", "ed", "es", "er", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


@dataclass(frozen=True)
class Scored:
    score: float
    source_rank: int
    order: int
    n: int
    text: str


def sentences(content: str) -> list[str]:
    """Prose sentences of a chunk; code fences and table rows are not sentence material."""
    prose = re.sub(r"```.*?```", " ", content, flags=re.DOTALL)
    out = []
    for raw in _SENTENCE.split(prose):
        text = " ".join(raw.split()).lstrip("-* ").strip()
        if len(text) >= 20 and not text.startswith("|") and not text.startswith("#"):
            out.append(text)
    return out


def extract(question: str, sources: Sequence[Evidence]) -> str:
    """A short answer built from cited sentences; "" when no sentence relates to the question."""
    wanted = {_stem(w) for w in content_words(question)}
    scored: list[Scored] = []
    for rank, source in enumerate(sources[:MAX_SOURCES]):
        heading_words = {_stem(w) for w in content_words(" ".join(source.heading_path))}
        for order, sentence in enumerate(sentences(source.content)):
            stems = {_stem(w) for w in content_words(sentence)}
            overlap = len(wanted & stems) + 0.5 * len(wanted & heading_words)
            if not overlap and order > 0:
                continue
            score = overlap / (1 + 0.35 * rank) + (0.6 if order == 0 else 0.0) - 0.02 * order
            scored.append(Scored(score, rank, order, source.n, sentence))
    best = sorted(scored, key=lambda s: -s.score)[:MAX_SENTENCES]
    if not best or best[0].score <= 0:
        return ""
    best.sort(key=lambda s: (s.source_rank, s.order))
    parts = []
    for s in best:
        text = s.text if s.text.endswith((".", "!", "?", ":")) else s.text + "."
        parts.append(f"{text[:-1]} [{s.n}]{text[-1]}")
    return " ".join(parts)


def pieces(text: str, words_per_piece: int = 4) -> list[str]:
    tokens = re.findall(r"\S+\s*", text)
    return ["".join(tokens[i:i + words_per_piece]) for i in range(0, len(tokens), words_per_piece)]


class ExtractiveAnswerer:
    """The Answerer used when no GEMINI_API_KEY is set."""

    name = "extractive"

    async def stream(self, question: str, sources: Sequence[Evidence], history: Sequence[PastTurn], *,
                     selection: bool, usage: Usage) -> AsyncIterator[str]:
        for piece in pieces(extract(question, sources)):
            yield piece
