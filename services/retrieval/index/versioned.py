"""Versioned books: a re-index builds the new version of a book beside the one readers see,
and switches to it in one step when it is complete.

A backend keeps its stores on a shelf (Edge folders, Qdrant collections, pgvector tables).
The shared store, named after the collection, holds every book that was never re-indexed
(so books indexed before versions existed are served as they are, with no migration). A
re-index opens a store labelled (book, generation, staging), writes the whole book into it
and commits by relabelling it serving: one atomic write to the backend. Readers are sent to
it from then on, and the version it replaces is removed once no search still reads it.

The labels live in the stores themselves, so the catalog is read back from the backend
alone after a restart or a crash: a staged version is resumed by the next re-index with the
same embedder (what it already holds is reused where the content hash matches), a version
that a commit replaced is removed, and a commit that stopped before clearing the book out of
the shared store is finished.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Protocol

from embedding.base import EmbedderSpec
from records.chunk import Chunk
from runtime.errors import FailedPrecondition
from services.retrieval.index.base import (
    SERVING,
    STAGING,
    Digest,
    Filter,
    Fused,
    FusingIndex,
    Hit,
    IndexRecord,
    IndexStats,
    Label,
    Result,
    Staged,
    Store,
    View,
    embedder_mismatch,
    same_vectors,
)

log = logging.getLogger("lectern.retrieval.versions")

VERSION_MARK = "--v"
"""A version's store is named <collection>--v<generation>."""
RETIRE_WAIT_SECONDS = 30.0
"""How long a commit waits for searches still reading the replaced version (they take ms)."""


class Shelf(Protocol):
    """Where a backend keeps its stores, side by side."""

    backend: str
    collection: str
    replicated: bool
    """Whether other retrieval processes may use the same stores (a server, not an embedded store)."""

    async def open(self, name: str) -> Store:
        """The store of that name, empty if the backend holds none."""
        ...

    async def names(self, prefix: str) -> list[str]:
        """Names of the stores the backend holds that start with ``prefix``."""
        ...

    async def close(self) -> None:
        """Releases what the stores share (threads, a client, a pool), after they are closed."""
        ...


def version_name(collection: str, generation: int) -> str:
    return f"{collection}{VERSION_MARK}{generation}"


