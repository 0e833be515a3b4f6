"""Ranking metrics at section and file level, and the out-of-scope decision's quality.

A result matches a gold section when its file is the gold file and the gold heading is one of
its heading path's entries (a chunk of a subsection still belongs to its section).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from evaluation.qa import Gold

KS = (1, 5, 10)


@dataclass(frozen=True)
class Hit:
    file_path: str
    heading_path: tuple[str, ...]


def _norm(text: str) -> str:
    return " ".join(text.replace("`", "").lower().split())


def matches_section(hit: Hit, gold: Gold) -> bool:
    return hit.file_path == gold.file_path and _norm(gold.heading) in {_norm(h) for h in hit.heading_path}


def matches_file(hit: Hit, gold: Gold) -> bool:
    return hit.file_path == gold.file_path


def relevance(hits: Sequence[Hit], gold: Sequence[Gold], level: str) -> list[int]:
    """1 where a hit finds a gold item not found by an earlier hit, else 0."""
    match = matches_section if level == "section" else matches_file
    found: set[int] = set()
    rels = []
    for hit in hits:
        new = next((i for i, g in enumerate(gold) if i not in found and match(hit, g)), None)
        if new is None:
            rels.append(0)
        else:
            found.add(new)
            rels.append(1)
    return rels


def first_relevant_rank(hits: Sequence[Hit], gold: Sequence[Gold], level: str) -> int | None:
    match = matches_section if level == "section" else matches_file
    for rank, hit in enumerate(hits, start=1):
        if any(match(hit, g) for g in gold):
            return rank
    return None


def recall_at(k: int, rank: int | None) -> float:
    """1 when some gold item is in the top k (questions mostly have one gold section)."""
    return 1.0 if rank is not None and rank <= k else 0.0


def mrr_at(k: int, rank: int | None) -> float:
    return 1.0 / rank if rank is not None and rank <= k else 0.0


def ndcg_at(k: int, rels: Sequence[int], n_gold: int) -> float:
    dcg = sum(r / math.log2(i + 2) for i, r in enumerate(rels[:k]))
    ideal = sum(1 / math.log2(i + 2) for i in range(min(n_gold, k)))
    return dcg / ideal if ideal else 0.0


@dataclass(frozen=True)
class Decision:
    precision: float
    recall: float
    accuracy: float


def decision_quality(predicted: Sequence[bool], actual: Sequence[bool]) -> Decision:
    """Out-of-scope as the positive class."""
    tp = sum(p and a for p, a in zip(predicted, actual, strict=True))
    fp = sum(p and not a for p, a in zip(predicted, actual, strict=True))
    fn = sum(a and not p for p, a in zip(predicted, actual, strict=True))
    correct = sum(p == a for p, a in zip(predicted, actual, strict=True))
    return Decision(
        precision=tp / (tp + fp) if tp + fp else 1.0,
        recall=tp / (tp + fn) if tp + fn else 1.0,
        accuracy=correct / len(actual) if actual else 1.0,
    )
