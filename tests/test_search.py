"""Hybrid search on a real Qdrant Edge index: every result reports its dense similarity, also
the ones that only keyword search found, and the one-trip search Edge offers gives exactly
what the separate calls every backend has give."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from embedding.base import EmbedderSpec
from services.retrieval.index.base import Filter, FusingView, IndexRecord, View
from services.retrieval.index.edge import EdgeShelf
from services.retrieval.index.versioned import VersionedIndex
from services.retrieval.search import FUSION_POOL, Mode, Retriever
from tests.test_index_contract import SPEC, chunk, unit

QUERY = unit(1, 0, 0, 0)


class AxisEmbedder:
    """Every query points along the first axis; the test places the chunks around it."""

    spec: EmbedderSpec = SPEC

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return [QUERY for _ in texts]

    async def embed_query(self, text: str) -> list[float]:
        return QUERY

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    async def ready(self) -> bool:
        return True

    async def close(self) -> None:
        pass


async def test_hits_only_keyword_search_found_report_their_real_dense_similarity(tmp_path: Path) -> None:
    index = VersionedIndex(EdgeShelf(tmp_path / "edge", "docusaurus-book"))
    try:
        # 50 chunks close to the query fill the dense search's pool; the one that holds the
        # query's rare word lies far from it, so only BM25 finds it.
        near = [IndexRecord(chunk("book", f"near/{i}.md", f"Near {i}", "Motors turn wheels."),
                            unit(1, 0.05 * (i + 1), 0, 0)) for i in range(50)]
        far_vector = unit(0.3, 0, 1, 0)
        far = IndexRecord(chunk("book", "far.md", "Far", "The magnetometer reads headings."), far_vector)
        await index.upsert(SPEC, [*near, far])
        retriever = Retriever(index, AxisEmbedder(), Mode.HYBRID, out_of_scope_threshold=0.3)
        outcome = await retriever.search("magnetometer", 5, None, Filter(book="book"))
        found = {r.chunk.chunk_id: r for r in outcome.results}
        assert far.chunk.chunk_id in found
        cosine = sum(a * b for a, b in zip(QUERY, far_vector, strict=True))
        assert found[far.chunk.chunk_id].dense_similarity == pytest.approx(cosine, abs=1e-3)
        assert all(r.dense_similarity > 0 for r in outcome.results)
    finally:
        await index.close()


class WithoutHybrid:
    """A view without its one-trip hybrid search."""

    def __init__(self, view: View) -> None:
        self._view = view

    def __getattr__(self, name: str) -> Any:
        if name == "hybrid":
            raise AttributeError(name)
        return getattr(self._view, name)


class SeparateCalls:
    """The same index whose views lack the one-trip hybrid search, so the retriever composes
    hybrid search from dense, keyword, similarity and chunk reads."""

    def __init__(self, index: VersionedIndex) -> None:
        self._index = index

    @asynccontextmanager
    async def reading(self, book: str) -> AsyncIterator[View]:
        async with self._index.reading(book) as view:
            yield WithoutHybrid(view)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._index, name)


class FixedEmbedder(AxisEmbedder):
    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = vectors

    async def embed_query(self, text: str) -> list[float]:
        return self.vectors[text]


WORDS = ("motor", "wheel", "sensor", "gyroscope", "lidar", "camera", "battery", "servo", "encoder", "map")


async def test_one_trip_hybrid_search_gives_what_the_separate_calls_give(tmp_path: Path) -> None:
    rng = random.Random(3)

    def vector() -> list[float]:
        return unit(*(rng.uniform(-1, 1) for _ in range(4)))

    records = [IndexRecord(chunk("book" if i % 5 else "other", f"m{i % 3}/p{i}.md", f"Section {i}",
                                " ".join(rng.choices(WORDS, k=12)), depth=2 + i % 2), vector())
               for i in range(80)]
    queries = {" ".join(rng.choices(WORDS, k=3)): vector() for _ in range(20)}
    index = VersionedIndex(EdgeShelf(tmp_path / "edge", "docusaurus-book"))
    try:
        await index.upsert(SPEC, records)
        async with index.reading("book") as view:
            assert isinstance(view, FusingView)
        async with SeparateCalls(index).reading("book") as view:
            assert not isinstance(view, FusingView)
        embedder = FixedEmbedder(queries)
        one_trip = Retriever(index, embedder, Mode.HYBRID, out_of_scope_threshold=0.7)
        separate = Retriever(SeparateCalls(index), embedder, Mode.HYBRID,
                             out_of_scope_threshold=0.7)
        for flt in (Filter(book="book"), Filter(book="book", module="m1"), Filter(max_section_depth=2)):
            for query in queries:
                for top_k in (1, 5, 12):
                    a = await one_trip.search(query, top_k, None, flt)
                    b = await separate.search(query, top_k, None, flt)
                    assert [(r.chunk, r.score) for r in a.results] == [(r.chunk, r.score) for r in b.results]
                    assert [r.dense_similarity for r in a.results] == pytest.approx(
                        [r.dense_similarity for r in b.results], abs=1e-5)
                    assert (a.out_of_scope, a.mode) == (b.out_of_scope, b.mode)
    finally:
        await index.close()


async def test_asking_for_more_results_never_reorders_the_first_ones(tmp_path: Path) -> None:
    # Pools that grew with top_k changed every fused score: a reader asking for 20 results got
    # another first five than one asking for 5. Some hits lie deep in one ranking only, so a pool
    # deeper than FUSION_POOL would change their fused scores.
    rng = random.Random(7)
    records = [IndexRecord(chunk("book", f"p{i}.md", f"Section {i}", " ".join(rng.choices(WORDS, k=10))),
                           unit(*(rng.uniform(-1, 1) for _ in range(4)))) for i in range(300)]
    queries = {" ".join(rng.choices(WORDS, k=3)): unit(*(rng.uniform(-1, 1) for _ in range(4))) for _ in range(8)}
    index = VersionedIndex(EdgeShelf(tmp_path / "edge", "docusaurus-book"))
    try:
        await index.upsert(SPEC, records)
        for reader in (index, SeparateCalls(index)):
            retriever = Retriever(reader, FixedEmbedder(queries), Mode.HYBRID, out_of_scope_threshold=0.0)
            for query in queries:
                widest = [r.chunk.chunk_id
                          for r in (await retriever.search(query, FUSION_POOL, None, Filter())).results]
                assert len(widest) == FUSION_POOL
                for top_k in (1, 5, 10, 20):
                    found = await retriever.search(query, top_k, None, Filter())
                    assert [r.chunk.chunk_id for r in found.results] == widest[:top_k], (query, top_k)
    finally:
        await index.close()


async def test_scope_is_judged_on_the_nearest_chunk_even_when_it_fuses_below_the_top_k(tmp_path: Path) -> None:
    # The nearest chunk lacks the query's words, so only dense search finds it; six chunks
    # that both searches find fuse above it, and each of them is too far on its own.
    nearest = IndexRecord(chunk("book", "near.md", "Near", "Wheels turn."), unit(1, 0.6, 0, 0))
    both = [IndexRecord(chunk("book", f"both/{i}.md", f"Both {i}", "The magnetometer reads headings."),
                        unit(1, 2 + 0.1 * i, 0, 0)) for i in range(6)]
    index = VersionedIndex(EdgeShelf(tmp_path / "edge", "docusaurus-book"))
    try:
        await index.upsert(SPEC, [nearest, *both])
        for candidate in (index, SeparateCalls(index)):
            retriever = Retriever(candidate, AxisEmbedder(), Mode.HYBRID,
                                  out_of_scope_threshold=0.7)
            outcome = await retriever.search("magnetometer", 3, None, Filter(book="book"))
            assert nearest.chunk.chunk_id not in {r.chunk.chunk_id for r in outcome.results}
            assert max(r.dense_similarity for r in outcome.results) < 0.7
            assert not outcome.out_of_scope  # the nearest chunk's 0.86 decides
    finally:
        await index.close()


class BrokenEmbedder(AxisEmbedder):
    """A query embedder that is down (a Gemini quota, a model that failed to load)."""

    async def embed_query(self, text: str) -> list[float]:
        raise RuntimeError("quota exceeded")


@pytest.mark.parametrize("mode", [Mode.HYBRID, Mode.DENSE])
@pytest.mark.parametrize("one_trip", [True, False])
async def test_without_an_embedder_search_falls_back_to_keyword_and_says_so(
        tmp_path: Path, mode: Mode, one_trip: bool) -> None:
    index = VersionedIndex(EdgeShelf(tmp_path / "edge", "docusaurus-book"))
    try:
        gyro = IndexRecord(chunk("book", "imu.md", "Gyroscope", "The gyroscope measures rotation."), unit(1, 0, 0, 0))
        lidar = IndexRecord(chunk("book", "lidar.md", "Lidar", "Lidar measures distance."), unit(0, 1, 0, 0))
        await index.upsert(SPEC, [gyro, lidar])
        reader = index if one_trip else SeparateCalls(index)
        retriever = Retriever(reader, BrokenEmbedder(), Mode.HYBRID, out_of_scope_threshold=0.3)
        outcome = await retriever.search("gyroscope rotation", 5, mode, Filter(book="book"))
        assert [r.chunk.chunk_id for r in outcome.results] == [gyro.chunk.chunk_id]
        assert outcome.degraded and outcome.mode is Mode.KEYWORD
        assert "embedder unavailable (RuntimeError)" in outcome.degraded_reason
        assert not outcome.out_of_scope
    finally:
        await index.close()


async def test_an_index_built_by_another_embedder_is_searched_by_keyword(tmp_path: Path) -> None:
    index = VersionedIndex(EdgeShelf(tmp_path / "edge", "docusaurus-book"))
    try:
        other = EmbedderSpec("gemini:text-embedding", 4, 2048)
        await index.upsert(other, [IndexRecord(chunk("book", "imu.md", "Gyroscope", "The gyroscope turns."),
                                               unit(1, 0, 0, 0))])
        outcome = await Retriever(index, AxisEmbedder(), Mode.HYBRID, 0.3).search("gyroscope", 5, None, Filter())
        assert outcome.degraded and outcome.mode is Mode.KEYWORD and len(outcome.results) == 1
        assert "index built by gemini:text-embedding" in outcome.degraded_reason
    finally:
        await index.close()
