"""The vector index interface every backend implements; the chunks it stores are `records.chunk.Chunk`."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from embedding.base import EmbedderSpec
from records.chunk import Chunk
from runtime.errors import FailedPrecondition

PAYLOAD_INDEXES = ("book", "file_path", "module", "section_depth", "version", "locale",
                   "other_version", "other_locale")
# Payload fields kept as integers (0/1 for the flags): Qdrant Edge matches booleans as integers.
INTEGER_FIELDS = frozenset({"section_depth", "other_version", "other_locale"})


@dataclass(frozen=True)
class IndexRecord:
    """A chunk with its dense vector, ready to store."""

    chunk: Chunk
    vector: Sequence[float]


@dataclass(frozen=True)
class Filter:
    """Restricts a search; empty fields do not restrict."""

    book: str = ""
    file_path: str = ""
    file_path_prefix: str = ""
    module: str = ""
    max_section_depth: int = 0
    version: str = ""
    locale: str = ""
    # Only the version served at the docs root / the default locale; chunks stored without
    # versions or locales count as both.
    default_version: bool = False
    default_locale: bool = False


@dataclass(frozen=True)
class Hit:
    """A chunk found by a search, by id, with its score in that search.

    Searches return ids only: reading payloads is the costly part of a search, so only
    the final top-k are read, by `chunks`.
    """

    chunk_id: str
    score: float


@dataclass(frozen=True)
class Result:
    """A search result: the chunk, its score in the search (the fused score for hybrid search)
    and its dense similarity to the query."""

    chunk: Chunk
    score: float
    dense_similarity: float


@dataclass(frozen=True)
class Fused:
    """A hybrid search's results, and the best dense similarity of any chunk (which may have
    fused below the top hits): the out-of-scope decision is calibrated on it."""

    results: list[Result]
    best_similarity: float


@dataclass(frozen=True)
class Digest:
    chunk_id: str
    content_hash: str
    file_path: str


@dataclass(frozen=True)
class IndexStats:
    books: dict[str, int] = field(default_factory=dict)
    embedder: EmbedderSpec | None = None
    backend: str = ""
    collection: str = ""


def same_vectors(built: EmbedderSpec | None, embedder: EmbedderSpec) -> bool:
    """True when vectors from `embedder` can share an index built by `built`."""
    return built is not None and (built.name, built.dimension) == (embedder.name, embedder.dimension)


def embedder_mismatch(built: EmbedderSpec, embedder: EmbedderSpec) -> FailedPrecondition:
    return FailedPrecondition(
        f"the index was built by {built.name} ({built.dimension} dims), not "
        f"{embedder.name} ({embedder.dimension} dims); re-index with --reindex"
    )


def check_query_dimension(built: EmbedderSpec | None, vector: Sequence[float]) -> None:
    if built is not None and len(vector) != built.dimension:
        raise FailedPrecondition(f"query vector has {len(vector)} dimensions; the index has {built.dimension}")


def cosine(vector: Sequence[float] | np.ndarray, stored: Sequence[float]) -> float:
    """Cosine similarity of a query vector to a stored one, for backends that read the stored
    vectors instead of asking the store for the score."""
    q = np.asarray(vector, dtype=np.float64)
    v = np.asarray(stored, dtype=np.float64)
    return float(q @ v / max(float(np.linalg.norm(q) * np.linalg.norm(v)), 1e-12))


SERVING = "serving"
STAGING = "staging"


@dataclass(frozen=True)
class Label:
    """What a store holds when it is one version of one book (the shared store has none).

    Kept in the store's own metadata, so the versions of every book can be read back from the
    backend alone after a restart or a crash, whichever process wrote them."""

    book: str
    generation: int
    state: str  # SERVING or STAGING

    def to_json(self) -> dict[str, object]:
        return {"book": self.book, "generation": self.generation, "state": self.state}

    @classmethod
    def from_json(cls, data: object) -> Label | None:
        if not isinstance(data, dict) or "book" not in data:
            return None
        return cls(str(data["book"]), int(data["generation"]), str(data["state"]))


class View(Protocol):
    """What a search reads: one store, or several seen as one."""

    async def embedder(self) -> EmbedderSpec | None:
        """The embedder that built the chunks read, or None while there are none."""
        ...

    async def dense(self, vector: Sequence[float], flt: Filter, limit: int) -> list[Hit]:
        """Nearest chunks by cosine similarity (score = similarity)."""
        ...

    async def keyword(self, query: str, flt: Filter, limit: int) -> list[Hit]:
        """Best chunks by BM25."""
        ...

    async def chunks(self, chunk_ids: Sequence[str]) -> list[Chunk]:
        """The stored chunks in the order asked; ids no longer stored are left out."""
        ...

    async def similarity(self, vector: Sequence[float], chunk_ids: Sequence[str]) -> dict[str, float]:
        """Cosine similarity of ``vector`` to each of these chunks (for hits that only keyword
        search found); ids no longer stored are left out."""
        ...


class Store(View, Protocol):
    """One physical collection of chunks (a Qdrant shard or collection, a pgvector table) with
    dense and keyword (BM25) search. Each backend implements it; `versioned.VersionedIndex`
    puts the versions of books on top."""

    backend: str
    collection: str

    async def upsert(self, embedder: EmbedderSpec, records: Sequence[IndexRecord]) -> int: ...

    async def delete(self, book: str, chunk_ids: Sequence[str]) -> int: ...

    async def delete_book(self, book: str) -> int: ...

    async def digests(self, book: str, offset: str, limit: int) -> tuple[list[Digest], str]:
        """A page of (id, hash, file) for a book and the offset of the next page ("" at the end)."""
        ...

    async def stats(self) -> IndexStats: ...

    async def label(self) -> Label | None:
        """The book version this store holds, or None for the shared store."""
        ...

    async def create(self, embedder: EmbedderSpec, label: Label) -> None:
        """Makes this store an empty version of a book, built by ``embedder``."""
        ...

    async def relabel(self, label: Label) -> None:
        """Replaces the label in one atomic write to the backend."""
        ...

    async def drop(self) -> None:
        """Removes the store from the backend; the object stays usable as an empty store."""
        ...

    async def ping(self) -> bool:
        """True when the backend answers."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class Staged:
    """A staged version of a book: where a re-index writes."""

    generation: int
    resumed: bool


