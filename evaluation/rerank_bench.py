"""Embedders and cross-encoder reranking side by side on a QA set (how the default embedder and
reranking settings were chosen).

    python -m evaluation.rerank_bench --docs ../shared/corpora/redux-docs \\
        --qa ../shared/corpora/redux-docs-qa.jsonl --out eval-results/rerank-bench.json

For each embedder the book is ingested into a fresh in-process stack (evaluation.stack) and every
question searched through /v1/search: dense and hybrid top 10 (today's rankings) and hybrid top
`max(N)` as the candidates. The stack is then stopped and the candidates are rescored here by
embedding.reranker.CrossEncoder for each passage budget; the top N of the fused ranking are
reordered by score and the rest keep their fused order. One pair per model call, so a pair's
score does not depend on its neighbours and the top 10 and top 20 are prefixes of the top 30.
CPU per question is the process CPU time of scoring its first N candidates on one thread.
Everything runs in this one process, one question at a time: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from lectern.ingest.v1 import ingest_service_pb2 as ipb

from embedding.reranker import CrossEncoder, passage_text
from evaluation.metrics import Hit, first_relevant_rank, mrr_at, ndcg_at, recall_at, relevance
from evaluation.qa import QAItem, load_qa
from evaluation.stack import local_stack

EMBEDDERS = ("local", "bge-small")
CANDIDATES = (10, 20, 30)
BUDGETS = (128, 256, 384)
BOOK = "bench"


@dataclass(frozen=True)
class Candidate:
    chunk_id: str
    hit: Hit
    text: str


@dataclass
class Searched:
    """One embedder's rankings of every question, and what its ingest cost."""

    embedder: str
    chunks: int
    ingest_seconds: float
    dense: dict[str, list[Candidate]] = field(default_factory=dict)
    hybrid: dict[str, list[Candidate]] = field(default_factory=dict)
    pool: dict[str, list[Candidate]] = field(default_factory=dict)
    query_ms: dict[str, list[float]] = field(default_factory=dict)
    dense_best: dict[str, float] = field(default_factory=dict)
    """Best dense similarity of each question (dense mode's first score)."""
    out_of_scope: dict[str, bool] = field(default_factory=dict)
    """The fused search's own out-of-scope verdict (dense threshold and named-term rules)."""


def _candidates(body: dict[str, Any]) -> list[Candidate]:
    return [Candidate(r["chunk_id"], Hit(r["file_path"], tuple(r["heading_path"])),
                      passage_text(r["heading_path"], r["content"])) for r in body["results"]]


async def search_all(embedder: str, docs: Path, items: Sequence[QAItem], pool: int, home: Path) -> Searched:
    from cli.ingest import run_ingest

    async with local_stack(home, (docs.parent, docs), {"LECTERN_EMBEDDER": embedder}) as stack:
        summary = await run_ingest(stack.address("ingest"), ipb.IngestRequest(
            source_dir=str(docs), book=BOOK, base_url="/docs/"), show=False)
        out = Searched(embedder, summary.chunks_new + summary.chunks_unchanged, summary.seconds)
        async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=120) as client:
            for item in items:
                for name, mode, top_k in (("dense", "dense", 10), ("hybrid", "hybrid", 10), ("pool", "hybrid", pool)):
                    started = time.perf_counter()
                    reply = await client.post("/v1/search", json={"query": item.question, "top_k": top_k,
                                                                  "mode": mode, "book": BOOK,
                                                                  "rerank": False})
                    out.query_ms.setdefault(name, []).append((time.perf_counter() - started) * 1000)
                    reply.raise_for_status()
                    body = reply.json()
                    getattr(out, name)[item.id] = _candidates(body)
                    if name == "dense":
                        out.dense_best[item.id] = body["results"][0]["score"] if body["results"] else 0.0
                    elif name == "hybrid":
                        out.out_of_scope[item.id] = bool(body["out_of_scope"])
    return out


