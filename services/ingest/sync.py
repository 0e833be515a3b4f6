"""Exact sync of a book into the index: incremental, or a re-index beside the served version.

Both read every page and compare chunk ids and content hashes with what the index holds, and
embed only new and changed chunks.

An incremental sync writes into the version readers use: the new and changed chunks first,
then it deletes what is gone. A sync that stops part-way therefore leaves extra chunks at
worst (readers may meet old and new side by side until it ends), never missing ones, and the
next run converges. A file that fails to parse keeps its old chunks: nothing is lost.

A re-index (also how the embedder is switched) writes and deletes only in a staged version of
the book, which no reader sees, then commits it: readers switch to it in one step and the old
version is dropped whole. It needs no write-before-delete: one that stops before the commit
leaves the served version untouched, and the next one resumes the staged version (with the
same embedder) and embeds only what it does not already hold. The new version is built from
the files alone, so a file that fails to parse has no chunks in it: the re-index reports it
as failed, and its old chunks go with the old version.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from embedding.base import Embedder, EmbedderSpec
from embedding.tokens import count_tokens
from records.chunk import Chunk
from records.outline import EditionOutline
from runtime.errors import Aborted, FailedPrecondition, InvalidArgument, LecternError, PermissionDenied
from runtime.text import UNSTORABLE_DESCRIPTION, unstorable
from services.ingest.book.chunker import Budget
from services.ingest.book.discovery import SourceFile, discover
from services.ingest.book.editions import DOCS_FOLDER_ROUTES, DocsSource, plan_source
from services.ingest.book.manifest import MANIFEST_FILE, apply_manifest, load_manifest
from services.ingest.book.outline import PageFacts, build_outline
from services.ingest.book.pages import PageResult, read_page
from services.ingest.book.site import SiteOverrides
from services.ingest.book.slugs import RouteOptions
from services.ingest.index_client import IndexedDigest

EMBED_BATCH = 64
DELETE_BATCH = 1000


class Index(Protocol):
    """The index operations ingest needs; ``generation`` 0 is the served version of the book,
    any other a staged one from ``stage``."""

    async def digests(self, book: str, generation: int = 0) -> tuple[list[IndexedDigest], EmbedderSpec | None]: ...
    async def upsert(self, book: str, embedder: EmbedderSpec, chunks: Sequence[Chunk],
                     vectors: Sequence[Sequence[float]], generation: int = 0) -> None: ...
    async def delete(self, book: str, chunk_ids: Sequence[str], generation: int = 0) -> None: ...
    async def stage(self, book: str, embedder: EmbedderSpec) -> tuple[int, bool]:
        """(generation, resumed) of a staged version of the book to re-index into."""
        ...
    async def commit(self, book: str, generation: int) -> None: ...
    async def put_outlines(self, book: str, outlines: Sequence[EditionOutline]) -> None:
        """Replaces the book's outlines (one per version and locale)."""
        ...


@dataclass(frozen=True)
class IngestJob:
    source_dir: Path
    book: str = "default"
    routes: RouteOptions = DOCS_FOLDER_ROUTES
    dry_run: bool = False
    reindex: bool = False
    include_drafts: bool = False
    # A site root's versions and locales (from `plan_job`); empty: source_dir is a docs folder
    # served by `routes`.
    sources: tuple[DocsSource, ...] = ()
    warnings: tuple[str, ...] = ()
    # The site's build manifest (docusaurus-plugin-lectern): routes and anchors as built.
    manifest: Path | None = None

    def all_sources(self) -> tuple[DocsSource, ...]:
        return self.sources or (DocsSource(self.source_dir, self.routes),)


@dataclass(frozen=True)
class FileEvent:
    file_path: str
    status: str  # "ingested", "skipped" or "failed"
    reason: str
    chunks: int
    files_done: int
    files_total: int


@dataclass(frozen=True)
class EmbedEvent:
    chunks_embedded: int
    chunks_total: int