class VersionedIndex:
    """The VectorIndex retrieval serves: books on a shelf, each read from its serving version."""

    def __init__(self, shelf: Shelf) -> None:
        self.shelf = shelf
        self.backend = shelf.backend
        self.collection = shelf.collection
        self._shared: Store | None = None
        self._serving: dict[str, tuple[int, Store]] = {}
        self._staging: dict[str, tuple[int, Store]] = {}
        self._next_generation = 1
        self._readers: dict[Store, set[asyncio.Event]] = {}
        """The searches reading each store now, each set when it ends (see _drain)."""
        self._load_lock = asyncio.Lock()
        self._book_locks: dict[str, asyncio.Lock] = {}
        self.closed = False

    # -- the catalog ---------------------------------------------------------------------

    async def _load(self) -> Store:
        """Reads the versions back from the backend, once (and again after a failure)."""
        if self._shared is not None:
            return self._shared
        async with self._load_lock:
            if self._shared is not None:
                return self._shared
            prefix = self.collection + VERSION_MARK
            versions: list[tuple[Label, Store]] = []
            top = 0
            for name in await self.shelf.names(prefix):
                if not name[len(prefix):].isdigit():
                    continue  # not one of ours
                top = max(top, int(name[len(prefix):]))
                store = await self.shelf.open(name)
                label = await store.label()
                if label is None:  # its creation never finished
                    await store.drop()
                    continue
                versions.append((label, store))
            serving: dict[str, tuple[int, Store]] = {}
            staging: dict[str, tuple[int, Store]] = {}
            for label, store in sorted(versions, key=lambda v: v[0].generation):
                slot = serving if label.state == SERVING else staging
                replaced = slot.get(label.book)
                slot[label.book] = (label.generation, store)
                if replaced is not None:  # a commit or a new stage stopped before removing it
                    log.info("removing a replaced version", extra={"book": label.book, "generation": replaced[0]})
                    await replaced[1].drop()
            for book, (generation, store) in list(staging.items()):
                if book in serving and serving[book][0] > generation:
                    del staging[book]
                    await store.drop()
            shared = await self.shelf.open(self.collection)
            for book in serving:  # a commit that stopped before clearing the shared store
                await shared.delete_book(book)
            self._serving, self._staging, self._next_generation = serving, staging, top + 1
            self._shared = shared
            return shared

    def _lock(self, book: str) -> asyncio.Lock:
        return self._book_locks.setdefault(book, asyncio.Lock())

    async def _target(self, book: str, generation: int) -> Store:
        """Where a write or a listing goes: the staged version asked for, or the serving one."""
        shared = await self._load()
        if not generation:
            served = self._serving.get(book)
            return served[1] if served else shared
        staged = self._staging.get(book)
        if staged is None or staged[0] != generation:
            raise FailedPrecondition(f"book {book!r} has no staged version {generation} (it was committed or "
                                     "replaced by a newer re-index)")
        return staged[1]

    # -- reads ---------------------------------------------------------------------------

    @asynccontextmanager
    async def reading(self, book: str) -> AsyncIterator[View]:
        shared = await self._load()
        if book:
            served = self._serving.get(book)
            stores = [served[1] if served else shared]
        else:
            stores = [*(s for _, s in self._serving.values()), shared]
        ended = asyncio.Event()
        for store in stores:
            self._readers.setdefault(store, set()).add(ended)
        try:
            if len(stores) == 1:
                yield stores[0]
            else:
                kind = FusingMerged if all(isinstance(s, FusingIndex) for s in stores) else Merged
                yield kind(stores, shared, frozenset(self._serving))
        finally:
            ended.set()
            for store in stores:
                self._readers[store].discard(ended)
                if not self._readers[store]:
                    del self._readers[store]

    async def embedder(self, book: str = "", generation: int = 0) -> EmbedderSpec | None:
        if book or generation:
            return await (await self._target(book, generation)).embedder()
        async with self.reading("") as view:
            return await view.embedder()

    async def digests(self, book: str, offset: str, limit: int, generation: int = 0) -> tuple[list[Digest], str]:
        return await (await self._target(book, generation)).digests(book, offset, limit)

    async def stats(self) -> IndexStats:
        shared = await self._load()
        books = {b: n for b, n in (await shared.stats()).books.items() if b not in self._serving}
        for book, (_, store) in list(self._serving.items()):
            if count := (await store.stats()).books.get(book, 0):
                books[book] = count
        return IndexStats(books, await self.embedder(), self.backend, self.collection)

    async def ping(self) -> bool:
        try:
            if self._shared is not None and self.shelf.replicated:
                await self._refresh()
            shared = await self._load()
        except Exception:  # any failure to read the catalog means not serving, whatever the backend
            log.warning("the index's versions could not be read", exc_info=True)
            return False
        return await shared.ping()

    async def _refresh(self) -> None:
        """Picks up versions that another replica (on a shared Qdrant or Postgres) staged,
        committed or removed: one listing per health check, and the labels read again only
        when the names changed. Until then, such a replica serves what it knew."""
        prefix = self.collection + VERSION_MARK
        names = {n for n in await self.shelf.names(prefix) if n[len(prefix):].isdigit()}
        held = {version_name(self.collection, g): s for g, s in (*self._serving.values(), *self._staging.values())}
        if names == set(held):
            return
        serving: dict[str, tuple[int, Store]] = {}
        staging: dict[str, tuple[int, Store]] = {}
        for name in sorted(names, key=lambda n: int(n[len(prefix):])):
            store = await self.shelf.open(name)  # opened again: its label may have changed
            label = await store.label()
            if label is not None:
                (serving if label.state == SERVING else staging)[label.book] = (label.generation, store)
        self._serving, self._staging = serving, staging
        self._next_generation = max([self._next_generation, *(int(n[len(prefix):]) + 1 for n in names)])

    # -- writes --------------------------------------------------------------------------

    async def upsert(self, embedder: EmbedderSpec, records: Sequence[IndexRecord], generation: int = 0) -> int:
        by_book: dict[str, list[IndexRecord]] = {}
        for r in records:
            by_book.setdefault(r.chunk.book, []).append(r)
        written = 0
        for book, batch in by_book.items():
            store = await self._target(book, generation)
            built = await store.embedder()
            if generation and built is not None and not same_vectors(built, embedder):
                raise embedder_mismatch(built, embedder)
            written += await store.upsert(embedder, batch)
        return written

    async def delete(self, book: str, chunk_ids: Sequence[str], generation: int = 0) -> int:
        return await (await self._target(book, generation)).delete(book, chunk_ids)

    async def delete_book(self, book: str) -> int:
        shared = await self._load()
        async with self._lock(book):
            deleted = await shared.delete_book(book)
            served = self._serving.pop(book, None)
            if served is not None:
                deleted += (await served[1].stats()).books.get(book, 0)
                await self._retire(served[1])
            staged = self._staging.pop(book, None)
            if staged is not None:
                await staged[1].drop()
            return deleted

    async def stage(self, book: str, embedder: EmbedderSpec) -> Staged:
        await self._load()
        async with self._lock(book):
            current = self._staging.get(book)
            if current is not None:
                if same_vectors(await current[1].embedder(), embedder):
                    return Staged(current[0], resumed=True)
                del self._staging[book]  # staged by another embedder: nothing in it is reusable
                await current[1].drop()
            generation = self._next_generation
            self._next_generation += 1
            store = await self.shelf.open(version_name(self.collection, generation))
            await store.create(embedder, Label(book, generation, STAGING))
            self._staging[book] = (generation, store)
            return Staged(generation, resumed=False)

    async def commit(self, book: str, generation: int) -> int:
        shared = await self._load()
        async with self._lock(book):
            store = await self._target(book, generation)
            # The switch, as the backend keeps it: from this write on, a restart serves the new version.
            await store.relabel(Label(book, generation, SERVING))
            # The switch, as readers see it: one assignment, between two searches.
            replaced = self._serving.get(book)
            self._serving[book] = (generation, store)
            del self._staging[book]
            if replaced is not None:
                await self._retire(replaced[1])
            else:
                # The book's points leave the shared store only after the searches that were
                # already reading them there end (later ones read the new version).
                await self._drain(shared)
                await shared.delete_book(book)
            return (await store.stats()).books.get(book, 0)

    async def _retire(self, store: Store) -> None:
        """Removes a version nobody is sent to any more, once the searches reading it end."""
        await self._drain(store)
        await store.drop()

    async def _drain(self, store: Store) -> None:
        """Waits (at most RETIRE_WAIT_SECONDS) for the searches reading the store now to end;
        searches that start later are not waited for."""
        ending = [asyncio.create_task(e.wait()) for e in self._readers.get(store, ())]
        if not ending:
            return
        _, late = await asyncio.wait(ending, timeout=RETIRE_WAIT_SECONDS)
        for task in late:
            task.cancel()
        if late:
            log.warning("changing a store that a search still reads")

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        stores = [s for _, s in (*self._serving.values(), *self._staging.values())]
        for store in [*stores, *([self._shared] if self._shared else [])]:
            await store.close()
        await self.shelf.close()


