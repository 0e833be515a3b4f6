"""How rankings are combined: reciprocal-rank fusion of hit lists (the one definition every search
path uses), and the blend of the fused scores with the cross-encoder's."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from services.retrieval.index.base import Hit

RRF_K = 60
# Hits fetched past a pool's size, so that a group of equal scores cut by the pool's edge comes
# whole (copies of a page across versions and locales score alike): see through_ties.
TIE_ALLOWANCE = 16


def through_ties(ranking: Sequence[Hit], size: int) -> list[Hit]:
    """The first `size` hits and those after them that tie with the last: a store orders equal
    scores as it likes, so a cut inside a tie would keep an arbitrary few of them."""
    if size <= 0:
        return []
    end = min(size, len(ranking))
    while 0 < end < len(ranking) and ranking[end].score == ranking[end - 1].score:
        end += 1
    return list(ranking[:end])


def fetch_size(pool: int) -> int:
    """How many hits to ask a store for, per ranking, to fill a pool of `pool` (fuse_pools)."""
    return pool + TIE_ALLOWANCE


def fuse_pools(rankings: Sequence[Sequence[Hit]], pool: int) -> list[tuple[str, float]]:
    """Each ranking (fetched with fetch_size) cut to its pool through its ties, then fused: every
    hybrid search path, whichever store runs it, fills and fuses its pools this one way."""
    return reciprocal_rank_fusion([through_ties(ranking, pool) for ranking in rankings])


def reciprocal_rank_fusion(rankings: Sequence[Sequence[Hit]], k: int = RRF_K) -> list[tuple[str, float]]:
    """Fuses ranked lists of chunk ids: each appearance at rank r adds 1/(k + r). Hits with equal
    scores share the best rank of their group (BM25 gives identical sections, such as a page's
    copies in two versions, identical scores, and a store returns such ties in any order), and
    equal fused scores are ordered by chunk id: the same hits always give the same order."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        rank, previous = 0, None
        for position, hit in enumerate(ranking, start=1):
            if hit.score != previous:
                rank, previous = position, hit.score
            scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def _standard(values: Sequence[float]) -> list[float]:
    mean, spread = statistics.fmean(values), statistics.pstdev(values)
    return [(v - mean) / spread if spread > 0 else 0.0 for v in values]


def blended(fused: Sequence[float], rerank: Sequence[float]) -> list[float]:
    """Each candidate's fused and cross-encoder scores, standardised over the candidates and
    added with equal weight. Neither ranking alone carried over from the Redux dev set to books
    it was not tuned on (the cross-encoder promoted passages that read like answers to another
    question, the fusion missed paraphrases); the equal blend kept most of each one's gains."""
    return [f + r for f, r in zip(_standard(fused), _standard(rerank), strict=True)]
