"""Whether the book can answer: a question that names something the book never mentions
(another library's API, a city, a product) is out of scope even when its wording sounds
like the book. Dense similarity alone cannot tell "How do I set staleTime in TanStack
Query?" from a question about Redux's own caching: both score alike against the book.
"""

from __future__ import annotations

import re

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


def named_terms(query: str) -> list[str]:
    """The words that pin a question to one library, product or place, in order."""
    found = IDENTIFIER.findall(query) + NAME.findall(query)
    return list(dict.fromkeys(found))


async def unknown_term(index: View, query: str, book: str) -> str | None:
    """The first named term that no chunk of the book contains, if any (one BM25 lookup each)."""
    for term in named_terms(query):
        if not await index.keyword(term, Filter(book=book), 1):
            return term
    return None