def score_pool(reranker: CrossEncoder, items: Sequence[QAItem], searched: Searched, sizes: Sequence[int]
               ) -> tuple[dict[str, dict[str, float]], dict[int, list[float]]]:
    """Scores by question and chunk id, and the CPU ms each question's first N pairs took."""
    scores: dict[str, dict[str, float]] = {}
    cpu: dict[int, list[float]] = {n: [] for n in sizes}
    for item in items:
        pool = searched.pool[item.id]
        mine: dict[str, float] = {}
        spent, done = 0.0, 0
        for n in sorted(sizes):
            part = pool[done:n]
            started = time.process_time()
            values = reranker.score(item.question, [c.text for c in part])
            spent += time.process_time() - started
            mine.update({c.chunk_id: v for c, v in zip(part, values, strict=True)})
            done = max(done, n)
            cpu[n].append(spent * 1000)
        scores[item.id] = mine
    return scores, cpu


def reranked(pool: Sequence[Candidate], scores: dict[str, float], n: int) -> list[Candidate]:
    head = sorted(pool[:n], key=lambda c: -scores[c.chunk_id])  # stable: ties keep the fused order
    return head + list(pool[n:])


def quality(items: Sequence[QAItem], ranking: dict[str, list[Candidate]]) -> dict[str, float]:
    scoped = [i for i in items if not i.out_of_scope]
    ranks = {i.id: first_relevant_rank([c.hit for c in ranking[i.id][:10]], i.gold, "section") for i in scoped}
    out = {f"recall@{k}": statistics.fmean(recall_at(k, ranks[i.id]) for i in scoped) for k in (1, 2, 5, 10)}
    out["mrr@10"] = statistics.fmean(mrr_at(10, ranks[i.id]) for i in scoped)
    out["ndcg@10"] = statistics.fmean(
        ndcg_at(10, relevance([c.hit for c in ranking[i.id][:10]], i.gold, "section"), len(i.gold)) for i in scoped)
    for kind in sorted({i.type for i in scoped}):
        of_kind = [i for i in scoped if i.type == kind]
        out[f"{kind}:recall@5"] = statistics.fmean(recall_at(5, ranks[i.id]) for i in of_kind)
        out[f"{kind}:mrr@10"] = statistics.fmean(mrr_at(10, ranks[i.id]) for i in of_kind)
    return out


def scope_separation(items: Sequence[QAItem], top_scores: dict[str, float]) -> dict[str, float]:
    """How well the best cross-encoder score alone tells out-of-scope questions apart: the best
    accuracy over every threshold, and the in-scope questions refused at the threshold that
    catches every out-of-scope one (to set the reranked scope threshold; nothing is tuned here)."""
    values = sorted(set(top_scores.values()))
    best = 0.0
    for t in values:
        right = sum((top_scores[i.id] < t) == i.out_of_scope for i in items)
        best = max(best, right / len(items))
    oos = [top_scores[i.id] for i in items if i.out_of_scope]
    scoped = [top_scores[i.id] for i in items if not i.out_of_scope]
    ceiling = max(oos) if oos else float("-inf")
    return {"best_threshold_accuracy": best, "oos_top_max": ceiling,
            "oos_top_median": statistics.median(oos) if oos else 0.0,
            "in_scope_top_median": statistics.median(scoped) if scoped else 0.0,
            "in_scope_refused_at_full_oos_recall": sum(s <= ceiling for s in scoped) / max(1, len(scoped))}


