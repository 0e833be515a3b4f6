"""The offline answerer: the sentences of the best sources that state the answer, each cited.

No language model, no network. The candidate sentences are the prose of the top sources (at most
MAX_CANDIDATES, the best by shared words when there are more); the cross-encoder reads the
question with each one and the best few within SCORE_MARGIN of the best are written in the
book's reading order (source by source, sentence by sentence), each ending with [n]. When the
cross-encoder cannot run, sentences are chosen by the question's content words (and their stems)
they hold, earlier sources and sentences first. Outline evidence (a question about the book
itself) is written as a cited list of its entries. Instructions inside documents are quoted like
any other text, never acted on.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from embedding.models import ModelUnavailable
from services.chat.answerers.base import Usage
from services.chat.evidence import OUTLINE, Evidence, content_words, stem
from services.chat.overview import compose
from services.chat.ports import PastTurn

log = logging.getLogger("lectern.chat.extractive")

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z`\"'(\[*_])|\n{2,}|\n(?=\s*(?:[-*+]|\d+[.)]) )")
_NOT_PROSE = ("|", "#", ":::", "<", "import ", "export ", "![")
MAX_SENTENCES = 3
MAX_SOURCES = 3
# Sentences the cross-encoder reads per answer: ~10 ms each here (short pairs), so an answer's
# scoring stays near a quarter of a second of CPU however long its sections are.
MAX_CANDIDATES = 24
SENTENCE_TOKENS = 96  # a sentence with its heading path, cut for the cross-encoder
# Sentences kept beside the best: within this many logits of it (the model's scale is about
# -11 to +11; a sentence this far below the best answers a different question).
SCORE_MARGIN = 4.0
# Below this logit no sentence relates to the question: the answer is left empty (a refusal).
NO_ANSWER = -9.0


class SentenceScorer(Protocol):
    """The cross-encoder's view the answerer needs (embedding.reranker.CrossEncoder)."""

    async def ascore(self, query: str, passages: Sequence[str]) -> list[float]: ...


@dataclass(frozen=True)
class Candidate:
    source_rank: int
    order: int
    n: int
    heading_path: tuple[str, ...]
    text: str
    lexical: float


def sentences(content: str) -> list[str]:
    """Prose sentences of a chunk (list items count as sentences); code fences, tables, headings,
    admonition fences and markup are not sentence material."""
    prose = re.sub(r"```.*?```|~~~.*?~~~", "\n\n", content, flags=re.DOTALL)
    out = []
    for raw in _SENTENCE.split(prose):
        text = " ".join(raw.split())
        text = re.sub(r"^(?:[-*+]|\d+[.)])\s+", "", text).strip()
        if len(text) >= 20 and not text.startswith(_NOT_PROSE):
            out.append(text)
    return out


def candidates(question: str, sources: Sequence[Evidence]) -> list[Candidate]:
    """The top sources' sentences with their lexical score, at most MAX_CANDIDATES (the best)."""
    wanted = {stem(w) for w in content_words(question)}
    found: list[Candidate] = []
    for rank, source in enumerate(sources[:MAX_SOURCES]):
        heading_words = {stem(w) for w in content_words(" ".join(source.heading_path))}
        for order, sentence in enumerate(sentences(source.content)):
            stems = {stem(w) for w in content_words(sentence)}
            overlap = len(wanted & stems) + 0.5 * len(wanted & heading_words)
            score = overlap / (1 + 0.35 * rank) + (0.6 if order == 0 else 0.0) - 0.02 * order
            found.append(Candidate(rank, order, source.n, source.heading_path, sentence,
                                   score if overlap or order == 0 else 0.0))
    if len(found) > MAX_CANDIDATES:
        found = sorted(found, key=lambda c: -c.lexical)[:MAX_CANDIDATES]
    return found


def _write(chosen: Sequence[Candidate]) -> str:
    parts = []
    for c in sorted(chosen, key=lambda c: (c.source_rank, c.order)):
        text = c.text if c.text.endswith((".", "!", "?", ":")) else c.text + "."
        parts.append(f"{text[:-1]} [{c.n}]{text[-1]}")
    return " ".join(parts)


def extract(question: str, sources: Sequence[Evidence]) -> str:
    """The lexical choice: a short answer of cited sentences; "" when none relates to the question."""
    best = sorted((c for c in candidates(question, sources) if c.lexical > 0), key=lambda c: -c.lexical)
    return _write(best[:MAX_SENTENCES])


def _passage(c: Candidate) -> str:
    headings = " > ".join(h for h in c.heading_path if h.strip())
    text = c.text.replace("`", "")
    return f"{headings}\n{text}" if headings else text


async def extract_scored(question: str, sources: Sequence[Evidence], scorer: SentenceScorer) -> str:
    """The cross-encoder's choice of cited sentences; "" when none relates to the question."""
    found = candidates(question, sources)
    if not found:
        return ""
    scores = await scorer.ascore(question, [_passage(c)[:SENTENCE_TOKENS * 8] for c in found])
    best = max(scores)
    if best < NO_ANSWER:
        return ""
    ranked = sorted(zip(scores, found, strict=True), key=lambda p: -p[0])
    return _write([c for s, c in ranked[:MAX_SENTENCES] if s >= best - SCORE_MARGIN])


def pieces(text: str, words_per_piece: int = 4) -> list[str]:
    tokens = re.findall(r"\S+\s*", text)
    return ["".join(tokens[i:i + words_per_piece]) for i in range(0, len(tokens), words_per_piece)]


class ExtractiveAnswerer:
    """The Answerer used when no language model is configured."""

    name = "extractive"

    def __init__(self, scorer: SentenceScorer | None = None) -> None:
        self.scorer = scorer

    async def answer(self, question: str, sources: Sequence[Evidence]) -> str:
        if sources and all(s.kind == OUTLINE for s in sources):
            return compose(sources)
        if self.scorer is not None:
            try:
                return await extract_scored(question, sources, self.scorer)
            except ModelUnavailable as exc:  # missing or altered files: they stay so until a restart
                log.warning("cross-encoder unavailable; choosing sentences by words", extra={"error": exc.reason})
                self.scorer = None
            except Exception as exc:  # a model that fails must never cost the answer
                log.warning("sentence scoring failed; choosing sentences by words", extra={"error": str(exc)})
        return extract(question, sources)

    async def stream(self, question: str, sources: Sequence[Evidence], history: Sequence[PastTurn], *,
                     selection: bool, usage: Usage) -> AsyncIterator[str]:
        for piece in pieces(await self.answer(question, sources)):
            yield piece
