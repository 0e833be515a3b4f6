"""A synthetic index of N chunks (random unit vectors, words drawn from a vocabulary) to measure
search at scale, and ANN recall@10 of the HNSW index against exact search."""

from __future__ import annotations

import asyncio
import random
import uuid
from pathlib import Path

import numpy as np
import qdrant_edge as qe

from embedding.base import EmbedderSpec
from embedding.local import LocalEmbedder
from records.chunk import Chunk
from services.retrieval.index.base import IndexRecord
from services.retrieval.index.edge import DENSE, SEARCH_PARAMS, EdgeIndex

VOCAB = ("robot sensor motor wheel battery reducer store action dispatch state middleware selector thunk "
         "slice query cache render component hook effect context provider test mock server client route "
         "page heading section chunk index vector search filter module book chapter code fence table").split()


def _unit(rng: np.random.Generator, n: int, dim: int, centres: np.ndarray | None = None) -> np.ndarray:
    """Unit vectors; around topic centres when given, as real embeddings cluster by topic."""
    m = rng.standard_normal((n, dim)).astype(np.float32)
    if centres is not None:
        m = centres[rng.integers(0, len(centres), n)] + 0.08 * m
    unit: np.ndarray = m / np.linalg.norm(m, axis=1, keepdims=True)
    return unit


def _centres(dim: int) -> np.ndarray:
    return _unit(np.random.default_rng(3), 500, dim)


async def build(root: Path, n: int, collection: str = "docusaurus-book", batch: int = 2000) -> float:
    """Builds the index under root; returns the seconds spent."""
    import time

    started = time.perf_counter()
    spec: EmbedderSpec = LocalEmbedder.spec
    rng = np.random.default_rng(7)
    words = random.Random(7)
    index = EdgeIndex(root, collection, auto_optimize=False)  # one HNSW build at the end
    centres = _centres(spec.dimension)
    for start in range(0, n, batch):
        vectors = _unit(rng, min(batch, n - start), spec.dimension, centres)
        records = []
        for i, vector in enumerate(vectors, start=start):
            text = " ".join(words.choice(VOCAB) for _ in range(40))
            chunk = Chunk(
                chunk_id=str(uuid.UUID(int=i + 1)), book="synthetic", file_path=f"m{i % 20}/p{i % 500}.md",
                module=f"m{i % 20}", heading_path=(f"Page {i % 500}", f"Section {i}"), section_depth=2 + i % 2,
                content=text, token_count=40, content_hash=str(i), title=f"Page {i % 500}", tags=(), position=i,
                url=f"/docs/p{i % 500}#s{i}",
            )
            records.append(IndexRecord(chunk, vector.tolist()))
        await index.upsert(spec, records)
    await index.optimize()
    await index.close()
    return time.perf_counter() - started


def ann_recall(root: Path, queries: int = 100, k: int = 10, collection: str = "docusaurus-book") -> float:
    """Share of the exact top-k that HNSW search also returns, averaged over random queries."""
    shard = qe.EdgeShard.load(str(root / collection / "shard"))
    rng = np.random.default_rng(11)
    total = 0.0
    try:
        for vector in _unit(rng, queries, LocalEmbedder.spec.dimension, _centres(LocalEmbedder.spec.dimension)):
            q = qe.Query.Nearest(vector.tolist(), using=DENSE)
            approx = {p.id for p in shard.query(qe.QueryRequest(limit=k, query=q, params=SEARCH_PARAMS))}
            exact = {p.id for p in shard.query(qe.QueryRequest(limit=k, query=q,
                                                               params=qe.SearchParams(exact=True)))}
            total += len(approx & exact) / k
    finally:
        shard.close()
    return total / queries


if __name__ == "__main__":
    import sys
    import time

    target = Path(sys.argv[1])
    t = time.perf_counter()
    print("built in", asyncio.run(build(target, int(sys.argv[2]))))
    print("ann recall", ann_recall(target), time.perf_counter() - t)
