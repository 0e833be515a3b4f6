"""Runs a QA set through the gateway's HTTP API and scores it."""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from evaluation.metrics import KS, Hit, decision_quality, first_relevant_rank, mrr_at, ndcg_at, recall_at, relevance
from evaluation.qa import QAItem


@dataclass
class QuestionResult:
    item: QAItem
    section_rank: int | None
    file_rank: int | None
    ndcg: float
    predicted_out_of_scope: bool
    latency_ms: float


@dataclass
class ModeReport:
    mode: str
    overall: dict[str, float]
    by_type: dict[str, dict[str, float]]
    misses: list[str] = field(default_factory=list)
    query_encoder: str = ""
    embedder: str = ""
    rerank: str = ""
    """"on", "off", or empty for the server's default."""

    @property
    def config(self) -> str:
        """The configuration measured, such as "local, rerank on" (empty: the defaults)."""
        return ", ".join(p for p in (self.embedder, f"rerank {self.rerank}" if self.rerank else "",
                                     self.query_encoder) if p)

    @property
    def label(self) -> str:
        return f"{self.mode} ({self.config})" if self.config else self.mode


def summarise(results: Sequence[QuestionResult]) -> dict[str, float]:
    scoped = [r for r in results if not r.item.out_of_scope]
    out: dict[str, float] = {"questions": float(len(results))}
    if scoped:
        for k in KS:
            out[f"recall@{k}"] = statistics.fmean(recall_at(k, r.section_rank) for r in scoped)
        out["mrr@10"] = statistics.fmean(mrr_at(10, r.section_rank) for r in scoped)
        out["ndcg@10"] = statistics.fmean(r.ndcg for r in scoped)
        out["file_recall@5"] = statistics.fmean(recall_at(5, r.file_rank) for r in scoped)
        out["file_mrr@10"] = statistics.fmean(mrr_at(10, r.file_rank) for r in scoped)
    decision = decision_quality([r.predicted_out_of_scope for r in results], [r.item.out_of_scope for r in results])
    out["oos_precision"], out["oos_recall"], out["oos_accuracy"] = (decision.precision, decision.recall,
                                                                    decision.accuracy)
    # In-scope questions judged out of scope: readers told "not in the book" when it is.
    out["false_refusals"] = statistics.fmean(r.predicted_out_of_scope for r in scoped) if scoped else 0.0
    out["latency_p50_ms"] = statistics.median(r.latency_ms for r in results) if results else 0.0
    return out


async def search_mode(client: httpx.AsyncClient, items: Sequence[QAItem], mode: str, book: str) -> ModeReport:
    results = []
    for item in items:
        started = time.perf_counter()
        reply = await client.post("/v1/search", json={"query": item.question, "top_k": 10, "mode": mode,
                                                      "book": book})
        latency = (time.perf_counter() - started) * 1000
        reply.raise_for_status()
        body = reply.json()
        hits = [Hit(r["file_path"], tuple(r["heading_path"])) for r in body["results"]]
        results.append(QuestionResult(
            item, first_relevant_rank(hits, item.gold, "section"), first_relevant_rank(hits, item.gold, "file"),
            ndcg_at(10, relevance(hits, item.gold, "section"), len(item.gold)), bool(body["out_of_scope"]), latency,
        ))
    by_type: dict[str, list[QuestionResult]] = defaultdict(list)
    for r in results:
        by_type[r.item.type].append(r)
    misses = [f"{r.item.id}: {r.item.question}" for r in results
              if not r.item.out_of_scope and recall_at(5, r.section_rank) == 0]
    return ModeReport(mode, summarise(results), {t: summarise(rs) for t, rs in sorted(by_type.items())}, misses)


def _plain(text: str) -> str:
    return " ".join(text.replace("`", "").lower().split())


def states_fact(answer: str, must_contain: Sequence[str]) -> bool:
    """The answer holds every key phrase (case, backticks and spacing aside)."""
    plain = _plain(answer)
    return all(_plain(f) in plain for f in must_contain)


async def chat_eval(client: httpx.AsyncClient, items: Sequence[QAItem], book: str) -> dict[str, Any]:
    """Answers through /v1/chat: gold section among the first two sources, refusals when out of scope,
    the key fact (``must_contain``) stated, and overview questions answered with citations."""
    cited, refused, grounded, facts, overview = [], [], [], [], []
    latencies, wrongly_refused = [], []
    answers: list[dict[str, Any]] = []  # each question's reply, for reading what a figure hides
    for item in items:
        started = time.perf_counter()
        reply = await client.post("/v1/chat", json={"message": item.question, "book": book},
                                  headers={"Accept": "application/json"})
        latencies.append((time.perf_counter() - started) * 1000)
        reply.raise_for_status()
        body = reply.json()
        answers.append({"id": item.id, "out_of_scope": bool(body["out_of_scope"]), "answer": body["answer"],
                        "sources": [s["url"] for s in body["sources"]]})
        if item.out_of_scope:
            refused.append(bool(body["out_of_scope"]))
            continue
        wrongly_refused.append(bool(body["out_of_scope"]))
        hits = [Hit(s["file_path"], tuple(s["heading_path"])) for s in body["sources"][:2]]
        rank = first_relevant_rank(hits, item.gold, "section")
        cited.append(rank is not None and not body["out_of_scope"])
        grounded.append(bool(body["grounded"]))
        answers[-1].update(gold_in_first_two=cited[-1], grounded=grounded[-1])
        if item.must_contain:
            facts.append(not body["out_of_scope"] and states_fact(body["answer"], item.must_contain))
            answers[-1]["key_fact"] = facts[-1]
        if item.type == "overview":
            overview.append(not body["out_of_scope"] and bool(body["sources"]) and bool(body["grounded"]))
    return {
        "cited_gold_in_first_two": statistics.fmean(cited) if cited else 0.0,
        "refusal_rate_out_of_scope": statistics.fmean(refused) if refused else 0.0,
        "grounded_rate": statistics.fmean(grounded) if grounded else 0.0,
        "false_refusal_rate": statistics.fmean(wrongly_refused) if wrongly_refused else 0.0,
        "key_fact_rate": statistics.fmean(facts) if facts else None,
        "key_fact_questions": len(facts),
        "overview_answered_rate": statistics.fmean(overview) if overview else None,
        "overview_questions": len(overview),
        "latency_p50_ms": statistics.median(latencies) if latencies else 0.0,
        "questions": len(items),
        "answers": answers,
    }
