"""``lectern push SITE_DIR --url URL --book NAME``: syncs a local site to a remote Lectern over
HTTP, sending only the files that differ from the copy the book was last built from.

Exit codes (for CI): 0 pushed (or already up to date, or a dry run); 1 the push ran but some
files failed to ingest, or it could not finish (another push holds the book, the server or
network failed); 2 usage or auth (bad flags, no site at SITE_DIR, LECTERN_ADMIN_TOKEN missing or
wrong, the site refused as invalid or over the server's limits).
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gateway.settings import ADMIN_TOKEN
from runtime.errors import InvalidArgument
from services.ingest.push.archive import END_OF_ARCHIVE, entry_header, padding
from services.ingest.push.files import LocalFile, file_digest, site_files
from services.ingest.push.store import PushOptions

OK, FAILED, USAGE = 0, 1, 2
TOKEN_VARIABLE = ADMIN_TOKEN.name
READ_BLOCK = 256 * 1024
console = Console(stderr=True)


class PushError(Exception):
    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Report:
    """What the push did; printed as JSON with --json."""

    book: str
    files: int = 0
    plan: dict[str, Any] = field(default_factory=dict)
    uploaded_files: int = 0
    bytes_sent: int = 0  # request bodies: the plan and the archive
    summary: dict[str, Any] | None = None
    seconds: float = 0.0
    error: str = ""


def holder() -> str:
    """Who pushes, for a second pusher's 409: user@host, and the CI job when there is one."""
    try:
        who = f"{getpass.getuser()}@{socket.gethostname()}"
    except (KeyError, OSError):
        who = socket.gethostname()
    if os.environ.get("GITHUB_RUN_ID"):
        who += f" (GitHub Actions {os.environ.get('GITHUB_REPOSITORY', '')} run {os.environ['GITHUB_RUN_ID']})"
    elif os.environ.get("CI_JOB_URL"):
        who += f" (GitLab CI {os.environ['CI_JOB_URL']})"
    return who[:200]


def _fail(reply: httpx.Response) -> PushError:
    try:
        error = reply.json()["error"]
        message = f"{error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        message = f"HTTP {reply.status_code}: {reply.text[:200]}"
    usage = reply.status_code in (400, 401, 403, 404, 413, 415)
    hint = f" (is {TOKEN_VARIABLE} the server's admin token?)" if reply.status_code in (401, 403) else ""
    return PushError(USAGE if usage else FAILED, message + hint)


def archive(files: list[LocalFile], sizes: dict[str, int], sent: list[int], progress: Progress | None,
            task: Any) -> Iterator[bytes]:
    """The files as a gzip-compressed tar stream, read and sent a block at a time."""
    deflate = zlib.compressobj(6, zlib.DEFLATED, 31)

    def out(data: bytes) -> bytes:
        packed = deflate.compress(data)
        sent[0] += len(packed)
        return packed

    for f in files:
        yield out(entry_header(f.path, sizes[f.path]))
        done = 0
        with f.source.open("rb") as handle:
            while done < sizes[f.path] and (block := handle.read(min(READ_BLOCK, sizes[f.path] - done))):
                done += len(block)
                if progress is not None:
                    progress.advance(task, len(block))
                yield out(block)
        if done != sizes[f.path]:
            raise PushError(FAILED, f"{f.source} changed while it was being pushed; run the push again")
        yield out(padding(done))
    tail = deflate.compress(END_OF_ARCHIVE) + deflate.flush()
    sent[0] += len(tail)
    yield tail


def run_push(site_dir: Path, url: str, book: str, token: str, *, dry_run: bool = False, yes: bool = False,
             options: dict[str, Any] | None = None, show: bool = True, client: httpx.Client | None = None,
             report: Report | None = None) -> Report:
    started = time.perf_counter()
    report = report or Report(book)
    options = options or {}
    try:
        files = site_files(site_dir, options.get("base_url") or None, PushOptions.from_json(options).site_overrides())
    except InvalidArgument as exc:
        raise PushError(USAGE, exc.message) from None
    if not files:
        raise PushError(USAGE, f"{site_dir.resolve()} has no pages to push")
    digests = {f.path: file_digest(f.source) for f in files}
    report.files = len(files)
    base = f"{url.rstrip('/')}/v1/books/{quote(book, safe='')}"
    own = client is None
    http = client or httpx.Client(timeout=httpx.Timeout(60.0, read=600.0))
    http.headers["Authorization"] = f"Bearer {token}"
    try:
        def plan(dry: bool) -> dict[str, Any]:
            body = json.dumps({"files": [{"path": p, "sha256": d, "size": s} for p, (d, s) in digests.items()],
                               "dry_run": dry, "holder": holder(), **options}).encode()
            report.bytes_sent += len(body)
            reply = http.post(f"{base}/sync", content=body, headers={"Content-Type": "application/json"})
            if reply.status_code != 200:
                raise _fail(reply)
            answer: dict[str, Any] = reply.json()
            return answer

        if dry_run or not yes:
            report.plan = plan(True)
            if dry_run or report.plan["up_to_date"]:
                return report
            if report.plan["deleted"] and not _confirm(report.plan["deleted"]):
                raise PushError(USAGE, f"the push would delete {len(report.plan['deleted'])} page(s) from book "
                                f"{book!r}; run again with --yes to allow it")
        report.plan = plan(False)
        if report.plan["up_to_date"]:
            return report
        push_url = f"{base}/pushes/{report.plan['push_id']}"
        wanted = set(report.plan["upload"])
        to_send = [f for f in files if f.path in wanted]
        sizes = {p: digests[p][1] for p in wanted}
        with _progress(show) as progress:
            if to_send:
                task = progress.add_task("upload", total=sum(sizes.values()), stage="upload")
                sent = [0]
                reply = http.put(f"{push_url}/archive", content=archive(to_send, sizes, sent, progress, task),
                                 headers={"Content-Type": "application/x-tar", "Content-Encoding": "gzip"})
                report.bytes_sent += sent[0]
                if reply.status_code != 200:
                    raise _fail(reply)
                report.uploaded_files = reply.json()["files_received"]
            report.summary = _apply(http, push_url, progress)
        return report
    except httpx.HTTPError as exc:
        raise PushError(FAILED, f"cannot reach {url}: {exc}") from None
    finally:
        report.seconds = time.perf_counter() - started
        if own:
            http.close()


