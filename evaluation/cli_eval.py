"""`lectern eval`: ingest a corpus into a fresh index, run a QA set through the gateway, report."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
from lectern.ingest.v1 import ingest_service_pb2 as ipb
from rich.console import Console

from evaluation.qa import load_qa
from evaluation.report import markdown
from evaluation.runner import chat_eval, search_mode
from evaluation.stack import local_stack

console = Console(stderr=True)


async def evaluate(docs: Path, qa: Path, modes: list[str], chat: bool, book: str, home: Path | None = None
                   ) -> dict[str, Any]:
    from cli.ingest import run_ingest

    items = load_qa(qa)
    docs = docs.resolve()  # noqa: ASYNC240 - once, before any server starts
    with tempfile.TemporaryDirectory(prefix="lectern-eval-") as tmp:
        root = home or Path(tmp)
        async with local_stack(root, (docs.parent, docs)) as stack:
            summary = await run_ingest(stack.address("ingest"), ipb.IngestRequest(
                source_dir=str(docs), book=book, base_url="/docs/"), show=sys.stderr.isatty())
            console.print(f"ingested {summary.chunks_new + summary.chunks_unchanged} chunks from "
                          f"{summary.files_seen} files in {summary.seconds:.1f} s")
            async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as client:
                reports = []
                for mode in modes:
                    console.print(f"searching {len(items)} questions, mode {mode}")
                    reports.append(await search_mode(client, items, mode, book))
                chat_result = await chat_eval(client, items, book) if chat else None
    return {"docs": str(docs), "qa": str(qa), "questions": len(items),
            "modes": [dataclasses.asdict(r) for r in reports], "chat": chat_result,
            "markdown": markdown(reports, chat_result)}


def eval_command(docs: str, qa: str, modes: str, chat: bool, book: str, out: str, min_recall5: float,
                 min_oos_accuracy: float, min_cited: float = 0.0, guard_mode: str = "hybrid") -> int:
    result = asyncio.run(evaluate(Path(docs), Path(qa), [m.strip() for m in modes.split(",") if m.strip()],
                                  chat, book))
    print(result["markdown"])
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2))
        console.print(f"wrote {out}")
    failures = []
    # The guard judges the mode readers get by default; keyword alone cannot judge scope, by design.
    for m in [m for m in result["modes"] if m["mode"] == guard_mode] or result["modes"]:
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
