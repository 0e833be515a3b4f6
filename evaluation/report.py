"""Markdown tables of an eval run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evaluation.runner import ModeReport

COLUMNS = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "file_recall@5", "file_mrr@10",
           "oos_precision", "oos_recall", "latency_p50_ms")


def _fmt(value: float | None, key: str) -> str:
    if value is None:
        return "–"
    return f"{value:.1f}" if key.endswith("_ms") else f"{value:.3f}"


def markdown(reports: Sequence[ModeReport], chat: dict[str, Any] | None) -> str:
    lines = ["| mode | " + " | ".join(COLUMNS) + " |", "|" + " --- |" * (len(COLUMNS) + 1)]
    for r in reports:
        lines.append(f"| {r.label} | " + " | ".join(_fmt(r.overall.get(c), c) for c in COLUMNS) + " |")
    lines += ["", "Per question type (section recall@5 / MRR@10; out-of-scope: accuracy):", "",
              "| mode | " + " | ".join(sorted(reports[0].by_type)) + " |",
              "|" + " --- |" * (len(reports[0].by_type) + 1)]
    for r in reports:
        cells = []
        for t in sorted(r.by_type):
            m = r.by_type[t]
            cells.append(f"{m['oos_accuracy']:.2f}" if t == "out_of_scope"
                         else f"{m.get('recall@5', 0):.2f} / {m.get('mrr@10', 0):.2f}")
        lines.append(f"| {r.label} | " + " | ".join(cells) + " |")
    if chat:
        lines += ["", "Answers (/v1/chat):", "", "| cited gold in first two | refusal rate (out of scope) | grounded "
                  "| latency p50 ms |", "| --- | --- | --- | --- |",
                  f"| {chat['cited_gold_in_first_two']:.3f} | {chat['refusal_rate_out_of_scope']:.3f} | "
                  f"{chat['grounded_rate']:.3f} | {chat['latency_p50_ms']:.1f} |"]
    return "\n".join(lines)
