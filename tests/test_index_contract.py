"""One contract, every vector index backend: the same tests run against each of them.

Vectors here are small hand-made ones so that the expected nearest neighbours are obvious;
the stores themselves are the real engines (Qdrant Edge on disk, qdrant-client local mode,
pgvector on the embedded Postgres).
"""

from __future__ import annotations

import asyncio
import math
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest
import pytest_asyncio

from embedding.base import EmbedderSpec
from records.chunk import Chunk
from records.edition import SOLE_EDITION, Edition
from runtime.errors import FailedPrecondition, Unavailable
from services.retrieval.index.base import (
    SERVING,
    Filter,
    FusingIndex,
    Hit,
    IndexRecord,
    Label,
    Staged,
)
from services.retrieval.index.edge import EdgeIndex, EdgeShelf
from services.retrieval.index.pgvector import PgShelf, cpu_has_avx512
from services.retrieval.index.qdrant_server import ClusterLayout, QdrantServerIndex, QdrantShelf
from services.retrieval.index.versioned import VERSION_MARK, Shelf, VersionedIndex, version_name

SPEC = EmbedderSpec("test:axes", 4, 256)
OTHER = EmbedderSpec("test:other", 3, 256)


def unit(*xs: float) -> list[float]:
    norm = math.sqrt(sum(x * x for x in xs))
    return [x / norm for x in xs]


