"""Pushes of a book: plan against the copy last applied, receive the files that differ, apply.

On disk, under ``$LECTERN_HOME/pushes/<book key>/``:

- ``current`` — a symlink to ``mirror-<id>/``, the copy of the site the book was last built
  from, with ``mirror-<id>.json`` (each file's digest and size, the options) beside it;
- ``push-<id>/blobs/<sha256>`` — files received for an unfinished push, checked against their
  digests; ``push-<id>/tree/`` — the copy an apply reads: the mirror's unchanged files and
  the blobs, hard-linked (no copying), less the deleted files.

An apply runs the ordinary sync on ``tree``; only when it succeeded does ``current`` switch to
it (one rename of a symlink), so a push interrupted before that changes nothing readers see.
A killed client's blobs stay for ``keep_seconds``: a re-run's plan adopts them by digest and
does not ask for them again. One push per book at a time: a lease with its holder's name,
renewed by activity, lapsed after ``lease_seconds`` without any. An apply, once started, runs to
its end even if its caller goes (the sync writes before it deletes, so a server killed in the
middle of one leaves extra chunks at worst, and the re-run converges).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runtime.errors import Aborted, FailedPrecondition, InvalidArgument, LecternError, NotFound, Violations
from runtime.limits import BOOK_CHARS, URL_CHARS
from runtime.text import check_storable
from services.ingest.book.site import SiteOverrides, check_given_versions, parse_trailing_slash
from services.ingest.push.archive import ArchiveError, Begin, Data, End, TarReader, TooLarge
from services.ingest.push.limits import PushLimits
from services.ingest.push.paths import ContentCheck, digest_problem, path_problem
from services.ingest.sync import EmbedEvent, FileEvent, Ingestor, Summary, plan_job

log = logging.getLogger("lectern.ingest.push")

MAX_HOLDER_CHARS = 200
_WRITE_BLOCK = 256 * 1024

ApplyEvent = FileEvent | EmbedEvent | Summary


@dataclass(frozen=True)
class FileDigest:
    sha256: str
    size: int


@dataclass(frozen=True)
class PushOptions:
    """How the pushed copy is read (as an ingest's flags of the same names)."""

    base_url: str = ""
    route_base_path: str = ""
    trailing_slash: str = ""
    include_drafts: bool = False
    last_version: str = ""
    only_include_versions: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, stored: Mapping[str, Any]) -> PushOptions:
        """As a mirror's JSON keeps them (a copy pushed before an option existed lacks it)."""
        return cls(**{**stored, "only_include_versions": tuple(stored.get("only_include_versions", ()))})

    def site_overrides(self) -> SiteOverrides:
        """The values given for the site, as an ingest's flags of the same names give them."""
        return SiteOverrides(route_base_path=self.route_base_path or None,
                             trailing_slash=parse_trailing_slash(self.trailing_slash),
                             last_version=self.last_version or None,
                             only_include_versions=self.only_include_versions or None)


@dataclass(frozen=True)
class PlanRequest:
    book: str
    files: Mapping[str, FileDigest]
    dry_run: bool = False
    holder: str = ""
    options: PushOptions = PushOptions()


@dataclass(frozen=True)
class Plan:
    push_id: str
    added: list[str]
    changed: list[str]
    deleted: list[str]
    unchanged: int
    upload: list[str]
    upload_bytes: int
    up_to_date: bool


@dataclass(frozen=True)
class UploadResult:
    files_received: int
    bytes_received: int
    missing: list[str]


@dataclass
class _Push:
    id: str
    book: str
    holder: str
    since: datetime
    files: dict[str, FileDigest]
    options: PushOptions
    folder: Path
    wanted: dict[str, FileDigest]  # paths still to upload (one per missing digest)
    expires: float
    busy: str = ""  # "uploading" or "applying"


@dataclass
class _Mirror:
    tree: Path | None = None
    files: dict[str, FileDigest] = field(default_factory=dict)
    options: PushOptions | None = None


