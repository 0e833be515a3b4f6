"""Qdrant Edge: the Qdrant engine in-process, on disk under $LECTERN_HOME (the default).

Edge calls are synchronous (Rust); they run in a small thread pool so the event loop stays
free. Dense vectors live in "dense" (cosine), BM25 term weights in the sparse "bm25" vector
with Qdrant's IDF modifier, so keyword scores are real BM25 over the whole collection.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import qdrant_edge as qe

from embedding.base import EmbedderSpec
from records.chunk import Chunk
from runtime.errors import FailedPrecondition
from services.retrieval.fusion import fetch_size, fuse_pools
from services.retrieval.index.base import (
    INTEGER_FIELDS,
    PAYLOAD_INDEXES,
    Digest,
    Filter,
    Fused,
    Hit,
    IndexRecord,
    IndexStats,
    Label,
    Result,
    check_query_dimension,
    cosine,
    embedder_mismatch,
    same_vectors,
)
from services.retrieval.index.payload import from_payload, to_payload
from services.retrieval.index.sole_book import SoleBook

T = TypeVar("T")
DENSE = "dense"
SPARSE = "bm25"
META_FILE = "lectern-index.json"
OPTIMIZE_EVERY = 20_000
# A wider HNSW beam than the default, so approximate search finds what exact search finds at 100k
# chunks (`make bench` measures ANN recall@10 against exact search).
SEARCH_PARAMS = qe.SearchParams(hnsw_ef=128)


def edge_filter(flt: Filter) -> qe.Filter | None:
    must: list[Any] = []
    if flt.book:
        must.append(qe.FieldCondition("book", match=qe.MatchValue(flt.book)))
    if flt.file_path:
        must.append(qe.FieldCondition("file_path", match=qe.MatchValue(flt.file_path)))
    if flt.file_path_prefix:
        must.append(qe.FieldCondition("file_path", match=qe.MatchPrefix(flt.file_path_prefix)))
    if flt.module:
        must.append(qe.FieldCondition("module", match=qe.MatchValue(flt.module)))
    if flt.max_section_depth:
        must.append(qe.FieldCondition("section_depth", range=qe.RangeFloat(lte=float(flt.max_section_depth))))
    if flt.version:
        must.append(qe.FieldCondition("version", match=qe.MatchValue(flt.version)))
    if flt.locale:
        must.append(qe.FieldCondition("locale", match=qe.MatchValue(flt.locale)))
    # "Not flagged" rather than "flagged 0": chunks stored before the flags existed lack them.
    must_not: list[Any] = [qe.FieldCondition(name, match=qe.MatchValue(1)) for name, wanted in
                (("other_version", flt.default_version), ("other_locale", flt.default_locale)) if wanted]
    return qe.Filter(must=must or None, must_not=must_not or None) if must or must_not else None


def _dense_of(record: Any) -> Any:
    vectors = record.vector
    return vectors[DENSE] if isinstance(vectors, dict) else vectors


class EdgeIndex:
    """A Store on one Qdrant Edge shard."""

    backend = "qdrant-edge"

    def __init__(self, root: Path, collection: str, *, auto_optimize: bool = True,
                 pool: ThreadPoolExecutor | None = None) -> None:
        self.path = root / collection
        self.collection = collection
        self._bm25 = qe.Bm25(qe.Bm25Config(language="english"))
        # The versions of books on one shelf share the shelf's threads.
        self._own_pool = pool is None
        self._pool = pool or ThreadPoolExecutor(max_workers=4, thread_name_prefix="edge")
        self._write_lock = threading.Lock()
        self._sole_book = SoleBook(self._book_counts)
        self._shard: qe.EdgeShard | None = None
        self._spec: EmbedderSpec | None = None
        self._label: Label | None = None
        self._since_optimize = 0
        self._indexed = 0
        self.auto_optimize = auto_optimize
        self._load()

    # -- lifecycle ---------------------------------------------------------------------

    def _meta_path(self) -> Path:
        return self.path / META_FILE

    def _load(self) -> None:
        meta = self._meta_path()
        if meta.exists():
            data = json.loads(meta.read_text())
            self._spec = EmbedderSpec(data["embedder"], int(data["dimension"]), int(data.get("max_tokens", 0)))
            self._label = Label.from_json(data.get("label"))
            self._shard = qe.EdgeShard.load(str(self.path / "shard"))

    def _write_meta(self, spec: EmbedderSpec, label: Label | None) -> None:
        """Replaces the meta file in one rename, so it is always whole."""
        meta: dict[str, object] = {"embedder": spec.name, "dimension": spec.dimension,
                                   "max_tokens": spec.max_input_tokens}
        if label is not None:
            meta["label"] = label.to_json()
        tmp = self._meta_path().with_suffix(".tmp")
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, self._meta_path())

    def _create(self, spec: EmbedderSpec) -> qe.EdgeShard:
        if self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True)
        config = qe.EdgeConfig(
            vectors={DENSE: qe.EdgeVectorParams(size=spec.dimension, distance=qe.Distance.Cosine)},
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        )
        shard = qe.EdgeShard.create(str(self.path / "shard"), config)
        for name in PAYLOAD_INDEXES:
            schema = qe.PayloadSchemaType.Integer if name in INTEGER_FIELDS else qe.PayloadSchemaType.Keyword
            shard.update(qe.UpdateOperation.create_field_index(name, schema))
        # The meta file is written last: its presence means the shard is complete.
        self._write_meta(spec, self._label)
        self._spec = spec
        self._shard = shard
        return shard

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    async def close(self) -> None:
        def close() -> None:
            if self._shard is not None:
                self._shard.flush()
                self._shard.close()
                self._shard = None

        await self._run(close)
        if self._own_pool:
            self._pool.shutdown(wait=True)

    # -- versions ----------------------------------------------------------------------

    async def label(self) -> Label | None:
        return self._label

    async def create(self, embedder: EmbedderSpec, label: Label) -> None:
        def write() -> None:
            with self._write_lock, self._sole_book.writing():
                if self._shard is not None:
                    self._shard.close()
                self._label = label
                self._create(embedder)

        await self._run(write)

    async def relabel(self, label: Label) -> None:
        def write() -> None:
            with self._write_lock:
                if self._spec is None:
                    raise FailedPrecondition(f"{self.collection} holds no shard to label")
                self._write_meta(self._spec, label)
                self._label = label

        await self._run(write)

    async def drop(self) -> None:
        def write() -> None:
            with self._write_lock, self._sole_book.writing():
                if self._shard is not None:
                    self._shard.close()
                self._shard, self._spec, self._label = None, None, None
                shutil.rmtree(self.path, ignore_errors=True)

        await self._run(write)

    # -- writes ------------------------------------------------------------------------

    async def embedder(self) -> EmbedderSpec | None:
        return self._spec

    async def upsert(self, embedder: EmbedderSpec, records: Sequence[IndexRecord]) -> int:
        def write() -> int:
            with self._write_lock, self._sole_book.writing():
                shard = self._shard
                same = same_vectors(self._spec, embedder)
                if shard is None or self._spec is None or (not same and self._count(None) == 0):
                    if shard is not None:
                        shard.close()
                    shard = self._create(embedder)
                elif not same:
                    raise embedder_mismatch(self._spec, embedder)
                points = [
                    qe.Point(
                        r.chunk.chunk_id,
                        {DENSE: list(r.vector), SPARSE: self._bm25.embed_document(r.chunk.keyword_text)},
                        to_payload(r.chunk),
                    )
                    for r in records
                ]
                if points:
                    shard.update(qe.UpdateOperation.upsert_points(points))
                    shard.flush()
                    self._since_optimize += len(points)
                    # Large writes get indexed; small books are fast enough searched exhaustively.
                    # The threshold grows with the index, so a big ingest re-indexes O(log n) times.
                    if self.auto_optimize and self._since_optimize >= max(OPTIMIZE_EVERY, self._indexed):
                        shard.optimize()
                        self._indexed += self._since_optimize
                        self._since_optimize = 0
                return len(points)

        return await self._run(write)

    async def delete(self, book: str, chunk_ids: Sequence[str]) -> int:
        def write() -> int:
            with self._write_lock, self._sole_book.writing():
                if self._shard is None or not chunk_ids:
                    return 0
                flt = qe.Filter(must=[qe.HasIdCondition(set(chunk_ids)),
                                      qe.FieldCondition("book", match=qe.MatchValue(book))])
                self._shard.update(qe.UpdateOperation.delete_points_by_filter(flt))
                self._shard.flush()
                return len(chunk_ids)

        return await self._run(write)

    async def delete_book(self, book: str) -> int:
        def write() -> int:
            with self._write_lock, self._sole_book.writing():
                if self._shard is None:
                    return 0
                flt = qe.Filter(must=[qe.FieldCondition("book", match=qe.MatchValue(book))])
                before = self._count(flt)
                self._shard.update(qe.UpdateOperation.delete_points_by_filter(flt))
                self._shard.flush()
                return before

        return await self._run(write)

    async def optimize(self) -> None:
        """Merges segments and builds the HNSW index. Edge has no background optimizer, so
        without this a large index would stay in plain segments and be searched exhaustively."""
        def run() -> None:
            with self._write_lock:
                if self._shard is not None:
                    self._shard.optimize()
                    self._indexed += self._since_optimize
                    self._since_optimize = 0

        await self._run(run)

    # -- reads -------------------------------------------------------------------------

    def _count(self, flt: qe.Filter | None) -> int:
        if self._shard is None:
            return 0
        return int(self._shard.count(qe.CountRequest(filter=flt, exact=True)))

    async def digests(self, book: str, offset: str, limit: int) -> tuple[list[Digest], str]:
        def read() -> tuple[list[Digest], str]:
            if self._shard is None:
                return [], ""
            records, next_offset = self._shard.scroll(qe.ScrollRequest(
                offset=offset or None, limit=limit, filter=edge_filter(Filter(book=book)),
                with_payload=["chunk_id", "content_hash", "file_path"], with_vector=False,
            ))
            digests = [
                Digest(str(r.payload["chunk_id"]), str(r.payload["content_hash"]), str(r.payload["file_path"]))
                for r in records if r.payload
            ]
            return digests, str(next_offset) if next_offset is not None else ""

        return await self._run(read)

    def _book_counts(self) -> tuple[dict[str, int], int]:
        """Points per book, and in all."""
        total = self._count(None)
        if self._shard is None or not total:
            return {}, total
        facet = self._shard.facet(qe.FacetRequest(key="book", limit=10_000, exact=True))
        # Facets may still list a book whose points were all deleted; a book with none is gone.
        return {str(h.value): int(h.count) for h in facet.hits if h.count}, total

    def _in_book(self, flt: Filter, search: Callable[[Filter], T]) -> T:
        """Runs ``search`` without the book condition when the book is alone in the index
        (cheaper), and again with it if a write changed that meanwhile."""
        epoch = self._sole_book.epoch_if_sole(flt.book) if flt.book else None
        if epoch is not None:
            found = search(replace(flt, book=""))
            if self._sole_book.unchanged(epoch):
                return found
        return search(flt)

    def _query(self, query: Any, using: str, flt: Filter, limit: int) -> list[Hit]:
        return self._in_book(flt, lambda f: self._nearest(query, using, f, limit))

    def _nearest(self, query: Any, using: str, flt: Filter, limit: int) -> list[Hit]:
        if self._shard is None:
            return []
        points = self._shard.query(qe.QueryRequest(
            limit=limit, query=qe.Query.Nearest(query, using=using), filter=edge_filter(flt), with_payload=False,
            params=SEARCH_PARAMS if using == DENSE else None,
        ))
        return [Hit(str(p.id), float(p.score)) for p in points]

    async def dense(self, vector: Sequence[float], flt: Filter, limit: int) -> list[Hit]:
        check_query_dimension(self._spec, vector)
        return await self._run(lambda: self._query(list(vector), DENSE, flt, limit))

    async def keyword(self, query: str, flt: Filter, limit: int) -> list[Hit]:
        sparse = self._bm25.embed_query(query)
        if not sparse.indices:
            return []
        return await self._run(lambda: self._query(sparse, SPARSE, flt, limit))

    async def hybrid(self, vector: Sequence[float], query: str, flt: Filter, pool: int, limit: int) -> Fused:
        """Both searches, the fusion and the payload reads in one job on the shard's thread
        pool: as four separate calls, each hand-over to a thread costs a noticeable share of a
        cached search."""
        check_query_dimension(self._spec, vector)
        sparse = self._bm25.embed_query(query)
        dense = list(vector)
        return await self._run(lambda: self._in_book(flt, lambda f: self._fused(dense, sparse, f, pool, limit)))

    def _fused(self, vector: list[float], sparse: Any, flt: Filter, pool: int, limit: int) -> Fused:
        if self._shard is None:
            return Fused([], 0.0)
        where = edge_filter(flt)
        fetched = fetch_size(pool)
        requests = [qe.QueryRequest(limit=fetched, query=qe.Query.Nearest(vector, using=DENSE), filter=where,
                                    with_payload=False, params=SEARCH_PARAMS)]
        if sparse.indices:
            requests.append(qe.QueryRequest(limit=fetched, query=qe.Query.Nearest(sparse, using=SPARSE),
                                            filter=where, with_payload=False))
        rankings = [[Hit(str(p.id), float(p.score)) for p in points]
                    for points in self._shard.query_batch(qe.QueryBatchRequest(requests))]
        top = fuse_pools(rankings, pool)[:limit]
        records = {str(r.id): r for r in self._shard.retrieve([cid for cid, _ in top], with_payload=True,
                                                              with_vector=[DENSE])}
        query = np.asarray(vector)  # converted once, not once per result
        results = [Result(from_payload(r.payload or {}), score, cosine(query, _dense_of(r)))
                   for cid, score in top if (r := records.get(cid)) is not None]
        return Fused(results, rankings[0][0].score if rankings[0] else 0.0)

    async def similarity(self, vector: Sequence[float], chunk_ids: Sequence[str]) -> dict[str, float]:
        check_query_dimension(self._spec, vector)

        def read() -> dict[str, float]:
            if self._shard is None or not chunk_ids:
                return {}
            points = self._shard.query(qe.QueryRequest(
                limit=len(chunk_ids), query=qe.Query.Nearest(list(vector), using=DENSE), with_payload=False,
                filter=qe.Filter(must=[qe.HasIdCondition(set(chunk_ids))]), params=qe.SearchParams(exact=True),
            ))
            return {str(p.id): float(p.score) for p in points}

        return await self._run(read)

    async def chunks(self, chunk_ids: Sequence[str]) -> list[Chunk]:
        def read() -> list[Chunk]:
            if self._shard is None or not chunk_ids:
                return []
            found = {str(r.id): r for r in self._shard.retrieve(list(chunk_ids), with_payload=True,
                                                                with_vector=False)}
            return [from_payload(found[i].payload or {}) for i in chunk_ids if i in found]

        return await self._run(read)

    async def stats(self) -> IndexStats:
        def read() -> IndexStats:
            return IndexStats(self._book_counts()[0], self._spec, self.backend, self.collection)

        return await self._run(read)

    async def ping(self) -> bool:
        return await self._run(lambda: self._shard is None or self._shard.info() is not None)


class EdgeShelf:
    """Where Edge keeps its stores: one folder each, side by side under one root."""

    backend = EdgeIndex.backend
    replicated = False  # an embedded store belongs to one process

    def __init__(self, root: Path, collection: str, *, auto_optimize: bool = True) -> None:
        self.root = root
        self.collection = collection
        self.auto_optimize = auto_optimize
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="edge")

    async def open(self, name: str) -> EdgeIndex:
        return EdgeIndex(self.root, name, auto_optimize=self.auto_optimize, pool=self._pool)

    async def names(self, prefix: str) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and p.name.startswith(prefix))

    async def close(self) -> None:
        self._pool.shutdown(wait=True)
