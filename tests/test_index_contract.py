"""One contract, every vector index backend: the same tests run against each of them.

Vectors here are small hand-made ones so that the expected nearest neighbours are obvious;
the stores themselves are the real engines (Qdrant Edge on disk, qdrant-client local mode,
pgvector on the embedded Postgres).
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from embedding.base import EmbedderSpec
from runtime.errors import FailedPrecondition, Unavailable
from services.retrieval.index.base import Filter, IndexRecord, StoredChunk, VectorIndex
from services.retrieval.index.edge import EdgeIndex
from services.retrieval.index.pgvector import cpu_has_avx512
from services.retrieval.index.qdrant_server import ClusterLayout, QdrantServerIndex

SPEC = EmbedderSpec("test:axes", 4, 256)
OTHER = EmbedderSpec("test:other", 3, 256)


def unit(*xs: float) -> list[float]:
    norm = math.sqrt(sum(x * x for x in xs))
    return [x / norm for x in xs]


def chunk(book: str, path: str, heading: str, content: str, depth: int = 2, module: str = "") -> StoredChunk:
    cid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{book}/{path}/{heading}"))
    return StoredChunk(
        chunk_id=cid, book=book, file_path=path, module=module or path.split("/")[0],
        heading_path=("Page", heading), section_depth=depth, content=content, token_count=len(content.split()),
        content_hash=f"h-{heading}", title="Page", tags=("t",), position=0, url=f"/x#{heading.lower()}",
    )


RECORDS = [
    IndexRecord(chunk("book", "sensors/imu.md", "Gyroscope", "The gyroscope measures angular velocity."),
                unit(1, 0, 0, 0)),
    IndexRecord(chunk("book", "sensors/lidar.md", "Lidar", "Lidar scans measure distance with lasers.", 3),
                unit(0.9, 0.1, 0, 0)),
    IndexRecord(chunk("book", "motion/pid.md", "PID tuning", "Tune the proportional gain first, then derivative."),
                unit(0.2, 1, 0, 0)),
    IndexRecord(chunk("book", "motion/paths.md", "Paths", "Path planning avoids obstacles on the map.", 3),
                unit(0, 0, 1, 0)),
    IndexRecord(chunk("other", "sensors/imu.md", "Gyroscope", "Another book about gyroscope drift."),
                unit(1, 0, 0.1, 0)),
]


async def edge(tmp: Path, _: str) -> VectorIndex:
    return EdgeIndex(tmp / "edge", "docusaurus-book")


async def qdrant_local(tmp: Path, _: str) -> VectorIndex:
    return QdrantServerIndex.connect(":memory:", "", "docusaurus-book", ClusterLayout(2, 1, 1))


async def pgvector(tmp: Path, postgres_url: str) -> VectorIndex:
    from services.retrieval.index.pgvector import PgVectorIndex

    return await PgVectorIndex.connect(postgres_url, f"book_{uuid.uuid4().hex[:8]}", schema_prefix="test_")


async def pgvector_float(tmp: Path, postgres_url: str) -> VectorIndex:
    """pgvector with its float distance operators, as on Neon or RDS, whatever this CPU is (the
    bundled build runs them on the 4-dimension vectors used here, not on 16 or more)."""
    index = await pgvector(tmp, postgres_url)
    index.half_distance = False  # type: ignore[attr-defined]
    return index


BACKENDS: dict[str, Callable[[Path, str], object]] = {
    "qdrant-edge": edge, "qdrant-local": qdrant_local, "pgvector": pgvector, "pgvector-float": pgvector_float,
}


@pytest_asyncio.fixture(params=list(BACKENDS), loop_scope="session")
async def index(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[VectorIndex]:
    url = request.getfixturevalue("postgres_url") if request.param.startswith("pgvector") else ""
    opened: VectorIndex = await BACKENDS[request.param](tmp_path, url)  # type: ignore[misc]
    try:
        yield opened
    finally:
        await opened.close()


@pytest_asyncio.fixture(loop_scope="session")
async def filled(index: VectorIndex) -> VectorIndex:
    assert await index.upsert(SPEC, RECORDS) == len(RECORDS)
    return index


async def test_an_empty_index_knows_no_embedder_and_finds_nothing(index: VectorIndex) -> None:
    assert await index.embedder() is None
    assert await index.dense(unit(1, 0, 0, 0), Filter(), 5) == []
    assert await index.keyword("gyroscope", Filter(), 5) == []
    assert (await index.stats()).books == {}
    assert await index.ping()


async def test_dense_search_ranks_by_cosine_similarity(filled: VectorIndex) -> None:
    hits = await filled.dense(unit(1, 0, 0, 0), Filter(book="book"), 3)
    chunks = await filled.chunks([h.chunk_id for h in hits])
    assert [c.heading_path[-1] for c in chunks] == ["Gyroscope", "Lidar", "PID tuning"]
    assert hits[0].score == pytest.approx(1.0, abs=1e-3)
    assert chunks[0] == RECORDS[0].chunk


async def test_a_book_alone_in_the_index_stays_apart_when_another_arrives_and_leaves(index: VectorIndex) -> None:
    # Edge drops the book condition while one book holds every point (SoleBook); every
    # backend must give the same answers before, during and after a second book's stay.
    ours = [r for r in RECORDS if r.chunk.book == "book"]
    theirs = [r for r in RECORDS if r.chunk.book == "other"]
    ours_ids = {r.chunk.chunk_id for r in ours}

    async def found(book: str) -> tuple[set[str], set[str]]:
        dense = {h.chunk_id for h in await index.dense(unit(1, 0, 0, 0), Filter(book=book), 10)}
        keyword = {h.chunk_id for h in await index.keyword("gyroscope", Filter(book=book), 10)}
        return dense, keyword

    await index.upsert(SPEC, ours)
    alone = await found("book")
    assert alone[0] == ours_ids and alone[1] == {ours[0].chunk.chunk_id}
    assert await found("other") == (set(), set())
    await index.upsert(SPEC, theirs)
    assert await found("book") == alone
    assert await found("other") == ({theirs[0].chunk.chunk_id}, {theirs[0].chunk.chunk_id})
    await index.delete_book("other")
    assert await found("book") == alone
    if isinstance(index, EdgeIndex):
        assert index._sole_book.skipped >= 4  # the shortcut was taken, not just harmless


async def test_vectors_of_a_real_embedder_size_are_searched(index: VectorIndex) -> None:
    # 384 dimensions, as MiniLM's: the bundled pgvector's float operators crash the server on
    # 16 or more dimensions on CPUs without AVX-512, which 4-dimension vectors never showed.
    if getattr(index, "half_distance", None) is False and not cpu_has_avx512():
        pytest.skip("the float operators would crash the embedded Postgres on this CPU (see the note above)")
    spec = EmbedderSpec("test:384", 384, 256)
    rng = random.Random(5)
    vectors = [unit(*(rng.uniform(-1, 1) for _ in range(384))) for _ in range(3)]
    records = [IndexRecord(chunk("book", f"p{i}.md", f"Part {i}", f"Part {i} text."), v)
               for i, v in enumerate(vectors)]
    await index.upsert(spec, records)
    query = unit(*(a + 0.2 * b for a, b in zip(vectors[1], vectors[2], strict=True)))
    hits = await index.dense(query, Filter(book="book"), 3)
    assert hits[0].chunk_id == records[1].chunk.chunk_id
    expected = sum(a * b for a, b in zip(query, vectors[1], strict=True))
    assert hits[0].score == pytest.approx(expected, abs=1e-4)
    similarity = await index.similarity(query, [records[2].chunk.chunk_id])
    assert similarity[records[2].chunk.chunk_id] == pytest.approx(
        sum(a * b for a, b in zip(query, vectors[2], strict=True)), abs=1e-4)


async def test_similarity_is_the_cosine_to_each_chunk_asked(filled: VectorIndex) -> None:
    pid, paths, gone = RECORDS[2].chunk.chunk_id, RECORDS[3].chunk.chunk_id, str(uuid.uuid4())
    similarity = await filled.similarity(unit(1, 0, 0, 0), [pid, paths, gone])
    assert set(similarity) == {pid, paths}  # an id no longer stored is left out
    assert similarity[pid] == pytest.approx(0.2 / math.sqrt(1.04), abs=1e-3)
    assert similarity[paths] == pytest.approx(0.0, abs=1e-3)
    assert await filled.similarity(unit(1, 0, 0, 0), []) == {}
    with pytest.raises(FailedPrecondition):
        await filled.similarity([1.0, 0.0], [pid])


async def test_chunks_are_read_in_the_order_asked_and_missing_ids_left_out(filled: VectorIndex) -> None:
    ids = [r.chunk.chunk_id for r in RECORDS]
    gone = str(uuid.uuid4())
    chunks = await filled.chunks([ids[2], gone, ids[0]])
    assert chunks == [RECORDS[2].chunk, RECORDS[0].chunk]
    assert await filled.chunks([]) == []


async def test_keyword_search_is_bm25_over_headings_and_content(filled: VectorIndex) -> None:
    hits = await filled.keyword("proportional gain tuning", Filter(), 5)
    assert (await filled.chunks([hits[0].chunk_id]))[0].file_path == "motion/pid.md"
    assert await filled.keyword("zzzzqx", Filter(), 5) == []


@pytest.mark.parametrize(("flt", "expected"), [
    (Filter(book="other"), {"other:sensors/imu.md"}),
    (Filter(book="book", file_path="motion/pid.md"), {"book:motion/pid.md"}),
    (Filter(book="book", file_path_prefix="sensors/"), {"book:sensors/imu.md", "book:sensors/lidar.md"}),
    (Filter(book="book", module="motion"), {"book:motion/pid.md", "book:motion/paths.md"}),
    (Filter(book="book", max_section_depth=2), {"book:sensors/imu.md", "book:motion/pid.md"}),
])
async def test_filters_restrict_both_search_kinds(filled: VectorIndex, flt: Filter, expected: set[str]) -> None:
    dense = await filled.chunks([h.chunk_id for h in await filled.dense(unit(1, 1, 1, 1), flt, 10)])
    assert {f"{c.book}:{c.file_path}" for c in dense} == expected
    found = await filled.keyword("gyroscope lidar gain path drift", flt, 10)
    keyword = await filled.chunks([h.chunk_id for h in found])
    assert {f"{c.book}:{c.file_path}" for c in keyword} <= expected


async def test_digests_page_through_one_book(filled: VectorIndex) -> None:
    seen: list[str] = []
    offset = ""
    while True:
        page, offset = await filled.digests("book", offset, 2)
        assert len(page) <= 2
        seen += [d.chunk_id for d in page]
        if not offset:
            break
    assert sorted(seen) == sorted(r.chunk.chunk_id for r in RECORDS if r.chunk.book == "book")


async def test_upsert_is_idempotent_and_delete_is_per_book(filled: VectorIndex) -> None:
    await filled.upsert(SPEC, RECORDS)
    assert (await filled.stats()).books == {"book": 4, "other": 1}
    gyro = RECORDS[0].chunk.chunk_id
    await filled.delete("other", [gyro])  # the id belongs to "book": nothing happens
    assert (await filled.stats()).books["book"] == 4
    await filled.delete("book", [gyro])
    assert (await filled.stats()).books == {"book": 3, "other": 1}
    assert await filled.delete_book("book") == 3
    assert (await filled.stats()).books == {"other": 1}


async def test_stats_name_the_embedder_and_backend(filled: VectorIndex) -> None:
    stats = await filled.stats()
    assert stats.embedder == SPEC
    assert stats.backend == filled.backend
    assert stats.collection


async def test_another_embedder_or_dimension_is_refused(filled: VectorIndex) -> None:
    with pytest.raises(FailedPrecondition):
        await filled.upsert(OTHER, [IndexRecord(RECORDS[0].chunk, unit(1, 0, 0))])
    with pytest.raises(FailedPrecondition):
        await filled.dense(unit(1, 0, 0), Filter(), 3)


async def test_an_emptied_index_accepts_a_new_embedder(filled: VectorIndex) -> None:
    await filled.delete_book("book")
    await filled.delete_book("other")
    await filled.upsert(OTHER, [IndexRecord(RECORDS[0].chunk, unit(1, 0, 0))])
    assert await filled.embedder() == OTHER
    assert len(await filled.dense(unit(1, 0, 0), Filter(), 3)) == 1


async def test_an_unreachable_qdrant_server_is_unavailable_not_internal() -> None:
    index = QdrantServerIndex.connect("http://127.0.0.1:9", "", "docusaurus-book", ClusterLayout(), 2.0)
    try:
        assert not await index.ping()
        with pytest.raises(Unavailable, match="unreachable"):
            await index.upsert(SPEC, RECORDS)
    finally:
        await index.close()


def test_backend_is_chosen_by_configuration(tmp_path: Path) -> None:
    from runtime.env import SettingsError
    from services.retrieval.settings import RetrievalSettings

    def backend(**env: str) -> str:
        return RetrievalSettings.from_env({"LECTERN_HOME": str(tmp_path), **env}).backend

    assert backend() == "edge"
    assert backend(QDRANT_URL="https://x.cloud.qdrant.io:6333") == "qdrant"
    assert backend(LECTERN_INDEX_BACKEND="pgvector", LECTERN_PGVECTOR_URL="postgresql://h/db") == "pgvector"
    with pytest.raises(SettingsError, match="QDRANT_URL"):
        backend(LECTERN_INDEX_BACKEND="qdrant")