@dataclass
class Summary:
    files_seen: int = 0
    files_skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    chunks_new: int = 0
    chunks_changed: int = 0
    chunks_deleted: int = 0
    chunks_unchanged: int = 0
    tokens_embedded: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0
    dry_run: bool = False
    chunks_reused: int = 0
    warnings: list[str] = field(default_factory=list)


def resolve_source(source_dir: str, roots: Sequence[Path]) -> Path:
    """The docs folder, if it lies under an allowed root; callers never read elsewhere."""
    if not source_dir.strip():
        raise InvalidArgument.of("source_dir", "must not be empty")
    if unstorable(source_dir):  # os refuses NUL with a ValueError of its own
        raise InvalidArgument.of("source_dir", UNSTORABLE_DESCRIPTION)
    path = _inside_roots(source_dir, roots)
    try:
        is_dir = path.is_dir()
    except OSError as exc:  # a name too long, a folder we may not enter
        raise InvalidArgument.of("source_dir", f"cannot be read ({exc.strerror})") from None
    if not is_dir:
        raise InvalidArgument.of("source_dir", "is not a folder")
    return path


def _inside_roots(value: str, roots: Sequence[Path]) -> Path:
    path = Path(value).expanduser().resolve()
    allowed = [r.resolve() for r in roots]
    if not any(path == r or r in path.parents for r in allowed):
        raise PermissionDenied(f"{value} is outside LECTERN_INGEST_ROOTS")
    return path


def resolve_manifest(manifest: str, roots: Sequence[Path]) -> Path | None:
    """The build manifest (a build folder or the file itself) under an allowed root, or None."""
    if not manifest:
        return None
    if unstorable(manifest):
        raise InvalidArgument.of("manifest", UNSTORABLE_DESCRIPTION)
    path = _inside_roots(manifest, roots)
    try:
        found = path.is_file() or (path / MANIFEST_FILE).is_file()
    except OSError as exc:
        raise InvalidArgument.of("manifest", f"cannot be read ({exc.strerror})") from None
    if not found:
        raise InvalidArgument.of("manifest", f"is neither {MANIFEST_FILE} nor a build folder holding one")
    return path


async def plan_job(source_dir: str, roots: Sequence[Path], book: str = "default", base_url: str | None = None,
                   overrides: SiteOverrides | None = None, dry_run: bool = False, reindex: bool = False,
                   include_drafts: bool = False, manifest: str = "") -> IngestJob:
    """The job for ``source_dir``: a docs folder, or a site root with its config read (off
    the event loop). A config value that decides routes and cannot be read is an
    InvalidArgument naming the flag that gives it."""
    path = resolve_source(source_dir, roots)
    plan = await asyncio.to_thread(plan_source, path, base_url, overrides, roots)
    return IngestJob(path, book, plan.sources[0].routes, dry_run, reindex, include_drafts, plan.sources,
                     plan.warnings, resolve_manifest(manifest, roots))


def _pages(source: DocsSource) -> tuple[list[SourceFile], list[str]]:
    """The page files of a source, and the translations Docusaurus never builds (no original)."""
    originals = discover(source.docs_dir, source.include, source.exclude)
    if source.translated_dir is None:
        return originals, []
    translated = {f.rel: f for f in discover(source.translated_dir, source.include, source.exclude)}
    wanted = {f.rel for f in originals}
    return [translated[f.rel] for f in originals if f.rel in translated], sorted(set(translated) - wanted)


@dataclass
class PagesRead:
    """What reading a job's pages gave: its chunks, the files that failed to parse, and each
    source's page facts for its outline (by the source's place in the job)."""

    chunks: list[Chunk] = field(default_factory=list)
    # Stored chunks know their file's path within its version, not the version: a failed file
    # protects the chunks of that path in every version and locale (keeps, never loses).
    failed_files: set[str] = field(default_factory=set)
    facts: dict[int, list[PageFacts]] = field(default_factory=dict)


@dataclass(frozen=True)
class WritePlan:
    todo: list[Chunk]
    """New and changed chunks, to embed and upsert."""
    stale: list[str]
    """Ids of chunks gone from the book, to delete."""
    generation: int
    """0 for the served version, else the staged one a re-index writes."""


