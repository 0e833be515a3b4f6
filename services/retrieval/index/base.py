"""The vector index interface every backend implements, and the records it stores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from embedding.base import EmbedderSpec
from runtime.errors import FailedPrecondition

PAYLOAD_INDEXES = ("book", "file_path", "module", "section_depth")


@dataclass(frozen=True)
class StoredChunk:
    """A chunk's payload as held in the index."""

    chunk_id: str
    book: str
    file_path: str
    module: str
    heading_path: tuple[str, ...]
    section_depth: int
    content: str
    token_count: int
    content_hash: str
    title: str
    tags: tuple[str, ...]
    position: int
    url: str

    @property
    def keyword_text(self) -> str:
        """What BM25 scores: the headings carry much of a section's meaning."""
        return " ".join((*self.heading_path, self.content))


@dataclass(frozen=True)
class IndexRecord:
    """A chunk with its dense vector, ready to store."""

    chunk: StoredChunk
    vector: Sequence[float]


@dataclass(frozen=True)
class Filter:
    """Restricts a search; empty fields do not restrict."""

    book: str = ""
    file_path: str = ""
    file_path_prefix: str = ""
    module: str = ""
    max_section_depth: int = 0


@dataclass(frozen=True)
class Hit:
    """A chunk found by a search, by id, with its score in that search.

    Searches return ids only: reading payloads is the costly part of a search (about 5 ms
    for 40 hits at 100k chunks on Qdrant Edge), so only the final top-k are read, by `chunks`.
    """

    chunk_id: str
    score: float


@dataclass(frozen=True)
class Result:
    """A search result: the chunk, its score in the search (the fused score for hybrid search)
    and its dense similarity to the query."""

    chunk: StoredChunk
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


class VectorIndex(Protocol):
    """One collection of chunks with dense and keyword (BM25) search."""

    backend: str

    async def embedder(self) -> EmbedderSpec | None:
        """The embedder that built the index, or None while it is empty."""
        ...

    async def upsert(self, embedder: EmbedderSpec, records: Sequence[IndexRecord]) -> int: ...

    async def delete(self, book: str, chunk_ids: Sequence[str]) -> int: ...

    async def delete_book(self, book: str) -> int: ...

    async def digests(self, book: str, offset: str, limit: int) -> tuple[list[Digest], str]:
        """A page of (id, hash, file) for a book and the offset of the next page ("" at the end)."""
        ...

    async def dense(self, vector: Sequence[float], flt: Filter, limit: int) -> list[Hit]:
        """Nearest chunks by cosine similarity (score = similarity)."""
        ...

    async def keyword(self, query: str, flt: Filter, limit: int) -> list[Hit]:
        """Best chunks by BM25."""
        ...

    async def chunks(self, chunk_ids: Sequence[str]) -> list[StoredChunk]:
        """The stored chunks in the order asked; ids no longer stored are left out."""
        ...

    async def similarity(self, vector: Sequence[float], chunk_ids: Sequence[str]) -> dict[str, float]:
        """Cosine similarity of ``vector`` to each of these chunks (for hits that only keyword
        search found); ids no longer stored are left out."""
        ...

    async def stats(self) -> IndexStats: ...

    async def ping(self) -> bool:
        """True when the store answers."""
        ...

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