def table(rows: list[dict[str, Any]]) -> str:
    cols = ("recall@1", "recall@2", "recall@5", "mrr@10", "ndcg@10", "paraphrase:recall@5", "rerank_cpu_ms_p50",
            "rerank_cpu_ms_p95")
    lines = ["| ranking | " + " | ".join(cols) + " |", "|" + " --- |" * (len(cols) + 1)]
    for r in rows:
        cells = [("–" if r.get(c) is None else f"{r[c]:.0f}" if c.endswith("_ms_p50") or c.endswith("_ms_p95")
                  else f"{r[c]:.3f}") for c in cols]
        lines.append(f"| {r['label']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _p95(values: Sequence[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


async def run(docs: Path, qa: Path, embedders: Sequence[str], budgets: Sequence[int], sizes: Sequence[int]
              ) -> dict[str, Any]:
    items = load_qa(qa)
    searched: list[Searched] = []
    for embedder in embedders:
        with tempfile.TemporaryDirectory(prefix="lectern-rerank-bench-") as tmp:
            print(f"ingesting and searching with {embedder}", file=sys.stderr)
            searched.append(await search_all(embedder, docs, items, max(sizes), Path(tmp)))
    rows: list[dict[str, Any]] = []
    raw: dict[str, Any] = {}
    for s in searched:
        rows.append({"label": f"{s.embedder} dense", **quality(items, s.dense)})
        rows.append({"label": f"{s.embedder} hybrid", **quality(items, s.hybrid)})
        for budget in budgets:
            print(f"reranking {s.embedder} candidates, {budget}-token passages", file=sys.stderr)
            reranker = CrossEncoder(passage_tokens=budget, threads=1, batch_size=1, workers=1)
            reranker.load()  # hashing and opening the model stay out of the first question's CPU time
            scores, cpu = score_pool(reranker, items, s, sizes)
            reranker.close()
            raw[f"{s.embedder}/{budget}"] = scores
            for n in sizes:
                ranking = {i.id: reranked(s.pool[i.id], scores[i.id], n) for i in items}
                top = {i.id: max((scores[i.id][c.chunk_id] for c in s.pool[i.id][:n]), default=-99.0)
                       for i in items}
                rows.append({"label": f"{s.embedder} hybrid + CE top {n} @ {budget} tok", **quality(items, ranking),
                             "rerank_cpu_ms_p50": statistics.median(cpu[n]), "rerank_cpu_ms_p95": _p95(cpu[n]),
                             "scope": scope_separation(items, top)})
    # The candidates themselves, so other ways of using the scores can be tried without the models.
    runs = [{"embedder": s.embedder, "chunks": s.chunks, "ingest_seconds": s.ingest_seconds,
             "search_ms_p50": {k: statistics.median(v) for k, v in s.query_ms.items()},
             "dense_best": s.dense_best, "out_of_scope": s.out_of_scope,
             "pools": {q: [[c.chunk_id, c.hit.file_path, list(c.hit.heading_path)] for c in pool]
                       for q, pool in s.pool.items()}} for s in searched]
    return {"docs": str(docs), "qa": str(qa), "questions": len(items), "runs": runs, "rows": rows,
            "scores": raw, "markdown": table(rows)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", required=True)
    parser.add_argument("--qa", required=True)
    parser.add_argument("--embedders", default=",".join(EMBEDDERS))
    parser.add_argument("--budgets", default=",".join(map(str, BUDGETS)))
    parser.add_argument("--candidates", default=",".join(map(str, CANDIDATES)))
    parser.add_argument("--out", default="")
    args = parser.parse_args(argv)
    result = asyncio.run(run(Path(args.docs).resolve(), Path(args.qa), args.embedders.split(","),
                             [int(b) for b in args.budgets.split(",")], [int(n) for n in args.candidates.split(",")]))
    print(result["markdown"])
    for r in result["runs"]:
        print(f"{r['embedder']}: {r['chunks']} chunks, ingest {r['ingest_seconds']:.1f} s, search p50 ms "
              f"{json.dumps({k: round(v, 1) for k, v in r['search_ms_p50'].items()})}")
    for row in result["rows"]:
        if "scope" in row:
            print(row["label"], json.dumps({k: round(v, 3) for k, v in row["scope"].items()}))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
