"""PNG plots of a bench run (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def _series(rows: list[dict[str, Any]], key: str) -> tuple[list[int], list[float], list[float], list[float]]:
    xs = [r["concurrency"] for r in rows]
    med = [r[key]["median"] for r in rows]
    low = [r[key]["median"] - r[key]["low"] for r in rows]
    high = [r[key]["high"] - r[key]["median"] for r in rows]
    return xs, med, low, high


def plot_all(result: dict[str, Any], out: Path, stem: str) -> list[Path]:
    written = []
    for name, runs in result.get("retrieval", {}).items():
        fig, (lat, thr) = plt.subplots(1, 2, figsize=(11, 4))
        for key in ("p50_ms", "p95_ms", "p99_ms"):
            xs, med, low, high = _series(runs["lectern"], key)
            lat.errorbar(xs, med, yerr=[low, high], marker="o", capsize=3, label=f"Lectern {key[:3]}")
        if runs.get("baseline"):
            xs, med, low, high = _series(runs["baseline"], "p50_ms")
            lat.errorbar(xs, med, yerr=[low, high], marker="s", linestyle="--", capsize=3, label="naive p50")
        lat.set(xscale="log", yscale="log", xlabel="concurrent clients", ylabel="latency (ms)",
                title=f"Search latency ({name})")
        lat.legend()
        for label, rows, style in (("Lectern", runs["lectern"], "-o"), ("naive", runs.get("baseline", []), "--s")):
            if rows:
                xs, med, _, _ = _series(rows, "qps")
                thr.plot(xs, med, style, label=label)
        thr.set(xscale="log", xlabel="concurrent clients", ylabel="queries per second",
                title=f"Search throughput ({name})")
        thr.legend()
        fig.tight_layout()
        path = out / f"{stem}-retrieval-{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    ingest = result.get("ingest")
    if ingest:
        fig, ax = plt.subplots(figsize=(6, 4))
        labels = ["full: embedding", "full: pipeline", "unchanged re-ingest"]
        values = [ingest["full"]["embed_seconds"], ingest["full"]["seconds"] - ingest["full"]["embed_seconds"],
                  ingest["unchanged"]["seconds"]["median"]]
        ax.bar(labels, values, color=["#4c72b0", "#dd8452", "#55a868"])
        ax.set(ylabel="seconds", title="Ingest of the Redux docs")
        fig.tight_layout()
        path = out / f"{stem}-ingest.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    chat = result.get("chat")
    if chat:
        fig, ax = plt.subplots(figsize=(6, 4))
        for answerer, rows in chat.items():
            rows = [r for r in rows or [] if r]
            if not rows:
                continue
            ax.plot([r["users"] for r in rows], [r["ttft_p95_ms"] for r in rows], "-o", label=f"{answerer} p95")
            ax.plot([r["users"] for r in rows], [r["ttft_p50_ms"] for r in rows], "--o", label=f"{answerer} p50")
        ax.set(xlabel="concurrent users", ylabel="time to first token (ms)", title="Chat through the gateway")
        ax.legend()
        fig.tight_layout()
        path = out / f"{stem}-chat.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written
