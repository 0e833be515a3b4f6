"""Whether the book can answer: a question that names something the book never mentions
(another library's API, a city, a product) is out of scope even when its wording sounds
like the book. Dense similarity alone cannot tell "How do I set staleTime in TanStack
Query?" from a question about Redux's own caching: both score alike against the book.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from embedding.bge import MODEL_NAME as BGE_SMALL
from embedding.local import MODEL_NAME as MINILM
from services.retrieval.index.base import Filter, View

# Identifiers with inner capitals (defineStore, staleTime, NgRx, TanStack); all-capital
# acronyms are left out, since books often use ones they never spell out (GPIO, API).
IDENTIFIER = re.compile(r"(?<![\w.])(?:[a-z]+[A-Z][A-Za-z0-9]*|[A-Z][a-z0-9]+[A-Z][A-Za-z0-9]*)(?!\w)")
# A capitalised word in mid-sentence: a name (Pinia, Chicago).
NAME = re.compile(r"(?<=[a-z,] )[A-Z][a-z]{2,}\b")
# Above this best dense similarity the evidence is strong enough to answer, whatever the
# question names (the Redux dev set's in-scope questions start at 0.36; the near-domain
# out-of-scope ones reach 0.49).
NAMED_TERM_CEILING = 0.55
# bge-small's similarities sit higher; its thresholds come from the same rules on the Redux dev
# set as MiniLM's: the floor midway between the off-topic questions' best similarity and the
# in-scope ones' lowest (MiniLM 0.24 / 0.36 -> 0.30; bge-small 0.57 / 0.63 -> 0.60), the
# ceiling a little over the near-domain out-of-scope questions' best (MiniLM 0.49 -> 0.55;
# bge-small 0.73 -> 0.78).
BGE_FLOOR = 0.60
BGE_CEILING = 0.78
# The best cross-encoder logit (ms-marco-MiniLM-L-12-v2) under which no reranked candidate
# answers: midway between the lowest best score of an in-scope Redux dev question (-7.7, over
# MiniLM's and bge-small's candidates) and the highest of the off-topic out-of-scope ones (-9.7).
# The near-domain ones (other libraries' APIs) score like in-scope questions (-2.1 to +2.7):
# no threshold separates them, which is what the named-term rule is kept for.
RERANK_SCOPE_LOGIT = -8.7
# The cross-encoder's own boundary: a logit under 0 is a probability under one half that the
# passage answers. Where the embedder also finds nothing within its floor, both models read the
# question as foreign to the book. Not fitted to any question: the in-scope questions under the
# floor (the sample book's "XSHUT pin", "Who is this book written for?") score +3.2 or more.
RERANK_RELEVANT_LOGIT = 0.0


@dataclass(frozen=True)
class DenseScope:
    """Where one embedder's similarities say "too far": each model has its own scale."""

    floor: float
    """Best dense similarity under which nothing in the book is close enough."""
    named_term_ceiling: float
    """Best dense similarity under which a named term the book never mentions makes a question
    out of scope."""


DENSE_SCOPE = {
    MINILM: DenseScope(0.30, NAMED_TERM_CEILING),
    BGE_SMALL: DenseScope(BGE_FLOOR, BGE_CEILING),
}
# Any other embedder (Gemini) keeps MiniLM's values, as before this table.
DEFAULT_DENSE_SCOPE = DENSE_SCOPE[MINILM]


def dense_scope(embedder: str, floor: float | None = None) -> DenseScope:
    """The embedder's thresholds; `floor` (LECTERN_OUT_OF_SCOPE_THRESHOLD) overrides its floor."""
    scope = DENSE_SCOPE.get(embedder, DEFAULT_DENSE_SCOPE)
    return scope if floor is None else DenseScope(floor, scope.named_term_ceiling)


# Names written as code: a dotted name (cy.mount, Enzyme.configure, mkdocs.yml) or a package name
# with a version in it (enzyme-adapter-react-16).
DOTTED = re.compile(r"(?<![\w.$/-])[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+(?![\w$-])")
HYPHENATED = re.compile(r"(?<![\w.@/-])[a-z][a-z0-9]*(?:-[a-z0-9]+)+(?![\w-])")  # one parse: linear


# Chunks of the book read for a code term its candidates do not name: BM25 ranks a chunk that
# names it among those holding all its parts.
CODE_LOOKUP_HITS = 20


def code_terms(query: str) -> list[str]:
    """The names a question writes as code, in order: the book's own code names them the same
    way, so evidence that never does is about something else (Cypress's `cy.mount` where the book
    has only `cy.findByRole`). A dotted name of single letters ("e.g") is none."""
    found = [t for t in DOTTED.findall(query) if any(len(part) > 1 for part in t.split("."))]
    found += [t for t in HYPHENATED.findall(query) if any(part.isdigit() for part in t.split("-")[1:])]
    return list(dict.fromkeys(found))


def mentions_code(text: str, term: str) -> bool:
    """Whether `text` names a code term: as written, or by each of its own identifiers (a
    question's `context.fileSystemLookup` is the book's `fileSystemLookup` on a resolver's
    context), where it has any."""
    if mentions(text, term):
        return True
    identifiers = [part for part in term.split(".") if IDENTIFIER.fullmatch(part)]
    return bool(identifiers) and all(mentions(text, part) for part in identifiers)


def named_terms(query: str) -> list[str]:
    """The words that pin a question to one library, product or place, in order."""
    found = IDENTIFIER.findall(query) + NAME.findall(query)
    return list(dict.fromkeys(found))


def mentions(text: str, term: str) -> bool:
    """Whether `text` holds `term` as a whole word, in any case ("Cup" in "world cup")."""
    return re.search(rf"(?<!\w){re.escape(term)}(?!\w)", text, re.IGNORECASE) is not None


def absent_term(query: str, passages: Sequence[str]) -> str | None:
    """The first named term that none of `passages` mentions: the book may name it in passing
    (Redux's history names Zustand once), but the evidence found for the question does not, so
    whatever it says is not about that name."""
    for term in named_terms(query):
        if not any(mentions(p, term) for p in passages):
            return term
    return None


def absent_code(query: str, passages: Sequence[str]) -> list[str]:
    """The code terms that none of `passages` names: however close the evidence reads, a
    question about `cy.mount` is not answered by a book whose code never calls it."""
    return [term for term in code_terms(query) if not any(mentions_code(p, term) for p in passages)]


async def unknown_term(index: View, query: str, book: str) -> str | None:
    """The first named term that no chunk of the book contains, if any (one BM25 lookup each).
    Code terms are not looked up: BM25 reads `cy.mount` as "cy" and "mount", found anywhere."""
    for term in named_terms(query):
        if not await index.keyword(term, Filter(book=book), 1):
            return term
    return None
