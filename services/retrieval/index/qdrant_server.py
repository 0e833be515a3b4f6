"""A Qdrant server, cluster or Qdrant Cloud through qdrant-client (set QDRANT_URL).

The same client also runs in qdrant-client's local mode (":memory:" or a path), which speaks
the same API; the contract tests use it because no Qdrant server runs on CI machines.
Collection layout matches the Edge backend: "dense" cosine vectors and a "bm25" sparse vector
with the IDF modifier, so keyword scores are BM25 computed by Qdrant over the collection.
The embedder that built the collection is kept in the collection's metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import qdrant_edge as qe
from qdrant_client import AsyncQdrantClient
from qdrant_client import models as qm
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from embedding.base import EmbedderSpec
from records.chunk import Chunk
from runtime.errors import Unavailable
from services.retrieval.index.base import (
    INTEGER_FIELDS,
    PAYLOAD_INDEXES,
    Digest,
    Filter,
    Hit,
    IndexRecord,
    IndexStats,
    Label,
    check_query_dimension,
    embedder_mismatch,
    same_vectors,
)
from services.retrieval.index.payload import from_payload, to_payload

DENSE = "dense"
SPARSE = "bm25"
UPSERT_BATCH = 256


@dataclass(frozen=True)
class ClusterLayout:
    """How a new collection is spread over a cluster (ignored by local mode)."""

    shard_number: int = 1
    replication_factor: int = 1
    write_consistency_factor: int = 1


def server_filter(flt: Filter) -> qm.Filter | None:
    must: list[qm.Condition] = []
    if flt.book:
        must.append(qm.FieldCondition(key="book", match=qm.MatchValue(value=flt.book)))
    if flt.file_path:
        must.append(qm.FieldCondition(key="file_path", match=qm.MatchValue(value=flt.file_path)))
    if flt.file_path_prefix:
        must.append(qm.FieldCondition(key="file_path", match=qm.MatchPrefix(prefix=flt.file_path_prefix)))
    if flt.module:
        must.append(qm.FieldCondition(key="module", match=qm.MatchValue(value=flt.module)))
    if flt.max_section_depth:
        must.append(qm.FieldCondition(key="section_depth", range=qm.Range(lte=flt.max_section_depth)))
    if flt.version:
        must.append(qm.FieldCondition(key="version", match=qm.MatchValue(value=flt.version)))
    if flt.locale:
        must.append(qm.FieldCondition(key="locale", match=qm.MatchValue(value=flt.locale)))
    # "Not flagged" rather than "flagged 0": chunks stored before the flags existed lack them.
    must_not: list[qm.Condition] = [
        qm.FieldCondition(key=name, match=qm.MatchValue(value=1)) for name, wanted in
        (("other_version", flt.default_version), ("other_locale", flt.default_locale)) if wanted]
    return qm.Filter(must=must or None, must_not=must_not or None) if must or must_not else None


def _spec_from_metadata(metadata: dict[str, Any] | None) -> EmbedderSpec | None:
    if not metadata or "embedder" not in metadata:
        return None
    return EmbedderSpec(str(metadata["embedder"]), int(metadata["dimension"]), int(metadata.get("max_tokens", 0)))


class QdrantServerIndex:
    """A Store on a Qdrant collection reached through qdrant-client."""

    backend = "qdrant-server"

    def __init__(self, client: AsyncQdrantClient, collection: str, layout: ClusterLayout | None = None,
                 *, backend: str = "qdrant-server", owns_client: bool = True) -> None:
        self.client = client
        self._owns_client = owns_client
        self.collection = collection
        self.layout = layout or ClusterLayout()
        self.backend = backend
        # Tokenising BM25 the same way as the Edge backend keeps the two interchangeable.
        self._bm25 = qe.Bm25(qe.Bm25Config(language="english"))
        self._spec: EmbedderSpec | None = None
        self._label: Label | None = None
        self._loaded = False

    @classmethod
    def connect(cls, url: str, api_key: str, collection: str, layout: ClusterLayout,
                timeout_seconds: float = 10.0) -> QdrantServerIndex:
        client, backend = connect_client(url, api_key, timeout_seconds)
        return cls(client, collection, layout, backend=backend)

    # -- helpers ---------------------------------------------------------------------

    async def _call(self, coro: Any) -> Any:
        """Network failures become Unavailable so callers see one error for "store down"."""
        try:
            return await coro
        except (ResponseHandlingException, ConnectionError, OSError) as exc:
            raise Unavailable(f"Qdrant at the configured QDRANT_URL is unreachable: {exc}") from exc
        except UnexpectedResponse as exc:
            if exc.status_code in (502, 503, 504):
                raise Unavailable(f"Qdrant answered {exc.status_code}") from exc
            raise

    async def _load(self) -> None:
        if self._loaded:
            return
        if await self._call(self.client.collection_exists(self.collection)):
            info = await self._call(self.client.get_collection(self.collection))
            metadata = getattr(info.config, "metadata", None)
            self._spec = _spec_from_metadata(metadata)
            self._label = Label.from_json((metadata or {}).get("label"))
        self._loaded = True

    async def _create(self, spec: EmbedderSpec) -> None:
        if await self._call(self.client.collection_exists(self.collection)):
            await self._call(self.client.delete_collection(self.collection))
        await self._call(self.client.create_collection(
            self.collection,
            vectors_config={DENSE: qm.VectorParams(size=spec.dimension, distance=qm.Distance.COSINE)},
            sparse_vectors_config={SPARSE: qm.SparseVectorParams(modifier=qm.Modifier.IDF)},
            shard_number=self.layout.shard_number,
            replication_factor=self.layout.replication_factor,
            write_consistency_factor=self.layout.write_consistency_factor,
            metadata={"embedder": spec.name, "dimension": spec.dimension, "max_tokens": spec.max_input_tokens,
                      **({"label": self._label.to_json()} if self._label else {})},
        ))
        # Local mode keeps no payload indexes (and warns if asked); servers need them for fast filters.
        for name in PAYLOAD_INDEXES if self.backend != "qdrant-local" else ():
            schema = qm.PayloadSchemaType.INTEGER if name in INTEGER_FIELDS else qm.PayloadSchemaType.KEYWORD
            await self._call(self.client.create_payload_index(self.collection, name, field_schema=schema))
        self._spec = spec

    async def _count(self, flt: qm.Filter | None) -> int:
        if self._spec is None:
            return 0
        result = await self._call(self.client.count(self.collection, count_filter=flt, exact=True))
        return int(result.count)

    def _sparse(self, text: str, *, query: bool) -> qm.SparseVector:
        vec = self._bm25.embed_query(text) if query else self._bm25.embed_document(text)
        return qm.SparseVector(indices=list(vec.indices), values=list(vec.values))

    # -- writes ------------------------------------------------------------------------

    async def embedder(self) -> EmbedderSpec | None:
        await self._load()
        return self._spec

    async def upsert(self, embedder: EmbedderSpec, records: Sequence[IndexRecord]) -> int:
        await self._load()
        same = same_vectors(self._spec, embedder)
        if self._spec is None or (not same and await self._count(None) == 0):
            await self._create(embedder)
        elif not same:
            raise embedder_mismatch(self._spec, embedder)
        points = [
            qm.PointStruct(
                id=r.chunk.chunk_id,
                vector={DENSE: list(r.vector), SPARSE: self._sparse(r.chunk.keyword_text, query=False)},
                payload=to_payload(r.chunk),
            )
            for r in records
        ]
        for start in range(0, len(points), UPSERT_BATCH):
            await self._call(self.client.upsert(self.collection, points[start:start + UPSERT_BATCH], wait=True))
        return len(points)

    async def delete(self, book: str, chunk_ids: Sequence[str]) -> int:
        await self._load()
        if self._spec is None or not chunk_ids:
            return 0
        flt = qm.Filter(must=[qm.HasIdCondition(has_id=list(chunk_ids)),
                              qm.FieldCondition(key="book", match=qm.MatchValue(value=book))])
        await self._call(self.client.delete(self.collection, qm.FilterSelector(filter=flt), wait=True))
        return len(chunk_ids)

    async def delete_book(self, book: str) -> int:
        await self._load()
        flt = qm.Filter(must=[qm.FieldCondition(key="book", match=qm.MatchValue(value=book))])
        before = await self._count(flt)
        if before:
            await self._call(self.client.delete(self.collection, qm.FilterSelector(filter=flt), wait=True))
        return before

    # -- reads -------------------------------------------------------------------------

    async def digests(self, book: str, offset: str, limit: int) -> tuple[list[Digest], str]:
        await self._load()
        if self._spec is None:
            return [], ""
        records, next_offset = await self._call(self.client.scroll(
            self.collection, scroll_filter=server_filter(Filter(book=book)), limit=limit,
            offset=offset or None, with_payload=["chunk_id", "content_hash", "file_path"], with_vectors=False,
        ))
        digests = [
            Digest(str(r.payload["chunk_id"]), str(r.payload["content_hash"]), str(r.payload["file_path"]))
            for r in records if r.payload
        ]
        return digests, str(next_offset) if next_offset is not None else ""

    async def _query(self, query: Any, using: str, flt: Filter, limit: int) -> list[Hit]:
        await self._load()
        if self._spec is None:
            return []
        response = await self._call(self.client.query_points(
            self.collection, query=query, using=using, query_filter=server_filter(flt), limit=limit,
            with_payload=False,
        ))
        return [Hit(str(p.id), float(p.score)) for p in response.points]

    async def dense(self, vector: Sequence[float], flt: Filter, limit: int) -> list[Hit]:
        await self._load()
        check_query_dimension(self._spec, vector)
        return await self._query(list(vector), DENSE, flt, limit)

    async def keyword(self, query: str, flt: Filter, limit: int) -> list[Hit]:
        sparse = self._sparse(query, query=True)
        if not sparse.indices:
            return []
        return await self._query(sparse, SPARSE, flt, limit)

    async def similarity(self, vector: Sequence[float], chunk_ids: Sequence[str]) -> dict[str, float]:
        await self._load()
        check_query_dimension(self._spec, vector)
        if self._spec is None or not chunk_ids:
            return {}
        response = await self._call(self.client.query_points(
            self.collection, query=list(vector), using=DENSE, limit=len(chunk_ids), with_payload=False,
            query_filter=qm.Filter(must=[qm.HasIdCondition(has_id=list(chunk_ids))]),
            search_params=qm.SearchParams(exact=True),
        ))
        return {str(p.id): float(p.score) for p in response.points}

    async def chunks(self, chunk_ids: Sequence[str]) -> list[Chunk]:
        await self._load()
        if self._spec is None or not chunk_ids:
            return []
        records = await self._call(self.client.retrieve(self.collection, list(chunk_ids), with_payload=True,
                                                        with_vectors=False))
        found = {str(r.id): r for r in records}
        return [from_payload(found[i].payload or {}) for i in chunk_ids if i in found]

    async def stats(self) -> IndexStats:
        await self._load()
        books: dict[str, int] = {}
        if self._spec is not None and await self._count(None):
            facet = await self._call(self.client.facet(self.collection, "book", limit=10_000, exact=True))
            books = {str(h.value): int(h.count) for h in facet.hits}
        return IndexStats(books, self._spec, self.backend, self.collection)

    async def ping(self) -> bool:
        try:
            await self.client.get_collections()
        except Exception:
            return False
        if self._spec is None:
            # A collection created while we were down (or by another replica) is picked up
            # here, once; a known collection is not re-read on every search.
            self._loaded = False
        return True

    # -- versions ----------------------------------------------------------------------

    async def label(self) -> Label | None:
        await self._load()
        return self._label

    async def create(self, embedder: EmbedderSpec, label: Label) -> None:
        self._label = label
        await self._create(embedder)
        self._loaded = True

    async def relabel(self, label: Label) -> None:
        # One metadata update: Qdrant applies it whole (it merges keys, and "label" is one key).
        await self._call(self.client.update_collection(self.collection, metadata={"label": label.to_json()}))
        self._label = label

    async def drop(self) -> None:
        await self._call(self.client.delete_collection(self.collection))
        self._spec, self._label, self._loaded = None, None, True

    async def close(self) -> None:
        if self._owns_client:
            await self.client.close()


def connect_client(url: str, api_key: str, timeout_seconds: float) -> tuple[AsyncQdrantClient, str]:
    """A client for a server URL, or for local mode (":memory:" or "path:..."), and the backend name."""
    if url in (":memory:",) or url.startswith("path:"):
        location = None if url.startswith("path:") else url
        path = url.removeprefix("path:") if url.startswith("path:") else None
        return AsyncQdrantClient(location=location, path=path), "qdrant-local"
    return AsyncQdrantClient(url=url, api_key=api_key or None, timeout=int(timeout_seconds)), "qdrant-server"


class QdrantShelf:
    """Where a Qdrant deployment keeps its stores: collections of one client, side by side."""

    replicated = True

    def __init__(self, url: str, api_key: str, collection: str, layout: ClusterLayout,
                 timeout_seconds: float = 10.0) -> None:
        self.client, self.backend = connect_client(url, api_key, timeout_seconds)
        self.collection = collection
        self.layout = layout

    async def open(self, name: str) -> QdrantServerIndex:
        return QdrantServerIndex(self.client, name, self.layout, backend=self.backend, owns_client=False)

    async def names(self, prefix: str) -> list[str]:
        try:
            listed = await self.client.get_collections()
        except (ResponseHandlingException, ConnectionError, OSError) as exc:
            raise Unavailable(f"Qdrant at the configured QDRANT_URL is unreachable: {exc}") from exc
        return sorted(c.name for c in listed.collections if c.name.startswith(prefix))

    async def close(self) -> None:
        await self.client.close()
