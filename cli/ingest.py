"""``lectern ingest``: streams an ingest through the ingest service with a progress bar."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

import grpc
from lectern.ingest.v1 import ingest_service_pb2 as ipb
from lectern.ingest.v1 import ingest_service_pb2_grpc as ipb_grpc
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from runtime.errors import InvalidArgument, LecternError
from runtime.settings import peer_addresses
from runtime.status import from_rpc_error

console = Console(stderr=True)


async def run_ingest(target: str, request: ipb.IngestRequest, show: bool = True) -> ipb.IngestSummary:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = ipb_grpc.IngestServiceStub(channel)
        summary = ipb.IngestSummary()
        with Progress(TextColumn("[bold]{task.fields[stage]}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.description}"), TimeElapsedColumn(), console=console, disable=not show,
                      transient=True) as progress:
            # One bar for reading the files, then one for embedding their chunks.
            files = progress.add_task("", total=None, stage="read")
            embedding: TaskID | None = None
            try:
                async for event in stub.Ingest(request, timeout=3600):
                    kind = event.WhichOneof("event")
                    if kind == "progress":
                        p = event.progress
                        progress.update(files, total=p.files_total, completed=p.files_done, description=p.file_path)
                    elif kind == "embedding":
                        e = event.embedding
                        if embedding is None:
                            embedding = progress.add_task("chunks", total=None, stage="embed")
                        progress.update(embedding, total=e.chunks_total, completed=e.chunks_embedded)
                    else:
                        summary = event.summary
            except grpc.aio.AioRpcError as exc:
                raise from_rpc_error(exc) from None
    return summary


def print_summary(s: ipb.IngestSummary) -> None:
    table = Table(title="ingest summary" + (" (dry run)" if s.dry_run else ""), show_header=False)
    for name, value in [
        ("files seen", s.files_seen), ("files skipped", s.files_skipped), ("files failed", len(s.failed)),
        ("chunks new", s.chunks_new), ("chunks changed", s.chunks_changed), ("chunks deleted", s.chunks_deleted),
        ("chunks unchanged", s.chunks_unchanged), ("chunks reused", s.chunks_reused),
        ("tokens embedded", s.tokens_embedded),
        ("seconds", f"{s.seconds:.2f}"), ("embedding seconds", f"{s.embed_seconds:.2f}"),
    ]:
        table.add_row(name, str(value))
    console.print(table)
    for f in s.failed:
        console.print(f"[red]failed[/red] {f.file_path}: {f.reason}")
    for warning in s.warnings:
        console.print(f"[yellow]warning[/yellow] {warning}")


def describe_error(exc: LecternError, request: ipb.IngestRequest) -> str:
    """The service's error for the console. Its field violations name ``source_dir`` or
    ``manifest``, not the folder: the absolute path that was sent is added, so a relative path
    typed on the command line shows resolved."""
    lines = [f"{exc.code}: {exc.message}"]
    paths = {"source_dir": request.source_dir, "manifest": request.manifest}
    fields = {v.field for v in exc.violations} if isinstance(exc, InvalidArgument) else set()
    lines += [f"  {field}: {paths[field]}" for field in paths if field in fields and paths[field]]
    return "\n".join(lines)


def ingest_command(directory: str, book: str, base_url: str, dry_run: bool, reindex: bool,
                   include_drafts: bool, route_base_path: str = "", trailing_slash: str = "",
                   manifest: str = "", last_version: str = "",
                   only_include_versions: Sequence[str] = ()) -> int:
    """``base_url``, ``route_base_path``, ``trailing_slash`` and ``manifest`` are "" when not given.
    Paths are sent resolved: the service may run in another working directory."""
    target = peer_addresses(os.environ)["ingest"]
    request = ipb.IngestRequest(source_dir=str(Path(directory).resolve()), book=book, base_url=base_url,
                                dry_run=dry_run, reindex=reindex, include_drafts=include_drafts,
                                route_base_path=route_base_path, trailing_slash=trailing_slash,
                                manifest=str(Path(manifest).resolve()) if manifest else "",
                                last_version=last_version, only_include_versions=only_include_versions)
    try:
        summary = asyncio.run(run_ingest(target, request))
    except LecternError as exc:
        console.print(describe_error(exc, request), style="red", highlight=False, markup=False, soft_wrap=True)
        return 1
    print_summary(summary)
    return 0