class PushStore:
    def __init__(self, home: Path, limits: PushLimits, ingestor: Ingestor,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.root = home / "pushes"
        self.limits = limits
        self.ingestor = ingestor
        self.clock = clock
        self._pushes: dict[str, _Push] = {}  # by book
        self._applies: set[asyncio.Task[None]] = set()

    # --- plan ------------------------------------------------------------------------------

    def plan(self, request: PlanRequest) -> Plan:
        _check_plan(request, self.limits)
        book = request.book
        mirror = self._mirror(book)
        held = mirror.files
        added = sorted(p for p in request.files if p not in held)
        changed = sorted(p for p, d in request.files.items() if p in held and held[p] != d)
        deleted = sorted(p for p in held if p not in request.files)
        unchanged = len(request.files) - len(added) - len(changed)
        up_to_date = not (added or changed or deleted) and mirror.options == request.options
        if request.dry_run or up_to_date:
            need = self._needed(request.files, held, added + changed, set())
            return Plan("", added, changed, deleted, unchanged, sorted(need),
                        sum(d.size for d in need.values()), up_to_date)
        self._take(book, request.holder)
        push_id = secrets.token_hex(8)
        folder = self._book_dir(book) / f"push-{push_id}"
        (folder / "blobs").mkdir(parents=True)
        adopted = self._adopt(book, folder, {request.files[p].sha256 for p in added + changed})
        wanted = self._needed(request.files, held, added + changed, adopted)
        self._pushes[book] = _Push(push_id, book, request.holder or "an unnamed client", datetime.now(UTC),
                                   dict(request.files), request.options, folder, wanted,
                                   self.clock() + self.limits.lease_seconds)
        log.info("push %s of book %r by %s: %d added, %d changed, %d deleted, %d to upload", push_id, book,
                 request.holder, len(added), len(changed), len(deleted), len(wanted))
        return Plan(push_id, added, changed, deleted, unchanged, sorted(wanted),
                    sum(d.size for d in wanted.values()), False)

    @staticmethod
    def _needed(files: Mapping[str, FileDigest], held: Mapping[str, FileDigest], paths: list[str],
                have: set[str]) -> dict[str, FileDigest]:
        """One path per digest the server has nowhere (a renamed or copied file costs nothing)."""
        have = have | {d.sha256 for d in held.values()}
        need: dict[str, FileDigest] = {}
        for path in paths:
            digest = files[path]
            if digest.sha256 not in have:
                have.add(digest.sha256)
                need[path] = digest
        return need

    def _take(self, book: str, holder: str) -> None:
        """The book's lease, or Aborted naming who holds it and until when."""
        current = self._pushes.get(book)
        if current is not None:
            left = current.expires - self.clock()
            if current.busy == "applying" or left > 0:
                until = "until its apply ends" if current.busy == "applying" else \
                    f"for up to {left:.0f} s more unless it goes on"
                raise Aborted(f"book {book!r} is being pushed by {current.holder} (push {current.id}, since "
                              f"{current.since:%Y-%m-%d %H:%M:%S} UTC); it holds the book {until}")
            del self._pushes[book]  # lapsed: its blobs stay for adoption
        self._sweep(book)

    def _adopt(self, book: str, folder: Path, digests: set[str]) -> set[str]:
        """Moves blobs an unfinished push of the book left (same digests) into ``folder``, then
        removes those pushes; only the holder of the lease calls this."""
        adopted: set[str] = set()
        for old in self._book_dir(book).glob("push-*"):
            if old == folder:
                continue
            for blob in (old / "blobs").glob("*"):
                if blob.name in digests and blob.name not in adopted:
                    os.replace(blob, folder / "blobs" / blob.name)
                    adopted.add(blob.name)
            shutil.rmtree(old, ignore_errors=True)
        return adopted

    # --- upload ----------------------------------------------------------------------------

    async def upload(self, book: str, push_id: str, encoding: str, chunks: AsyncIterator[bytes]) -> UploadResult:
        """Receives a tar archive of files the plan asked for. A file is kept only once its
        digest and content are checked; a refused archive ends the push and leaves nothing;
        a broken-off one (the caller went) keeps what was complete for a re-run."""
        push = self._live(book, push_id, "uploading")
        total = sum(d.size for d in push.wanted.values())
        reader = TarReader(encoding, self.limits.archive_bytes(len(push.wanted), total))
        received = 0
        sent = 0
        part = push.folder / "part"
        current: tuple[str, ContentCheck, int] | None = None
        handle = None
        try:
            async for chunk in chunks:
                sent += len(chunk)
                push.expires = self.clock() + self.limits.lease_seconds
                for event in reader.feed(chunk):
                    if isinstance(event, Begin):
                        expected = _expected(push, event)
                        current = (event.path, ContentCheck(event.path), expected.size)
                        handle = part.open("wb")
                    elif isinstance(event, Data):
                        assert current is not None and handle is not None
                        current[1].update(event.data)
                        handle.write(event.data)
                    elif isinstance(event, End):
                        assert current is not None and handle is not None
                        handle.close()
                        handle = None
                        _keep(push, current[0], current[1], part)
                        received += 1
                        current = None
        except (InvalidArgument, TooLarge):
            self._end(push, discard=True)
            raise
        except BaseException:  # the caller went (cancelled) or the disk failed: keep what is complete
            self._end(push, discard=False)
            raise
        try:
            reader.close()
        except ArchiveError:
            # Cut off: a client that went looks the same here (its stream just ends). What arrived
            # whole was checked, so it is kept for a re-run.
            self._end(push, discard=False)
            raise
        finally:
            if handle is not None:
                handle.close()
            part.unlink(missing_ok=True)
            push.busy = ""
        return UploadResult(received, sent, sorted(push.wanted))

    # --- apply -----------------------------------------------------------------------------

    def apply(self, book: str, push_id: str) -> AsyncIterator[ApplyEvent]:
        """Starts the apply (refusing at once what cannot start) and returns its events. The
        apply runs in its own task: a caller that stops reading does not stop it."""
        push = self._live(book, push_id, "applying")
        if push.wanted:
            push.busy = ""
            missing = sorted(push.wanted)
            raise FailedPrecondition(f"{len(missing)} file(s) of push {push_id} have not been uploaded yet: "
                                     + ", ".join(missing[:5]) + ("…" if len(missing) > 5 else ""))
        queue: asyncio.Queue[ApplyEvent | LecternError | BaseException | None] = asyncio.Queue()
        task = asyncio.create_task(self._apply(push, queue), name=f"push-{push_id}")
        self._applies.add(task)
        task.add_done_callback(self._applies.discard)
        return _drain(queue)

    async def _apply(self, push: _Push, queue: asyncio.Queue[ApplyEvent | LecternError | BaseException | None]) -> None:
        tree = push.folder / "tree"
        try:
            mirror = self._mirror(push.book)
            await asyncio.to_thread(_build_tree, tree, push, mirror)
            o = push.options
            job = await plan_job(str(tree), (tree,), push.book, o.base_url or None, o.site_overrides(),
                                 include_drafts=o.include_drafts)
            async for event in self.ingestor.run(job):
                if isinstance(event, Summary):
                    await asyncio.to_thread(self._switch, push, tree, mirror)
                    self._end(push, discard=True)
                queue.put_nowait(event)
        except BaseException as exc:
            log.warning("push %s of book %r failed to apply: %s", push.id, push.book, exc)
            shutil.rmtree(tree, ignore_errors=True)
            self._end(push, discard=False)
            queue.put_nowait(exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            queue.put_nowait(None)

    def _switch(self, push: _Push, tree: Path, mirror: _Mirror) -> None:
        """Makes ``tree`` the book's copy: renamed beside the others, then ``current`` swapped
        in one rename; the old copy is removed after."""
        book_dir = self._book_dir(push.book)
        new = book_dir / f"mirror-{push.id}"
        tree.rename(new)
        meta = {"book": push.book, "files": {p: [d.sha256, d.size] for p, d in push.files.items()},
                "options": asdict(push.options)}
        Path(f"{new}.json").write_text(json.dumps(meta))
        link = book_dir / f"current.{push.id}"
        link.unlink(missing_ok=True)
        link.symlink_to(new.name)
        os.replace(link, book_dir / "current")
        if mirror.tree is not None:
            shutil.rmtree(mirror.tree, ignore_errors=True)
            Path(f"{mirror.tree}.json").unlink(missing_ok=True)

    # --- state -----------------------------------------------------------------------------

    def _live(self, book: str, push_id: str, busy: str) -> _Push:
        push = self._pushes.get(book)
        if push is None or push.id != push_id or (push.expires < self.clock() and push.busy != "applying"):
            raise NotFound(f"push {push_id!r} of book {book!r} is not open (it ended, lapsed after "
                           f"{self.limits.lease_seconds:g} s without activity, or the server restarted); run the "
                           "push again: files already received are reused")
        if push.busy:
            raise Aborted(f"push {push_id} is already {push.busy}")
        push.busy = busy
        push.expires = self.clock() + self.limits.lease_seconds
        return push

    def _end(self, push: _Push, discard: bool) -> None:
        """Releases the book; ``discard`` (or nothing received) also removes the push's files."""
        if self._pushes.get(push.book) is push:
            del self._pushes[push.book]
        if discard or not any((push.folder / "blobs").iterdir()):
            shutil.rmtree(push.folder, ignore_errors=True)

    def _book_dir(self, book: str) -> Path:
        return book_folder(self.root, book)

    def _mirror(self, book: str) -> _Mirror:
        current = self._book_dir(book) / "current"
        try:
            tree = current.resolve(strict=True)
            meta = json.loads(Path(f"{tree}.json").read_text())
        except (OSError, ValueError):
            return _Mirror()
        files = {p: FileDigest(sha, size) for p, (sha, size) in meta["files"].items()}
        return _Mirror(tree, files, PushOptions.from_json(meta["options"]))

    def sweep(self) -> None:
        """Removes what no open push needs: pushes unfinished for ``keep_seconds``, and copies
        a crash left beside ``current``."""
        if self.root.is_dir():
            for book_dir in self.root.iterdir():
                self._sweep_dir(book_dir)

    def _sweep(self, book: str) -> None:
        self._sweep_dir(self._book_dir(book))

    def _sweep_dir(self, book_dir: Path) -> None:
        open_ = {p.folder for p in self._pushes.values()}
        try:
            current = (book_dir / "current").resolve(strict=True)
        except OSError:
            current = None
        now = time.time()
        for entry in book_dir.glob("*"):
            name = entry.name
            try:
                age = now - entry.lstat().st_mtime
            except OSError:
                continue
            stale_push = name.startswith("push-") and entry not in open_ and age > self.limits.keep_seconds
            stale_mirror = name.startswith("mirror-") and not name.endswith(".json") and entry != current and \
                not any(p.folder.name == f"push-{name[7:]}" for p in self._pushes.values())
            if stale_push or stale_mirror:
                shutil.rmtree(entry, ignore_errors=True)
                if stale_mirror:
                    Path(f"{entry}.json").unlink(missing_ok=True)
            elif name.startswith("current.") and entry.is_symlink():
                entry.unlink(missing_ok=True)

    async def close(self) -> None:
        for task in list(self._applies):
            task.cancel()
        for task in list(self._applies):
            with contextlib.suppress(BaseException):
                await task


def book_folder(root: Path, book: str) -> Path:
    """Where a book's pushes live under ``root`` (a hash: book names may hold any character)."""
    return root / hashlib.sha256(book.encode()).hexdigest()[:32]


async def _drain(queue: asyncio.Queue[ApplyEvent | LecternError | BaseException | None]) -> AsyncIterator[ApplyEvent]:
    while (item := await queue.get()) is not None:
        if isinstance(item, BaseException):
            raise item
        yield item


def _check_plan(request: PlanRequest, limits: PushLimits) -> None:
    v = Violations()
    if not request.book.strip() or len(request.book) > BOOK_CHARS:
        v.add("book", f"must be 1 to {BOOK_CHARS} characters")
    check_storable(v, "book", request.book)
    if len(request.holder) > MAX_HOLDER_CHARS:
        v.add("holder", f"must be at most {MAX_HOLDER_CHARS} characters")
    check_storable(v, "holder", request.holder)
    o = request.options
    if o.base_url and not o.base_url.startswith(("/", "http://", "https://")):
        v.add("options.base_url", "must start with / or http(s)://")
    for name, value in (("options.base_url", o.base_url), ("options.route_base_path", o.route_base_path)):
        if len(value) > URL_CHARS:
            v.add(name, f"must be at most {URL_CHARS} characters")
        check_storable(v, name, value)
    check_given_versions(v, "options.", o.last_version, o.only_include_versions)
    try:
        parse_trailing_slash(o.trailing_slash)
    except InvalidArgument as exc:
        v.items += [type(x)(f"options.{x.field}", x.description) for x in exc.violations]
    shown = 0
    folders: set[str] = set()
    for path, digest in request.files.items():
        problem = path_problem(path) or digest_problem(digest.sha256) or \
            (f"has a negative size ({digest.size})" if digest.size < 0 else None)
        if problem and shown < 20:  # enough to fix a client; the rest are alike
            v.add(f"files[{path!r}]" if len(path) < 200 else "files", problem)
            shown += 1
        parts = path.split("/")
        folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
    for path in sorted(folders & set(request.files))[:5]:
        v.add(f"files[{path!r}]", "is both a file and a folder of other files")
    v.raise_if_any()
    if len(request.files) > limits.max_files:
        raise TooLarge(f"the site has {len(request.files)} files; a push may hold at most {limits.max_files} "
                       "(LECTERN_PUSH_MAX_FILES)")
    big = [(p, d.size) for p, d in request.files.items() if d.size > limits.max_file_bytes]
    if big:
        path, size = max(big, key=lambda x: x[1])
        others = f"; {len(big) - 1} other file(s) are over it too" if len(big) > 1 else ""
        raise TooLarge(f"{path} is {size} bytes; a pushed file may be at most {limits.max_file_bytes} "
                       f"(LECTERN_PUSH_MAX_FILE_BYTES){others}")
    total = sum(d.size for d in request.files.values())
    if total > limits.max_total_bytes:
        raise TooLarge(f"the site is {total} bytes; a push may hold at most {limits.max_total_bytes} "
                       "(LECTERN_PUSH_MAX_TOTAL_BYTES)")


def _expected(push: _Push, begin: Begin) -> FileDigest:
    problem = path_problem(begin.path)
    if problem:
        raise InvalidArgument.of("archive", f"entry {begin.path!r} {problem}")
    expected = push.wanted.get(begin.path)
    if expected is None:
        raise InvalidArgument.of("archive", f"{begin.path} was not asked for by the plan (or was sent twice)")
    if begin.size != expected.size:
        raise InvalidArgument.of("archive", f"{begin.path} is {begin.size} bytes; the plan said {expected.size}")
    return expected


def _keep(push: _Push, path: str, check: ContentCheck, part: Path) -> None:
    """A received file whose digest and content pass becomes a blob; anything else ends the push."""
    digest, problem = check.finish()
    expected = push.wanted[path]
    if digest != expected.sha256:
        raise InvalidArgument.of("archive", f"{path}: its bytes have SHA-256 {digest}, not the {expected.sha256} "
                                 "the plan said")
    if problem:
        raise InvalidArgument.of("archive", f"{path} {problem}")
    os.replace(part, push.folder / "blobs" / digest)
    del push.wanted[path]


def _build_tree(tree: Path, push: _Push, mirror: _Mirror) -> None:
    """The copy to apply: each file hard-linked from a blob or from the mirror (by digest)."""
    shutil.rmtree(tree, ignore_errors=True)
    by_digest = {d.sha256: mirror.tree / p for p, d in mirror.files.items()} if mirror.tree else {}
    blobs = push.folder / "blobs"
    for path, digest in push.files.items():
        source = blobs / digest.sha256
        if not source.exists():
            source = by_digest[digest.sha256]  # the plan asked for every digest the mirror lacks
        target = tree / path
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:  # a file system without hard links
            shutil.copyfile(source, target)
