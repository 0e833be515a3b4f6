"""`make bench`: the speed of every service under load, bounded to about ten minutes.

Ingest (Redux docs, full and unchanged), retrieval load on the Redux index and on a synthetic
100k-chunk index with the naive baseline beside it, ANN recall, chat time to first token with
the extractive answerer and with a fake LLM at a fixed per-token delay, sessions writes, gateway
overhead, and the memory of every process. Each figure is the median of repeated runs with the
spread; results go to bench-results/<date>.json with PNG plots.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lectern.ingest.v1 import ingest_service_pb2 as ipb
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from bench import chat, gateway, processes, retrieval, sessions, synthetic
from bench.load import LoadResult, summarise_runs, summary
from bench.plots import plot_all
from cli.supervisor import Child, wait_serving
from evaluation.qa import load_qa
from evaluation.stack import free_port
from runtime.server import run_loop

console = Console(stderr=True)
STEPS = 13


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}


async def repeated(make: Any, repeats: int) -> dict[str, Any]:
    runs: list[LoadResult] = [await make() for _ in range(repeats)]
    return summarise_runs(runs)


class Steps:
    """Runs each step, records its error instead of stopping, and saves results as it goes."""

    def __init__(self, progress: Progress, task: Any, result: dict[str, Any], path: Path) -> None:
        self.progress, self.task, self.result, self.path = progress, task, result, path

    def __call__(self, text: str) -> None:
        self.progress.update(self.task, advance=1, description=text)
        self.save()

    def save(self) -> None:
        self.path.write_text(json.dumps(self.result, indent=2, default=str))

    async def guard(self, name: str, coro: Any) -> Any:
        try:
            return await coro
        except Exception as exc:  # one failed benchmark must not lose the others
            console.print(f"[red]{name} failed[/red]: {exc!r}")
            self.result.setdefault("errors", {})[name] = repr(exc)
            return None


async def bench(args: argparse.Namespace, progress: Progress, task: Any, path: Path) -> dict[str, Any]:

    corpus = Path(args.corpus).resolve()  # noqa: ASYNC240 - set-up, before any load runs
    questions = [q.question for q in load_qa(Path(args.qa))]
    result: dict[str, Any] = {"machine": machine(), "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                              "settings": {"seconds": args.seconds, "repeats": args.repeats,
                                           "synthetic": args.synthetic}}
    # Progress is saved beside the result, which stays as it was until the run ends.
    step = Steps(progress, task, result, path.with_suffix(".partial.json"))
    if "stack" not in args.parts:
        if "synthetic" in args.parts and args.synthetic:
            result["retrieval"] = {f"synthetic-{args.synthetic // 1000}k": await step.guard(
                "synthetic", synthetic_run(args, questions, step))}
        return keep_other_parts(result, path)
    from cli.ingest import run_ingest

    with tempfile.TemporaryDirectory(prefix="lectern-bench-") as tmp:
        home = Path(tmp)
        progress.update(task, description="starting the stack (separate processes)")
        started = time.perf_counter()
        with processes.running_stack(home) as stack:
            result["startup_seconds"] = time.perf_counter() - started
            step("ingesting the Redux docs")
            request = ipb.IngestRequest(source_dir=str(corpus), book="bench", base_url="/docs/")
            full = await run_ingest(stack.address("ingest"), request, show=False)
            chunks = full.chunks_new
            unchanged = [(await run_ingest(stack.address("ingest"), request, show=False)).seconds for _ in range(3)]
            result["ingest"] = {
                "files": full.files_seen, "chunks": chunks,
                "full": {"seconds": full.seconds, "embed_seconds": full.embed_seconds,
                         "chunks_per_second": chunks / full.seconds if full.seconds else 0.0,
                         "embed_share": full.embed_seconds / full.seconds if full.seconds else 0.0,
                         "pipeline_overhead_vs_embedding": (full.seconds - full.embed_seconds) / full.embed_seconds
                         if full.embed_seconds else 0.0},
                "unchanged": {"seconds": summary(unchanged).__dict__},
            }
            memory: dict[str, Any] = {"after_ingest": processes.memory_by_process(stack.process.pid, home)}
            step("retrieval load (Redux index)")
            redux: dict[str, Any] = {"points": chunks, "lectern": [], "baseline": []}
            result["retrieval"] = {"redux": redux}
            for c in args.concurrency:
                run = await step.guard(f"retrieval@{c}", repeated(
                    lambda c=c: retrieval.search_load(stack.address("retrieval"), questions, "bench", c,
                                                      args.seconds, rerank=False), args.repeats))
                if run:
                    redux["lectern"].append(run)
            step("retrieval load with reranking (Redux index)")
            redux["lectern_reranked"] = await rerank_runs(stack.address("retrieval"), questions, "bench", args, step)
            memory["under_load"] = processes.memory_by_process(stack.process.pid, home)
            step("gateway overhead")
            result["gateway"] = await step.guard("gateway", gateway.overhead(
                stack.gateway_url, stack.address("retrieval"), questions, "bench", args.seconds))
            step("sessions writes")
            result["sessions"] = [await step.guard(f"sessions@{c}", repeated(
                lambda c=c: sessions.append_load(stack.address("sessions"), c, args.seconds), args.repeats))
                for c in (1, 8, 32)]
            result["analytics"] = await step.guard("analytics", analytics_run(home, stack.address("sessions"),
                                                                               args.seed_turns))
            step("chat, extractive answerer")
            result["chat"] = {"extractive": [await step.guard(f"chat@{u}", chat.chat_load(
                stack.gateway_url, questions, "bench", u, 5)) for u in (1, 8)]}
            result["memory"] = memory
            total = {k: sum(v[k] for v in memory["under_load"].values()) for k in ("rss_mb", "peak_rss_mb")}
            memory["whole_stack_peak_mb"] = total["peak_rss_mb"]
        step("naive baseline (Redux size)")
        naive = retrieval.NaiveBaseline(chunks)
        for c in args.baseline_concurrency:
            run = await step.guard(f"baseline@{c}", repeated(lambda c=c: naive.load(questions, c, args.seconds),
                                                              args.repeats))
            if run:
                redux["baseline"].append(run)

        step("chat with a fake LLM at a fixed per-token delay")
        result["chat"]["fake-llm"] = await step.guard("fake-llm", fake_llm_chat(home, questions, args.token_delay))

    if args.synthetic and "synthetic" in args.parts:
        step(f"synthetic index of {args.synthetic:,} chunks")
        result["retrieval"][f"synthetic-{args.synthetic // 1000}k"] = await step.guard(
            "synthetic", synthetic_run(args, questions, step))
    step("plots")
    return keep_other_parts(result, path)


async def rerank_runs(address: str, questions: list[str], book: str, args: argparse.Namespace, step: Any
                      ) -> list[dict[str, Any]]:
    """Search with the cross-encoder over the fused candidates: its CPU, not the index, sets the
    pace, so it is measured at 1 and 8 clients (chat's concurrency) only."""
    runs = []
    for c in sorted({1, min(8, max(args.concurrency))}):
        run = await step.guard(f"retrieval-reranked@{c}", repeated(
            lambda c=c: retrieval.search_load(address, questions, book, c, args.seconds, rerank=True), args.repeats))
        if run:
            runs.append(run)
    return runs


def keep_other_parts(result: dict[str, Any], previous: Path) -> dict[str, Any]:
    """A partial run (--parts) keeps today's figures of the parts it did not run."""
    if not previous.exists():
        return result
    old = json.loads(previous.read_text())
    for key, value in old.items():
        result.setdefault(key, value)
    for name, runs in old.get("retrieval", {}).items():
        result.setdefault("retrieval", {}).setdefault(name, runs)
    return result


async def analytics_run(home: Path, address: str, turns: int) -> dict[str, Any]:
    from services.sessions.embedded_postgres import start_embedded

    _server, url = start_embedded(home, stop_on_exit=False)  # joins the stack's running server
    seconds = await sessions.seed_turns(url, turns)
    timings = await sessions.analytics_latency(address, 30, 5)
    # Then a tenth as many conversations past the default 30-day retention, which one
    # RunRetention must remove (summarising their days first) from a database of them all.
    expired = turns // 10
    await sessions.seed_turns(url, expired, days=10, days_ago=31)
    deleted, retention = await sessions.retention_seconds(address)
    return {"seeded_turns": turns, "seed_seconds": seconds, "analytics_30_days_ms": summary(timings).__dict__,
            "retention": {"expired_conversations": expired, "deleted": deleted, "seconds": retention}}


async def fake_llm_chat(home: Path, questions: list[str], token_delay: float) -> list[dict[str, float]]:
    from tests.fake_gemini import FakeGemini

    fake = FakeGemini()
    fake.default_delay = token_delay
    await fake.start()
    try:
        env = {"GEMINI_API_KEY": "bench", "LECTERN_GEMINI_BASE_URL": fake.url}
        with processes.running_stack(home, extra_env=env) as stack:
            return [await chat.chat_load(stack.gateway_url, questions, "bench", u, 5) for u in (1, 8)]
    finally:
        await fake.stop()


async def synthetic_run(args: argparse.Namespace, questions: list[str], step: Any) -> dict[str, Any]:
    cache = Path(args.cache) / f"synthetic-{args.synthetic}"
    out: dict[str, Any] = {"points": args.synthetic}
    if not (cache / "docusaurus-book" / "lectern-index.json").exists():
        out["build_seconds"] = await synthetic.build(cache, args.synthetic)
    out["ann_recall@10"] = synthetic.ann_recall(cache)
    home = cache.parent / "synthetic-home"
    home.mkdir(parents=True, exist_ok=True)
    edge = home / "qdrant-edge"
    if edge.is_symlink() or edge.exists():
        edge.unlink()
    edge.symlink_to(cache.resolve())
    port = free_port()
    env = processes.stack_env(home, {"retrieval": port})
    log = (home / "retrieval.log").open("wb")
    proc = subprocess.Popen(  # noqa: ASYNC220 - our own service; start-up, not the measured path
        [sys.executable, "-m", "services.retrieval"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        await wait_serving(Child("retrieval", proc, home / "retrieval.log"), f"127.0.0.1:{port}",
                           time.monotonic() + 120)
        out["lectern"] = []
        for c in args.concurrency:
            out["lectern"].append(await repeated(
                lambda c=c: retrieval.search_load(f"127.0.0.1:{port}", questions, "synthetic", c, args.seconds,
                                                  rerank=False),
                args.repeats))
        # Readers repeat questions: those skip the encoder (query-vector cache), so this is
        # what search itself costs at this size.
        out["lectern_repeated"] = []
        for c in sorted({1, max(args.concurrency)}):
            out["lectern_repeated"].append(await repeated(
                lambda c=c: retrieval.search_load(f"127.0.0.1:{port}", questions, "synthetic", c, args.seconds,
                                                  unique=False, rerank=False),
                args.repeats))
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
    step("naive baseline (synthetic size)")
    naive = retrieval.NaiveBaseline(args.synthetic)
    out["baseline"] = [await repeated(lambda: naive.load(questions, 1, args.seconds), args.repeats)]
    return out


def paired_runs(result: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any] | None]]:
    """(index, Lectern's run, the naive baseline's run at the same concurrency or None)."""
    for name, runs in result.get("retrieval", {}).items():
        if not runs:
            continue
        base = {r["concurrency"]: r for r in runs.get("baseline", [])}
        for r in runs.get("lectern", []):
            yield name, r, base.get(r["concurrency"])


def ratios(result: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, r, b in paired_runs(result):
        if b:
            out[f"{name}@{r['concurrency']}"] = {
                "qps_ratio": r["qps"]["median"] / b["qps"]["median"] if b["qps"]["median"] else None,
                "p50_speedup": b["p50_ms"]["median"] / r["p50_ms"]["median"] if r["p50_ms"]["median"] else None,
            }
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = ["| index | clients | QPS | p50 ms | p95 ms | p99 ms | naive QPS | naive p50 ms |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, r, b in paired_runs(result):
        lines.append(_row(name, r, b))
    for name, runs in result.get("retrieval", {}).items():
        lines += [_row(f"{name}, repeated questions", r, None) for r in runs.get("lectern_repeated", [])]
        lines += [_row(f"{name}, reranked", r, None) for r in runs.get("lectern_reranked", [])]
    return "\n".join(lines)


def _row(name: str, run: dict[str, Any], baseline: dict[str, Any] | None) -> str:
    return (f"| {name} | {run['concurrency']} | {run['qps']['median']:.0f} | {run['p50_ms']['median']:.1f} | "
            f"{run['p95_ms']['median']:.1f} | {run['p99_ms']['median']:.1f} | "
            + (f"{baseline['qps']['median']:.1f} | {baseline['p50_ms']['median']:.1f} |" if baseline else "– | – |"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench", description="Load every service and write the figures "
                                     "(median and spread) to OUT/<date>.json with PNG plots.")
    parser.add_argument("--out", default="bench-results", help="folder for the JSON and plots (default: %(default)s)")
    parser.add_argument("--corpus", default="../shared/corpora/redux-docs", help="docs folder to ingest and search")
    parser.add_argument("--qa", default="../shared/corpora/redux-docs-qa.jsonl",
                        help="QA set whose questions are the search and chat load")
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each load run")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each load, for the median and spread")
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 32],
                        help="search clients at once, comma-separated (default: 1,8,32)")
    parser.add_argument("--baseline-concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8],
                        help="clients at once for the naive baseline (default: 1,8)")
    parser.add_argument("--synthetic", type=int, default=100_000, help="chunks in the synthetic index (0: skip)")
    parser.add_argument("--cache", default=".lectern/bench-cache", help="where the synthetic index is kept")
    parser.add_argument("--parts", default="stack,synthetic",
                        help="stack (ingest, loads, chat, sessions, memory) and/or synthetic")
    parser.add_argument("--seed-turns", type=int, default=100_000, help="turns seeded before timing Analytics(30)")
    parser.add_argument("--token-delay", type=float, default=0.02, help="fake LLM seconds per streamed chunk")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = dt.date.today().isoformat()
    with Progress(TextColumn("[bold]bench"), BarColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("", total=STEPS)
        # The load generators share the machine with what they measure: on uvloop, as the
        # services run, their own per-call cost takes less of the two cores.
        result = run_loop(bench(args, progress, task, out / f"{stem}.json"))
    result["ratios"] = ratios(result)
    result["plots"] = [str(p) for p in plot_all(result, out, stem)]
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2))
    print(markdown(result))
    print(json.dumps({k: result[k] for k in ("ingest", "gateway", "chat", "ratios") if k in result}, indent=2))
    console.print(f"wrote {out / f'{stem}.json'} and {len(result['plots'])} plots")
    return 0


if __name__ == "__main__":
    sys.exit(main())
