"""Reciprocal-rank fusion of ranked hit lists: the one definition every search path uses."""

from __future__ import annotations

from collections.abc import Sequence

from services.retrieval.index.base import Hit

RRF_K = 60


def reciprocal_rank_fusion(rankings: Sequence[Sequence[Hit]], k: int = RRF_K) -> list[tuple[str, float]]:
    """Fuses ranked lists of chunk ids: each appearance at rank r adds 1/(k + r). Equal scores
    are ordered by chunk id, so the same lists always give the same order."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))
