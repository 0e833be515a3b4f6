"""Hybrid search on a real Qdrant Edge index: every result reports its dense similarity, also
the ones that only keyword search found."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from embedding.base import EmbedderSpec
from services.retrieval.index.base import Filter, IndexRecord
from services.retrieval.index.edge import EdgeIndex
from services.retrieval.search import Mode, Retriever
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


async def test_hits_only_keyword_search_found_report_their_real_dense_similarity(tmp_path: Path) -> None:
    index = EdgeIndex(tmp_path / "edge", "docusaurus-book")
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
