"""Groups the questions a book answered badly into topics by meaning, for the gap report.

Pure: questions and their vectors in, topics out (the route fetches both over gRPC)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from records.gap import GapQuestion

# Cosine similarity to a topic's centroid at or above which a question joins it. Each embedder has
# its own scale (as for the scope thresholds): on the seeded set of tests/test_gaps.py, paraphrases
# score at least 0.53 apart from others at most 0.36 with MiniLM; 0.71 against 0.63 with bge-small.
TOPIC_SIMILARITY = {"all-MiniLM-L6-v2": 0.45, "bge-small-en-v1.5": 0.68}
DEFAULT_SIMILARITY = 0.5  # other embedders (such as Gemini's): pass similarity= to tune
REPRESENTATIVES = 3  # questions shown per topic


@dataclass
class Topic:
    book: str
    members: list[int] = field(default_factory=list)  # indexes into the questions
    questions: list[str] = field(default_factory=list)  # representatives, most central first
    count: int = 0
    earlier: int = 0  # asked in the first half of the window
    recent: int = 0  # asked in the second half
    refused: int = 0
    ungrounded: int = 0
    downvoted: int = 0

    @property
    def trend(self) -> str:
        if self.recent > self.earlier:
            return "rising"
        return "falling" if self.recent < self.earlier else "steady"


def similarity_for(embedder: str) -> float:
    """The default threshold for the embedder named ``embedder`` (such as "local:all-MiniLM-L6-v2")."""
    return next((v for k, v in TOPIC_SIMILARITY.items() if k in embedder), DEFAULT_SIMILARITY)


def group(asked: list[GapQuestion], vectors: list[list[float]], since: datetime, until: datetime,
          threshold: float) -> list[Topic]:
    """Topics, largest first: a greedy pass, oldest question first, joins each question to the
    topic whose centroid is nearest when at least ``threshold`` similar, else starts a topic;
    a second pass moves each question to its nearest final centroid, so the order of arrival
    does not decide membership. Books are never mixed."""
    if not asked:
        return []
    m = np.asarray(vectors, dtype=np.float64)
    m /= np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
    order = sorted(range(len(asked)), key=lambda i: asked[i].asked_at)
    books: list[str] = []
    sums: list[np.ndarray] = []
    for i in order:
        best, score = _nearest(m[i], sums, books, asked[i].book)
        if best is None or score < threshold:
            books.append(asked[i].book)
            sums.append(m[i].copy())
        else:
            sums[best] += m[i]
    members: dict[int, list[int]] = {}
    for i in order:
        best, _ = _nearest(m[i], sums, books, asked[i].book)
        assert best is not None  # the question's own book has a topic
        members.setdefault(best, []).append(i)
    middle = since + (until - since) / 2
    topics = []
    for t, idx in members.items():
        centroid = m[idx].sum(axis=0)
        centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
        topic = Topic(books[t], idx, count=len(idx))
        seen: set[str] = set()
        for i in sorted(idx, key=lambda i: -float(m[i] @ centroid)):
            if len(topic.questions) < REPRESENTATIVES and asked[i].question not in seen:
                seen.add(asked[i].question)
                topic.questions.append(asked[i].question)
        for i in idx:
            a = asked[i]
            topic.recent += a.asked_at >= middle
            topic.earlier += a.asked_at < middle
            topic.refused += a.out_of_scope
            topic.ungrounded += a.ungrounded and not a.out_of_scope
            topic.downvoted += a.downvoted
        topics.append(topic)
    return sorted(topics, key=lambda t: (-t.count, t.questions[0]))


def _nearest(vector: np.ndarray, sums: list[np.ndarray], books: list[str], book: str) -> tuple[int | None, float]:
    best, score = None, -2.0
    for t, s in enumerate(sums):
        if books[t] != book:
            continue
        sim = float(vector @ s) / max(float(np.linalg.norm(s)), 1e-12)
        if sim > score:
            best, score = t, sim
    return best, score
