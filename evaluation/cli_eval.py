"""`lectern eval`: ingest a corpus into a fresh index, run a QA set through the gateway, report."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import sys
import tempfile
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
from lectern.ingest.v1 import ingest_service_pb2 as ipb
from rich.console import Console

from evaluation.qa import load_qa
from evaluation.report import markdown
from evaluation.runner import ModeReport, chat_eval, search_mode
from evaluation.stack import local_stack
from runtime.settings import GEMINI_API_KEY, GEMINI_BASE_URL
from services.chat.settings import LLM

console = Console(stderr=True)


RERANK = {"on": "true", "off": "false"}
# The stack reads only the variables given to it; these come from the shell, so that
# `--embedders gemini` can reach Gemini. Answers stay extractive: a Gemini key given for the
# embedder must not change which answerer is measured.
PASSED_THROUGH = (GEMINI_API_KEY.name, GEMINI_BASE_URL.name)
ANSWERER = {LLM.name: "extractive"}


def passed_through(shell: Mapping[str, str]) -> dict[str, str]:
    """The settings every stack of an evaluation gets from the shell's environment."""
    return {**ANSWERER, **{name: shell[name] for name in PASSED_THROUGH if shell.get(name, "").strip()}}


async def evaluate(docs: Path, qa: Path, modes: list[str], chat: bool, book: str, home: Path | None = None,
                   query_encoders: list[str] | None = None, embedders: list[str] | None = None,
                   reranks: list[str] | None = None, shell: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every configuration side by side: each embedder gets a fresh index of its own, and each
    reranking setting and query encoder its own stack on that index (the book is ingested once
    per embedder: the later ingests find nothing changed). Searches leave `rerank` unset, so each
    stack's default (LECTERN_RERANK) is what is measured, as chat uses it. ``shell`` is the
    environment the PASSED_THROUGH settings are taken from."""
    from cli.ingest import run_ingest

    items = load_qa(qa)
    encoders = query_encoders or [""]
    docs = docs.resolve()  # noqa: ASYNC240 - once, before any server starts
    reports: list[ModeReport] = []
    chats: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="lectern-eval-") as tmp:
        root = home or Path(tmp)
        for embedder in embedders or [""]:
            for rerank in reranks or [""]:
                for encoder in encoders:
                    environ = passed_through(shell or {})
                    if encoder:
                        environ["LECTERN_QUERY_ENCODER"] = encoder
                    if embedder:
                        environ["LECTERN_EMBEDDER"] = embedder
                    if rerank:
                        environ["LECTERN_RERANK"] = RERANK[rerank]
                    config = ModeReport("", {}, {}, query_encoder=encoder, embedder=embedder, rerank=rerank).config
                    async with local_stack(root / (embedder or "default"), (docs.parent, docs), environ) as stack:
                        summary = await run_ingest(stack.address("ingest"), ipb.IngestRequest(
                            source_dir=str(docs), book=book, base_url="/docs/"), show=sys.stderr.isatty())
                        console.print(f"ingested {summary.chunks_new + summary.chunks_unchanged} chunks from "
                                      f"{summary.files_seen} files in {summary.seconds:.1f} s {config}".rstrip())
                        async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=120) as client:
                            for mode in modes:
                                console.print(f"searching {len(items)} questions, mode {mode} {config}".rstrip())
                                report = await search_mode(client, items, mode, book)
                                reports.append(dataclasses.replace(report, query_encoder=encoder, embedder=embedder,
                                                                   rerank=rerank))
                            # Answers are judged with the first query encoder of each configuration.
                            if chat and encoder == encoders[0]:
                                console.print(f"answering {len(items)} questions {config}".rstrip())
                                chats.append({"config": config, **await chat_eval(client, items, book)})
    return {"docs": str(docs), "qa": str(qa), "questions": len(items),
            "modes": [{**dataclasses.asdict(r), "config": r.config} for r in reports],
            "chat": chats[0] if chats else None, "chats": chats, "markdown": markdown(reports, chats)}


T = TypeVar("T")
# A CI timeout or `kill` sends SIGTERM, a closed terminal SIGHUP: each stops an evaluation as Ctrl-C
# does, so the stacks it started (embedded Postgres above all) shut down instead of outliving it.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Stopped(Exception):
    """The evaluation was stopped by a signal; its stacks have shut down."""

    def __init__(self, sig: signal.Signals) -> None:
        super().__init__(f"stopped by {sig.name}")
        self.signal = sig


async def stoppable(main: Coroutine[Any, Any, T]) -> T:
    """Runs ``main``; a STOP_SIGNALS signal cancels it (its cleanup runs) and raises Stopped."""
    task = asyncio.ensure_future(main)
    loop = asyncio.get_running_loop()
    received: list[signal.Signals] = []

    def stop(sig: signal.Signals) -> None:
        received.append(sig)
        task.cancel()

    # A signal the shell set to be ignored (`nohup` ignores SIGHUP) stays ignored.
    handled = [sig for sig in STOP_SIGNALS if signal.getsignal(sig) is not signal.SIG_IGN]
    for sig in handled:
        loop.add_signal_handler(sig, stop, sig)
    try:
        return await task
    except asyncio.CancelledError:
        if received:
            raise Stopped(received[0]) from None
        raise
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)


def _names(csv: str) -> list[str]:
    return [m.strip() for m in csv.split(",") if m.strip()]


def eval_command(docs: str, qa: str, modes: str, chat: bool, book: str, out: str, min_recall5: float,
                 min_oos_accuracy: float, min_cited: float = 0.0, guard_mode: str = "hybrid",
                 query_encoders: str = "", embedders: str = "", reranks: str = "") -> int:
    try:
        result = asyncio.run(stoppable(evaluate(Path(docs), Path(qa), _names(modes), chat, book,
                                                query_encoders=_names(query_encoders), embedders=_names(embedders),
                                                reranks=_names(reranks), shell=os.environ)))
    except Stopped as stopped:
        console.print(f"evaluation {stopped}; its servers have shut down")
        return 128 + stopped.signal.value  # as a shell reports a process its signal ended
    print(result["markdown"])
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2))
        console.print(f"wrote {out}")
    failures = []
    # The guard judges the mode readers get by default; keyword alone cannot judge scope, by design.
    # The first configuration is the one the guard judges (the defaults, unless told otherwise).
    first = result["modes"][0]["config"] if result["modes"] else ""
    judged = [m for m in result["modes"] if m["mode"] == guard_mode and m["config"] == first]
    for m in judged or result["modes"]:
        if m["overall"].get("recall@5", 0) < min_recall5:
            failures.append(f"{m['mode']}: section recall@5 {m['overall'].get('recall@5', 0):.3f} < {min_recall5}")
        if m["overall"]["oos_accuracy"] < min_oos_accuracy:
            failures.append(f"{m['mode']}: out-of-scope accuracy {m['overall']['oos_accuracy']:.3f} "
                            f"< {min_oos_accuracy}")
    if result["chat"] and result["chat"]["cited_gold_in_first_two"] < min_cited:
        failures.append(f"chat: cited gold {result['chat']['cited_gold_in_first_two']:.3f} < {min_cited}")
    for f in failures:
        console.print(f"[red]quality guard failed[/red] {f}")
    return 1 if failures else 0