def chunk(book: str, path: str, heading: str, content: str, depth: int = 2, module: str = "") -> Chunk:
    cid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{book}/{path}/{heading}"))
    return Chunk(
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


async def edge(tmp: Path, _: str, collection: str) -> Shelf:
    return EdgeShelf(tmp / "edge", collection)


async def qdrant_local(tmp: Path, _: str, collection: str) -> Shelf:
    # On disk rather than in memory, so that a test can open the same collections again.
    return QdrantShelf(f"path:{tmp / 'qdrant'}", "", collection, ClusterLayout(2, 1, 1))


async def pgvector(tmp: Path, postgres_url: str, collection: str) -> Shelf:
    return await PgShelf.connect(postgres_url, collection, schema_prefix="test_")


async def pgvector_float(tmp: Path, postgres_url: str, collection: str) -> Shelf:
    """pgvector with its float distance operators, as on Neon or RDS, whatever this CPU is (the
    bundled build runs them on the 4-dimension vectors used here, not on 16 or more)."""
    shelf = await pgvector(tmp, postgres_url, collection)
    shelf.half_distance = False  # type: ignore[attr-defined]
    return shelf


BACKENDS: dict[str, Callable[[Path, str, str], Awaitable[Shelf]]] = {
    "qdrant-edge": edge, "qdrant-local": qdrant_local, "pgvector": pgvector, "pgvector-float": pgvector_float,
}

Reopen = Callable[[], Awaitable[VersionedIndex]]


@pytest_asyncio.fixture(params=list(BACKENDS), loop_scope="session")
async def reopen(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Reopen]:
    """Opens the index on the same stored data each time it is called, as a restarted
    retrieval service would (close the previous one first: local Qdrant locks its folder)."""
    url = request.getfixturevalue("postgres_url") if request.param.startswith("pgvector") else ""
    collection = f"book_{uuid.uuid4().hex[:8]}"
    opened: list[VersionedIndex] = []

    async def open_again() -> VersionedIndex:
        opened.append(VersionedIndex(await BACKENDS[request.param](tmp_path, url, collection)))
        return opened[-1]

    yield open_again
    for index in opened:
        if not index.closed:
            await index.close()


@pytest_asyncio.fixture(loop_scope="session")
async def index(reopen: Reopen) -> VersionedIndex:
    return await reopen()


async def read_dense(index: VersionedIndex, vector: list[float], flt: Filter, limit: int) -> list[Hit]:
    async with index.reading(flt.book) as view:
        return await view.dense(vector, flt, limit)


async def read_keyword(index: VersionedIndex, query: str, flt: Filter, limit: int) -> list[Hit]:
    async with index.reading(flt.book) as view:
        return await view.keyword(query, flt, limit)


async def read_chunks(index: VersionedIndex, chunk_ids: list[str], book: str = "") -> list[Chunk]:
    async with index.reading(book) as view:
        return await view.chunks(chunk_ids)


async def read_similarity(index: VersionedIndex, vector: list[float], chunk_ids: list[str],
                     book: str = "") -> dict[str, float]:
    async with index.reading(book) as view:
        return await view.similarity(vector, chunk_ids)


@pytest_asyncio.fixture(loop_scope="session")
async def filled(index: VersionedIndex) -> VersionedIndex:
    assert await index.upsert(SPEC, RECORDS) == len(RECORDS)
    return index


async def test_an_empty_index_knows_no_embedder_and_finds_nothing(index: VersionedIndex) -> None:
    assert await index.embedder() is None
    assert await read_dense(index, unit(1, 0, 0, 0), Filter(), 5) == []
    assert await read_keyword(index, "gyroscope", Filter(), 5) == []
    assert (await index.stats()).books == {}
    assert await index.ping()


async def test_dense_search_ranks_by_cosine_similarity(filled: VersionedIndex) -> None:
    hits = await read_dense(filled, unit(1, 0, 0, 0), Filter(book="book"), 3)
    chunks = await read_chunks(filled, [h.chunk_id for h in hits])
    assert [c.heading_path[-1] for c in chunks] == ["Gyroscope", "Lidar", "PID tuning"]
    assert hits[0].score == pytest.approx(1.0, abs=1e-3)
    assert chunks[0] == RECORDS[0].chunk


async def test_a_book_alone_in_the_index_stays_apart_when_another_arrives_and_leaves(index: VersionedIndex) -> None:
    # Edge drops the book condition while one book holds every point (SoleBook); every
    # backend must give the same answers before, during and after a second book's stay.
    ours = [r for r in RECORDS if r.chunk.book == "book"]
    theirs = [r for r in RECORDS if r.chunk.book == "other"]
    ours_ids = {r.chunk.chunk_id for r in ours}

    async def found(book: str) -> tuple[set[str], set[str]]:
        dense = {h.chunk_id for h in await read_dense(index, unit(1, 0, 0, 0), Filter(book=book), 10)}
        keyword = {h.chunk_id for h in await read_keyword(index, "gyroscope", Filter(book=book), 10)}
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
    if isinstance(index, VersionedIndex) and isinstance(index._shared, EdgeIndex):
        assert index._shared._sole_book.skipped >= 4  # the shortcut was taken, not just harmless


async def test_vectors_of_a_real_embedder_size_are_searched(index: VersionedIndex) -> None:
    # 384 dimensions, as MiniLM's: the bundled pgvector's float operators crash the server on
    # 16 or more dimensions on CPUs without AVX-512, which 4-dimension vectors never showed.
    if getattr(index.shelf, "half_distance", None) is False and not cpu_has_avx512():
        pytest.skip("the float operators would crash the embedded Postgres on this CPU (see the note above)")
    spec = EmbedderSpec("test:384", 384, 256)
    rng = random.Random(5)
    vectors = [unit(*(rng.uniform(-1, 1) for _ in range(384))) for _ in range(3)]
    records = [IndexRecord(chunk("book", f"p{i}.md", f"Part {i}", f"Part {i} text."), v)
               for i, v in enumerate(vectors)]
    await index.upsert(spec, records)
    query = unit(*(a + 0.2 * b for a, b in zip(vectors[1], vectors[2], strict=True)))
    hits = await read_dense(index, query, Filter(book="book"), 3)
    assert hits[0].chunk_id == records[1].chunk.chunk_id
    expected = sum(a * b for a, b in zip(query, vectors[1], strict=True))
    assert hits[0].score == pytest.approx(expected, abs=1e-4)
    similarity = await read_similarity(index, query, [records[2].chunk.chunk_id])
    assert similarity[records[2].chunk.chunk_id] == pytest.approx(
        sum(a * b for a, b in zip(query, vectors[2], strict=True)), abs=1e-4)


async def test_similarity_is_the_cosine_to_each_chunk_asked(filled: VersionedIndex) -> None:
    pid, paths, gone = RECORDS[2].chunk.chunk_id, RECORDS[3].chunk.chunk_id, str(uuid.uuid4())
    similarity = await read_similarity(filled, unit(1, 0, 0, 0), [pid, paths, gone])
    assert set(similarity) == {pid, paths}  # an id no longer stored is left out
    assert similarity[pid] == pytest.approx(0.2 / math.sqrt(1.04), abs=1e-3)
    assert similarity[paths] == pytest.approx(0.0, abs=1e-3)
    assert await read_similarity(filled, unit(1, 0, 0, 0), []) == {}
    with pytest.raises(FailedPrecondition):
        await read_similarity(filled, [1.0, 0.0], [pid])


async def test_chunks_are_read_in_the_order_asked_and_missing_ids_left_out(filled: VersionedIndex) -> None:
    ids = [r.chunk.chunk_id for r in RECORDS]
    gone = str(uuid.uuid4())
    chunks = await read_chunks(filled, [ids[2], gone, ids[0]])
    assert chunks == [RECORDS[2].chunk, RECORDS[0].chunk]
    assert await read_chunks(filled, []) == []


async def test_keyword_search_is_bm25_over_headings_and_content(filled: VersionedIndex) -> None:
    hits = await read_keyword(filled, "proportional gain tuning", Filter(), 5)
    assert (await read_chunks(filled, [hits[0].chunk_id]))[0].file_path == "motion/pid.md"
    assert await read_keyword(filled, "zzzzqx", Filter(), 5) == []


@pytest.mark.parametrize(("flt", "expected"), [
    (Filter(book="other"), {"other:sensors/imu.md"}),
    (Filter(book="book", file_path="motion/pid.md"), {"book:motion/pid.md"}),
    (Filter(book="book", file_path_prefix="sensors/"), {"book:sensors/imu.md", "book:sensors/lidar.md"}),
    (Filter(book="book", module="motion"), {"book:motion/pid.md", "book:motion/paths.md"}),
    (Filter(book="book", max_section_depth=2), {"book:sensors/imu.md", "book:motion/pid.md"}),
])
async def test_filters_restrict_both_search_kinds(filled: VersionedIndex, flt: Filter, expected: set[str]) -> None:
    dense = await read_chunks(filled, [h.chunk_id for h in await read_dense(filled, unit(1, 1, 1, 1), flt, 10)])
    assert {f"{c.book}:{c.file_path}" for c in dense} == expected
    found = await read_keyword(filled, "gyroscope lidar gain path drift", flt, 10)
    keyword = await read_chunks(filled, [h.chunk_id for h in found])
    assert {f"{c.book}:{c.file_path}" for c in keyword} <= expected


async def test_digests_page_through_one_book(filled: VersionedIndex) -> None:
    seen: list[str] = []
    offset = ""
    while True:
        page, offset = await filled.digests("book", offset, 2)
        assert len(page) <= 2
        seen += [d.chunk_id for d in page]
        if not offset:
            break
    assert sorted(seen) == sorted(r.chunk.chunk_id for r in RECORDS if r.chunk.book == "book")


async def test_upsert_is_idempotent_and_delete_is_per_book(filled: VersionedIndex) -> None:
    await filled.upsert(SPEC, RECORDS)
    assert (await filled.stats()).books == {"book": 4, "other": 1}
    gyro = RECORDS[0].chunk.chunk_id
    await filled.delete("other", [gyro])  # the id belongs to "book": nothing happens
    assert (await filled.stats()).books["book"] == 4
    await filled.delete("book", [gyro])
    assert (await filled.stats()).books == {"book": 3, "other": 1}
    assert await filled.delete_book("book") == 3
    assert (await filled.stats()).books == {"other": 1}


async def test_stats_name_the_embedder_and_backend(filled: VersionedIndex) -> None:
    stats = await filled.stats()
    assert stats.embedder == SPEC
    assert stats.backend == filled.backend
    assert stats.collection


async def test_another_embedder_or_dimension_is_refused(filled: VersionedIndex) -> None:
    with pytest.raises(FailedPrecondition):
        await filled.upsert(OTHER, [IndexRecord(RECORDS[0].chunk, unit(1, 0, 0))])
    with pytest.raises(FailedPrecondition):
        await read_dense(filled, unit(1, 0, 0), Filter(), 3)


async def test_an_emptied_index_accepts_a_new_embedder(filled: VersionedIndex) -> None:
    await filled.delete_book("book")
    await filled.delete_book("other")
    await filled.upsert(OTHER, [IndexRecord(RECORDS[0].chunk, unit(1, 0, 0))])
    assert await filled.embedder() == OTHER
    assert len(await read_dense(filled, unit(1, 0, 0), Filter(), 3)) == 1


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


# -- versioned books: a re-index is built beside the served version --------------------------

V2 = [  # the book's next version: two sections rewritten, one kept, one gone, one new
    IndexRecord(replace(RECORDS[0].chunk, content="The gyroscope reports rotation rate.", content_hash="h2-g"),
                unit(1, 0, 0, 0)),
    IndexRecord(RECORDS[1].chunk, RECORDS[1].vector),
    IndexRecord(replace(RECORDS[2].chunk, content="Tune the integral term last.", content_hash="h2-p"),
                unit(0.2, 1, 0, 0)),
    IndexRecord(chunk("book", "sensors/sonar.md", "Sonar", "Sonar echoes measure range underwater."),
                unit(0, 0, 0, 1)),
]


async def book_state(index: VersionedIndex, book: str = "book") -> tuple[set[str], set[str], set[str]]:
    """What readers of the book see: its chunks' contents (by a dense search wide enough for
    all), what keyword search finds for "sonar", and its digests."""
    found = await read_dense(index, unit(1, 1, 1, 1), Filter(book=book), 50)
    contents = {c.content for c in await read_chunks(index, [h.chunk_id for h in found], book)}
    sonar = {h.chunk_id for h in await read_keyword(index, "sonar", Filter(book=book), 5)}
    digests, _ = await index.digests(book, "", 100)
    return contents, sonar, {f"{d.chunk_id}:{d.content_hash}" for d in digests}


async def test_a_staged_version_is_unseen_until_commit_then_replaces_the_served_one_whole(
        filled: VersionedIndex) -> None:
    before = await book_state(filled)
    staged = await filled.stage("book", SPEC)
    assert not staged.resumed
    assert await filled.upsert(SPEC, V2, staged.generation) == len(V2)
    assert await book_state(filled) == before  # readers see the served version, untouched
    assert (await filled.stats()).books == {"book": 4, "other": 1}
    page, _ = await filled.digests("book", "", 100, staged.generation)
    assert {d.chunk_id for d in page} == {r.chunk.chunk_id for r in V2}

    assert await filled.commit("book", staged.generation) == len(V2)
    contents, sonar, digests = await book_state(filled)
    assert contents == {r.chunk.content for r in V2}
    assert sonar == {V2[3].chunk.chunk_id}
    assert digests == {f"{r.chunk.chunk_id}:{r.chunk.content_hash}" for r in V2}
    assert (await filled.stats()).books == {"book": len(V2), "other": 1}
    assert await book_state(filled, "other") != (set(), set(), set())  # the other book is untouched
    version = filled._serving["book"][1]
    if isinstance(version, EdgeIndex):  # a version holds one book: Edge drops the book condition
        assert version._sole_book.skipped > 0
    with pytest.raises(FailedPrecondition, match="no staged version"):
        await filled.upsert(SPEC, V2, staged.generation)  # committed: no longer writable as staged

    # Incremental syncs then write into the version that serves, and the next re-index
    # replaces that version in turn.
    await filled.delete("book", [V2[3].chunk.chunk_id])
    assert len((await book_state(filled))[2]) == len(V2) - 1
    again = await filled.stage("book", SPEC)
    assert again.generation > staged.generation
    await filled.upsert(SPEC, RECORDS[:4], again.generation)
    await filled.commit("book", again.generation)
    assert (await book_state(filled))[0] == {r.chunk.content for r in RECORDS[:4]}


async def test_an_interrupted_re_index_leaves_the_served_version_and_is_resumed_after_a_restart(
        reopen: Reopen) -> None:
    index = await reopen()
    await index.upsert(SPEC, RECORDS)
    before = await book_state(index)
    staged = await index.stage("book", SPEC)
    await index.upsert(SPEC, V2[:2], staged.generation)
    await index.close()  # the process stops part-way through the re-index

    index = await reopen()
    assert await book_state(index) == before
    assert (await index.stats()).books == {"book": 4, "other": 1}
    resumed = await index.stage("book", SPEC)
    assert resumed == Staged(staged.generation, resumed=True)
    page, _ = await index.digests("book", "", 100, resumed.generation)
    assert {d.chunk_id: d.content_hash for d in page} == {r.chunk.chunk_id: r.chunk.content_hash for r in V2[:2]}
    await index.upsert(SPEC, V2[2:], resumed.generation)
    await index.commit("book", resumed.generation)
    await index.close()

    index = await reopen()  # the committed version is the one served after a restart
    assert (await book_state(index))[0] == {r.chunk.content for r in V2}
    assert (await index.stats()).books == {"book": len(V2), "other": 1}


async def test_a_commit_cut_short_after_its_switch_is_finished_by_the_next_start(reopen: Reopen) -> None:
    index = await reopen()
    await index.upsert(SPEC, RECORDS)
    first = await index.stage("book", SPEC)
    await index.upsert(SPEC, RECORDS[:4], first.generation)
    await index.commit("book", first.generation)
    second = await index.stage("book", SPEC)
    await index.upsert(SPEC, V2, second.generation)
    # The switch is written, and the process dies before the replaced version is removed.
    await index._staging["book"][1].relabel(Label("book", second.generation, SERVING))
    await index.close()

    index = await reopen()
    assert (await book_state(index))[0] == {r.chunk.content for r in V2}
    assert (await index.stats()).books == {"book": len(V2), "other": 1}
    names = await index.shelf.names(index.collection + VERSION_MARK)
    assert names == [version_name(index.collection, second.generation)]  # the replaced version is gone


async def test_an_embedder_switch_is_staged_beside_the_old_version(filled: VersionedIndex) -> None:
    before = await book_state(filled)
    staged = await filled.stage("book", OTHER)
    records = [IndexRecord(r.chunk, unit(*r.vector[:3]) if any(r.vector[:3]) else unit(0, 0, 1))
               for r in RECORDS[:4]]
    with pytest.raises(FailedPrecondition):
        await filled.upsert(SPEC, RECORDS[:1], staged.generation)  # the staged version's embedder only
    await filled.upsert(OTHER, records, staged.generation)
    assert await filled.embedder("book") == SPEC
    assert await book_state(filled) == before
    await filled.commit("book", staged.generation)

    assert await filled.embedder("book") == OTHER
    hits = await read_dense(filled, unit(1, 0, 0), Filter(book="book"), 2)
    assert hits[0].chunk_id == RECORDS[0].chunk.chunk_id
    assert await filled.embedder("other") == SPEC  # the other book keeps its embedder and its vectors
    other = await read_dense(filled, unit(1, 0, 0, 0), Filter(book="other"), 2)
    assert [h.chunk_id for h in other] == [RECORDS[4].chunk.chunk_id]


async def test_staging_with_another_embedder_starts_over(filled: VersionedIndex) -> None:
    staged = await filled.stage("book", SPEC)
    await filled.upsert(SPEC, V2, staged.generation)
    fresh = await filled.stage("book", OTHER)
    assert not fresh.resumed and fresh.generation != staged.generation
    assert await filled.digests("book", "", 100, fresh.generation) == ([], "")
    with pytest.raises(FailedPrecondition):
        await filled.digests("book", "", 100, staged.generation)


async def test_a_search_reading_the_old_version_finishes_on_it_and_then_it_is_removed(
        filled: VersionedIndex) -> None:
    first = await filled.stage("book", SPEC)
    await filled.upsert(SPEC, RECORDS[:4], first.generation)
    await filled.commit("book", first.generation)
    second = await filled.stage("book", SPEC)
    await filled.upsert(SPEC, V2, second.generation)
    async with filled.reading("book") as view:  # a search under way when the commit comes
        commit = asyncio.create_task(filled.commit("book", second.generation))
        await asyncio.sleep(0.2)
        assert not commit.done()  # the replaced version waits for its reader
        hits = await view.dense(unit(1, 1, 1, 1), Filter(book="book"), 50)
        assert {c.content for c in await view.chunks([h.chunk_id for h in hits])} == {
            r.chunk.content for r in RECORDS[:4]}
        async with filled.reading("book") as after:  # a search that starts now sees the new version
            found = await after.keyword("sonar", Filter(book="book"), 5)
            assert [h.chunk_id for h in found] == [V2[3].chunk.chunk_id]
    assert await commit == len(V2)
    assert await filled.shelf.names(filled.collection + VERSION_MARK) == [
        version_name(filled.collection, second.generation)]


async def test_a_search_reading_the_shared_store_when_its_book_moves_out_still_finds_the_book(
        filled: VersionedIndex) -> None:
    # The book's first re-index: its points leave the shared store at the commit.
    staged = await filled.stage("book", SPEC)
    await filled.upsert(SPEC, V2, staged.generation)
    before = {r.chunk.content for r in RECORDS if r.chunk.book == "book"}
    async with filled.reading("book") as view:  # a search under way in the shared store
        commit = asyncio.create_task(filled.commit("book", staged.generation))
        await asyncio.sleep(0.2)
        assert not commit.done()  # the book's old points wait for the search reading them
        hits = await view.dense(unit(1, 1, 1, 1), Filter(book="book"), 50)
        assert {c.content for c in await view.chunks([h.chunk_id for h in hits])} == before
        async with filled.reading("book") as after:  # a search that starts now sees the new version
            found = await after.keyword("sonar", Filter(book="book"), 5)
            assert [h.chunk_id for h in found] == [V2[3].chunk.chunk_id]
    assert await commit == len(V2)
    assert (await filled.stats()).books == {"book": len(V2), "other": 1}


async def test_a_search_of_every_book_reads_every_served_version_once(filled: VersionedIndex) -> None:
    staged = await filled.stage("book", SPEC)
    await filled.upsert(SPEC, V2, staged.generation)
    await filled.commit("book", staged.generation)
    hits = await read_dense(filled, unit(1, 1, 1, 1), Filter(), 50)
    found = await read_chunks(filled, [h.chunk_id for h in hits])
    assert sorted(f"{c.book}:{c.content}" for c in found) == sorted(
        f"{r.chunk.book}:{r.chunk.content}" for r in [*V2, RECORDS[4]])
    gyroscope = await read_keyword(filled, "gyroscope", Filter(), 10)
    assert {h.chunk_id for h in gyroscope} == {V2[0].chunk.chunk_id, RECORDS[4].chunk.chunk_id}
    async with filled.reading("") as view:
        if isinstance(view, FusingIndex):
            fused = await view.hybrid(unit(1, 0, 0, 0), "gyroscope", Filter(), 40, 3)
            assert {r.chunk.chunk_id for r in fused.results} >= {V2[0].chunk.chunk_id, RECORDS[4].chunk.chunk_id}


async def test_deleting_a_book_removes_its_versions(filled: VersionedIndex) -> None:
    served = await filled.stage("book", SPEC)
    await filled.upsert(SPEC, V2, served.generation)
    await filled.commit("book", served.generation)
    staged = await filled.stage("book", SPEC)
    await filled.upsert(SPEC, RECORDS[:1], staged.generation)
    assert await filled.delete_book("book") == len(V2)
    assert (await filled.stats()).books == {"other": 1}
    assert await filled.shelf.names(filled.collection + VERSION_MARK) == []
    assert await read_dense(filled, unit(1, 0, 0, 0), Filter(book="book"), 5) == []


async def test_a_replica_picks_up_another_replicas_commit_at_its_next_health_check(reopen: Reopen) -> None:
    first = await reopen()
    if not first.shelf.replicated or isinstance(first.shelf, QdrantShelf):
        pytest.skip("an embedded store has one process; local Qdrant locks its folder to one client")
    await first.upsert(SPEC, RECORDS)
    second = await reopen()  # another retrieval replica on the same Postgres
    before = await book_state(second)
    staged = await first.stage("book", SPEC)
    await first.upsert(SPEC, V2, staged.generation)
    await first.commit("book", staged.generation)
    assert await second.ping()
    assert await book_state(second) == await book_state(first) != before


# --- Versions and locales -----------------------------------------------------------------

_EDITION_KEYS = ("version", "locale", "other_version", "other_locale", "edit_url")


def edition(heading: str, vector: list[float], version: str = "", locale: str = "", other_version: bool = False,
            other_locale: bool = False) -> IndexRecord:
    # The same file in each version and locale, as a versioned and translated site has it.
    base = chunk("site", "intro.md", heading, f"Calibrate the gyroscope ({heading}).")
    return IndexRecord(replace(base, edition=Edition(version, locale, other_version, other_locale),
                               edit_url=f"https://edit.example/{heading}"), vector)


NEXT = edition("next", unit(1, 0, 0, 0), "current", "en", other_version=True)
LAST = edition("last", unit(0.9, 0.1, 0, 0), "1.0", "en")
FRENCH = edition("fr", unit(0.8, 0.2, 0, 0), "1.0", "fr", other_locale=True)
# Written as an ingest before versions and locales existed wrote it: no such keys at all.
OLD = IndexRecord(chunk("site", "old.md", "old", "Calibrate the gyroscope (old)."), unit(0.7, 0.3, 0, 0))


async def test_versions_and_locales_filter_searches_and_old_chunks_count_as_the_default(
        index: VersionedIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    from services.retrieval.index import edge as edge_module
    from services.retrieval.index import pgvector as pg_module
    from services.retrieval.index import qdrant_server as server_module
    from services.retrieval.index.payload import to_payload

    stripped: list[str] = []

    def old_payload(c: Chunk) -> dict[str, object]:
        payload = to_payload(c)
        if c.chunk_id == OLD.chunk.chunk_id:
            for key in _EDITION_KEYS:
                del payload[key]
            stripped.append(c.chunk_id)
        return payload

    for module in (edge_module, pg_module, server_module):
        monkeypatch.setattr(module, "to_payload", old_payload)
    await index.upsert(SPEC, [NEXT, LAST, FRENCH, OLD])
    assert stripped == [OLD.chunk.chunk_id]  # the backend really stored the old shape
    names = {r.chunk.chunk_id: r.chunk.heading_path[-1] for r in (NEXT, LAST, FRENCH, OLD)}

    async def found(flt: Filter) -> set[str]:
        flt = replace(flt, book="site")
        dense = {names[h.chunk_id] for h in await read_dense(index, unit(1, 0, 0, 0), flt, 10)}
        keyword = {names[h.chunk_id] for h in await read_keyword(index, "gyroscope", flt, 10)}
        assert dense == keyword, flt
        async with index.reading("site") as view:
            if isinstance(view, FusingIndex):
                fused = await view.hybrid(unit(1, 0, 0, 0), "gyroscope", flt, 10, 10)
                assert {names[r.chunk.chunk_id] for r in fused.results} == dense, flt
        return dense

    assert await found(Filter()) == {"next", "last", "fr", "old"}
    assert await found(Filter(version="1.0")) == {"last", "fr"}
    assert await found(Filter(version="1.0", locale="fr")) == {"fr"}
    assert await found(Filter(locale="en")) == {"next", "last"}
    assert await found(Filter(version="2.0")) == set()
    assert await found(Filter(default_version=True)) == {"last", "fr", "old"}
    assert await found(Filter(default_locale=True)) == {"next", "last", "old"}
    assert await found(Filter(default_version=True, default_locale=True)) == {"last", "old"}
    assert await found(Filter(version="current", default_locale=True)) == {"next"}

    stored = await read_chunks(index, [FRENCH.chunk.chunk_id, OLD.chunk.chunk_id])
    assert stored[0] == FRENCH.chunk  # every field comes back
    assert (stored[1].edition, stored[1].edit_url) == (SOLE_EDITION, "")