async def _checked_against_manifest(manifest: Path, chunks: list[Chunk], summary: Summary) -> list[Chunk]:
    """The chunks with the built site's anchors; a warning names the ones it lacks."""
    built = await asyncio.to_thread(load_manifest, manifest)
    checked, lacking = apply_manifest(built, chunks)
    if lacking:
        summary.warnings.append(
            f"{len(lacking)} chunk(s) cite an anchor the built site lacks: "
            + ", ".join(c.url for c in lacking[:5]) + ("…" if len(lacking) > 5 else ""))
    return checked


class Ingestor:
    """Runs ingest jobs; one at a time per book."""

    def __init__(self, index: Index, embedder: Embedder, max_tokens: int = 512) -> None:
        self.index = index
        self.embedder = embedder
        self.budget = Budget(count_tokens, max_tokens, embedder.count_tokens, embedder.spec.max_input_tokens)
        self._running: set[str] = set()

    async def run(self, job: IngestJob) -> AsyncIterator[FileEvent | EmbedEvent | Summary]:
        if job.book in self._running:
            raise Aborted(f"an ingest of book {job.book!r} is already running; try again when it ends")
        self._running.add(job.book)
        try:
            async for event in self._run(job):
                yield event
        finally:
            self._running.discard(job.book)

    async def _run(self, job: IngestJob) -> AsyncIterator[FileEvent | EmbedEvent | Summary]:
        """Reads every page, plans the difference with the index, then writes it (unless a dry run)."""
        started = time.perf_counter()
        summary = Summary(dry_run=job.dry_run, warnings=list(job.warnings))
        sources = list(job.all_sources())
        pages = PagesRead()
        async for event in self._read_pages(job, sources, pages, summary):
            yield event
        if job.manifest is not None:
            pages.chunks = await _checked_against_manifest(job.manifest, pages.chunks, summary)
        plan = await self._plan(job, pages, summary)
        if not job.dry_run:
            async for progress in self._write(job.book, plan, summary):
                yield progress
            if job.reindex:
                await self.index.commit(job.book, plan.generation)
            await self._put_outlines(job.book, sources, pages.facts, summary)
        summary.seconds = time.perf_counter() - started
        yield summary

    async def _read_pages(self, job: IngestJob, sources: Sequence[DocsSource], pages: PagesRead,
                          summary: Summary) -> AsyncIterator[FileEvent]:
        """Chunks every page of every source into `pages`, one event per file."""
        work: list[tuple[int, SourceFile]] = []
        for place, source in enumerate(sources):
            files, orphans = await asyncio.to_thread(_pages, source)
            work += [(place, f) for f in files]
            if orphans:
                summary.warnings.append(
                    f"{len(orphans)} page(s) in {source.label} have no original in the version's docs folder, so "
                    f"Docusaurus does not build them; not ingested: {', '.join(orphans[:5])}"
                    + ("…" if len(orphans) > 5 else ""))
        summary.files_seen = len(work)
        for done, (place, file) in enumerate(work, start=1):
            source = sources[place]
            result: PageResult = await asyncio.to_thread(
                read_page, file, job.book, "", self.budget, job.include_drafts, source.routes, source.edition,
                source.edit_base, source.markdown,
            )
            shown = f"{source.label}/{file.rel}" if source.label else file.rel
            summary.warnings += [f"{shown}: {note}" for note in result.notes]
            if result.failed:
                summary.failed.append((shown, result.failed))
                pages.failed_files.add(file.rel)
                status, reason = "failed", result.failed
            elif result.skipped:
                summary.files_skipped += 1
                status, reason = "skipped", result.skipped
            else:
                status, reason = "ingested", ""
            pages.chunks += result.chunks
            if result.chunks:
                pages.facts.setdefault(place, []).append(PageFacts(file.rel, result.frontmatter, result.chunks))
            yield FileEvent(shown, status, reason, len(result.chunks), done, len(work))

    async def _plan(self, job: IngestJob, pages: PagesRead, summary: Summary) -> WritePlan:
        """What to embed and delete, against the served version (a sync) or a staged one (a
        re-index, which stages it here and resumes one an earlier run left)."""
        served, built_by = await self.index.digests(job.book)
        spec = self.embedder.spec
        if built_by is not None and built_by.name != spec.name and not job.reindex:
            raise FailedPrecondition(
                f"book {job.book!r} was indexed with {built_by.name} ({built_by.dimension} dims) but this "
                f"ingest embeds with {spec.name} ({spec.dimension} dims); run again with --reindex"
            )
        wanted = {c.chunk_id: c for c in pages.chunks}
        generation = 0
        if job.reindex:
            staged: list[IndexedDigest] = []
            if not job.dry_run:
                generation, resumed = await self.index.stage(job.book, spec)
                if resumed:
                    staged, _ = await self.index.digests(job.book, generation)
            todo, stale = _difference(wanted, staged, failed_files=set())
            summary.chunks_reused = len(wanted) - len(todo)
            summary.chunks_deleted = sum(1 for d in served if d.chunk_id not in wanted)
        else:
            todo, stale = _difference(wanted, served, pages.failed_files)
            summary.chunks_deleted = len(stale)
        _count_changes(summary, wanted.values(), served)
        return WritePlan(todo, stale, generation)

    async def _write(self, book: str, plan: WritePlan, summary: Summary) -> AsyncIterator[EmbedEvent]:
        """Embeds and upserts the new and changed chunks, then deletes the stale ones (write
        before delete: a sync that stops part-way loses nothing)."""
        spec = self.embedder.spec
        yield EmbedEvent(0, len(plan.todo))
        for start in range(0, len(plan.todo), EMBED_BATCH):
            batch = plan.todo[start:start + EMBED_BATCH]
            t0 = time.perf_counter()
            vectors = await self.embedder.embed_documents([c.embed_text for c in batch])
            summary.embed_seconds += time.perf_counter() - t0
            summary.tokens_embedded += sum(c.token_count for c in batch)
            await self.index.upsert(book, spec, batch, vectors, plan.generation)
            yield EmbedEvent(start + len(batch), len(plan.todo))
        for start in range(0, len(plan.stale), DELETE_BATCH):
            await self.index.delete(book, plan.stale[start:start + DELETE_BATCH], plan.generation)

    async def _put_outlines(self, book: str, sources: Sequence[DocsSource], facts: dict[int, list[PageFacts]],
                            summary: Summary) -> None:
        """Stores the book's sidebar outlines after its chunks; a failure costs the outline (readers
        fall back to file order), never the ingest."""
        outlines = [await asyncio.to_thread(build_outline, facts.get(i, []), s.edition, s.docs_dir,
                                            s.routes.number_prefixes, s.sidebar, summary.warnings, s.navbar,
                                            s.routes)
                    for i, s in enumerate(sources)]
        try:
            await self.index.put_outlines(book, outlines)
        except LecternError as exc:
            summary.warnings.append(f"the book's outline was not stored: {exc.message}")


def _difference(wanted: dict[str, Chunk], held: Sequence[IndexedDigest],
                failed_files: set[str]) -> tuple[list[Chunk], list[str]]:
    """The chunks to embed (not held, or held with other content) and the held ids to delete
    (gone from the book, unless their file failed to parse this time)."""
    by_id = {d.chunk_id: d for d in held}
    todo = [c for c in wanted.values() if c.chunk_id not in by_id or by_id[c.chunk_id].content_hash != c.content_hash]
    stale = [d.chunk_id for d in held if d.chunk_id not in wanted and d.file_path not in failed_files]
    return todo, stale


def _count_changes(summary: Summary, chunks: Iterable[Chunk], served: Sequence[IndexedDigest]) -> None:
    """New, changed and unchanged chunks of the book, against its served version."""
    hashes = {d.chunk_id: d.content_hash for d in served}
    for c in chunks:
        if c.chunk_id not in hashes:
            summary.chunks_new += 1
        elif hashes[c.chunk_id] != c.content_hash:
            summary.chunks_changed += 1
        else:
            summary.chunks_unchanged += 1
