"""Markdown tables of an eval run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evaluation.runner import ModeReport

COLUMNS = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "file_recall@5", "file_mrr@10",
           "oos_precision", "oos_recall", "false_refusals", "latency_p50_ms")


def _fmt(value: float | None, key: str) -> str:
    if value is None:
        return "–"
    return f"{value:.1f}" if key.endswith("_ms") else f"{value:.3f}"


def markdown(reports: Sequence[ModeReport], chats: Sequence[dict[str, Any]] | dict[str, Any] | None) -> str:
    """The tables; `chats` holds one answer summary per configuration (its "config" names it)."""
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
    chats = [chats] if isinstance(chats, dict) else list(chats or [])
    if chats:
        lines += ["", "Answers (/v1/chat):", "",
                  "| configuration | cited gold in first two | refusal rate (out of scope) | false refusals | grounded "
                  "| key fact stated | overview answered with citations | latency p50 ms |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for chat in chats:
            lines.append(
                f"| {chat.get('config') or 'default'} | {chat['cited_gold_in_first_two']:.3f} | "
                f"{chat['refusal_rate_out_of_scope']:.3f} | {_fmt(chat.get('false_refusal_rate'), '')} | "
                f"{chat['grounded_rate']:.3f} | {_fmt(chat.get('key_fact_rate'), '')} | "
                f"{_fmt(chat.get('overview_answered_rate'), '')} | {chat['latency_p50_ms']:.1f} |")
    return "\n".join(lines)