def _apply(http: httpx.Client, push_url: str, progress: Progress) -> dict[str, Any]:
    files = progress.add_task("", total=None, stage="read")
    embed = None
    summary: dict[str, Any] | None = None
    with http.stream("POST", f"{push_url}/apply", headers={"Accept": "text/event-stream"}) as reply:
        if reply.status_code != 200:
            reply.read()
            raise _fail(reply)
        event = ""
        for line in reply.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
                if event == "progress":
                    progress.update(files, total=data["files_total"], completed=data["files_done"],
                                    description=data["file_path"])
                elif event == "embedding":
                    if embed is None:
                        embed = progress.add_task("chunks", total=None, stage="embed")
                    progress.update(embed, total=data["chunks_total"], completed=data["chunks_embedded"])
                elif event == "summary":
                    summary = data
                elif event == "error":
                    raise PushError(FAILED, f"{data['code']}: {data['message']}")
    if summary is None:
        raise PushError(FAILED, "the server ended the apply without a summary; run the push again")
    return summary


def _progress(show: bool) -> Progress:
    return Progress(TextColumn("[bold]{task.fields[stage]}"), BarColumn(), MofNCompleteColumn(),
                    DownloadColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                    disable=not show, transient=True)


def _confirm(deleted: list[str]) -> bool:
    if not sys.stdin.isatty():
        return False
    console.print(f"The push deletes {len(deleted)} page(s): {', '.join(deleted[:10])}"
                  + ("…" if len(deleted) > 10 else ""))
    return console.input("Go on? [y/N] ").strip().lower() in ("y", "yes")


def push_command(site_dir: str, url: str, book: str, dry_run: bool, as_json: bool, yes: bool,
                 options: dict[str, Any]) -> int:
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    report = Report(book)
    code = OK
    site = Path(site_dir).resolve()  # errors name the folder as an absolute path
    if not token:
        report.error, code = f"set {TOKEN_VARIABLE} to the server's admin token", USAGE
    elif not site.is_dir():
        report.error, code = f"{site} is not a folder", USAGE
    else:
        try:
            run_push(site, url, book, token, dry_run=dry_run, yes=yes, options=options,
                     show=not as_json and console.is_terminal, report=report)
        except PushError as exc:
            report.error, code = str(exc), exc.exit_code
    if report.summary and report.summary["files_failed"]:
        code = FAILED
    if as_json:
        print(json.dumps({**report.__dict__, "exit_code": code}, indent=2))
    else:
        _print(report, dry_run)
    return code


def _print(report: Report, dry_run: bool) -> None:
    plan = report.plan
    if plan:
        console.print(f"book {report.book!r}: {len(plan['added'])} added, {len(plan['changed'])} changed, "
                      f"{len(plan['deleted'])} deleted, {plan['unchanged']} unchanged"
                      + (" (dry run)" if dry_run else ""))
        if dry_run:
            for kind in ("added", "changed", "deleted"):
                for path in plan[kind]:
                    console.print(f"  {kind:8} {path}")
        elif plan["up_to_date"]:
            console.print("already up to date; nothing sent")
    if report.summary:
        s = report.summary
        console.print(f"sent {report.uploaded_files} file(s), {report.bytes_sent} bytes; chunks: {s['chunks_new']} "
                      f"new, {s['chunks_changed']} changed, {s['chunks_deleted']} deleted, "
                      f"{s['chunks_unchanged']} unchanged; {report.seconds:.1f} s")
        for failed in s["files_failed"]:
            console.print(f"[red]failed[/red] {failed['file_path']}: {failed['reason']}")
        for warning in s["warnings"]:
            console.print(f"[yellow]warning[/yellow] {warning}")
    if report.error:
        console.print(f"error: {report.error}", style="red", markup=False, highlight=False, soft_wrap=True)