class VectorIndex(Protocol):
    """The index as retrieval serves it: books, each read from the version that serves it,
    and re-indexes built beside it (see `versioned`)."""

    backend: str

    def reading(self, book: str) -> AbstractAsyncContextManager[View]:
        """The version that serves ``book`` (every book when empty), held for one search: a
        commit does not remove a version while a search still reads it."""
        ...

    async def embedder(self, book: str = "", generation: int = 0) -> EmbedderSpec | None: ...

    async def upsert(self, embedder: EmbedderSpec, records: Sequence[IndexRecord], generation: int = 0) -> int:
        """Writes into the served version, or into a staged one (``generation`` from ``stage``)."""
        ...

    async def delete(self, book: str, chunk_ids: Sequence[str], generation: int = 0) -> int: ...

    async def delete_book(self, book: str) -> int: ...

    async def digests(self, book: str, offset: str, limit: int, generation: int = 0) -> tuple[list[Digest], str]: ...

    async def stage(self, book: str, embedder: EmbedderSpec) -> Staged:
        """A new version of ``book`` beside the served one, or the one an interrupted re-index
        left if it has the same embedder."""
        ...

    async def commit(self, book: str, generation: int) -> int:
        """Serves the staged version from now on and removes the one it replaces; returns the
        chunks the book now serves."""
        ...

    async def stats(self) -> IndexStats: ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


@runtime_checkable
class FusingIndex(Protocol):
    """An index that runs a whole hybrid search in one trip to its store. The retriever uses
    it when a backend has it, and otherwise makes the same search from ``dense``, ``keyword``,
    ``similarity`` and ``chunks``; the results are the same either way."""

    async def hybrid(self, vector: Sequence[float], query: str, flt: Filter, pool: int, limit: int) -> Fused:
        """The ``limit`` best chunks by reciprocal-rank fusion of the ``pool`` nearest and the
        ``pool`` best by BM25, with their payloads and dense similarities."""
        ...


@runtime_checkable
class FusingView(View, FusingIndex, Protocol):
    """A view whose store runs hybrid search in one trip."""