class Merged:
    """Several stores searched as one, for a search over every book: each store's hits, best
    first, without the points a commit has not yet cleared from the shared store.

    Keyword scores are BM25 within each store, so they compare across stores only roughly; a
    search of one book (what readers make) always reads one store."""

    def __init__(self, stores: list[Store], shared: Store, moved: frozenset[str]) -> None:
        self.stores = stores  # versions first, the shared store last
        self.shared = shared
        self.moved = moved
        """Books served by a version of their own, whose points in the shared store are stale."""

    async def embedder(self) -> EmbedderSpec | None:
        for store in self.stores:
            if (spec := await store.embedder()) is not None:
                return spec
        return None

    async def _dense_stores(self) -> list[Store]:
        """The stores whose vectors are comparable to the query's (during an embedder switch of
        one book among several, the others are searched by keyword only)."""
        spec = await self.embedder()
        return [s for s in self.stores if (await s.embedder()) == spec]

    @staticmethod
    def _best(rankings: Sequence[list[Hit]], limit: int) -> list[Hit]:
        seen: set[str] = set()
        best: list[Hit] = []
        for hit in sorted((h for r in rankings for h in r), key=lambda h: -h.score):
            if hit.chunk_id not in seen:
                seen.add(hit.chunk_id)
                best.append(hit)
        return best[:limit]

    async def dense(self, vector: Sequence[float], flt: Filter, limit: int) -> list[Hit]:
        stores = await self._dense_stores()
        return self._best(await asyncio.gather(*(s.dense(vector, flt, limit) for s in stores)), limit)

    async def keyword(self, query: str, flt: Filter, limit: int) -> list[Hit]:
        return self._best(await asyncio.gather(*(s.keyword(query, flt, limit) for s in self.stores)), limit)

    async def chunks(self, chunk_ids: Sequence[str]) -> list[Chunk]:
        found: dict[str, Chunk] = {}
        for store, chunks in zip(self.stores, await asyncio.gather(*(s.chunks(chunk_ids) for s in self.stores)),
                                 strict=True):
            for c in chunks:
                if not (store is self.shared and c.book in self.moved):
                    found.setdefault(c.chunk_id, c)
        return [found[i] for i in chunk_ids if i in found]

    async def similarity(self, vector: Sequence[float], chunk_ids: Sequence[str]) -> dict[str, float]:
        similarity: dict[str, float] = {}
        stores = await self._dense_stores()
        for found in await asyncio.gather(*(s.similarity(vector, chunk_ids) for s in stores)):
            for cid, score in found.items():
                similarity.setdefault(cid, score)
        return similarity


class FusingMerged(Merged):
    """Merged stores that each run a hybrid search in one trip: each store's fused results,
    by fused score."""

    async def hybrid(self, vector: Sequence[float], query: str, flt: Filter, pool: int, limit: int) -> Fused:
        stores = [s for s in await self._dense_stores() if isinstance(s, FusingIndex)]
        fused = await asyncio.gather(*(s.hybrid(vector, query, flt, pool, limit) for s in stores))
        results: dict[str, Result] = {}
        for store, found in zip(stores, fused, strict=True):
            for r in found.results:
                if not (store is self.shared and r.chunk.book in self.moved):
                    results.setdefault(r.chunk.chunk_id, r)
        best = sorted(results.values(), key=lambda r: -r.score)[:limit]
        return Fused(best, max((f.best_similarity for f in fused), default=0.0))
