"""Search: embed the query, run dense and/or BM25 search, fuse, and judge the evidence.

Knows nothing of gRPC: the servicer validates requests and maps this module's results.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum

from embedding.base import Embedder
from services.retrieval.fusion import reciprocal_rank_fusion
from services.retrieval.index.base import Filter, FusingView, Hit, Result, VectorIndex, View
from services.retrieval.scope import NAMED_TERM_CEILING, unknown_term

log = logging.getLogger("lectern.retrieval.search")


class Mode(Enum):
    DENSE = "dense"
    KEYWORD = "keyword"
    HYBRID = "hybrid"


@dataclass(frozen=True)
class Outcome:
    results: list[Result]
    out_of_scope: bool
    mode: Mode
    degraded: bool = False
    degraded_reason: str = ""


class QueryCache:
    """Least-recently-used cache of query vectors: readers repeat questions."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._items: OrderedDict[str, list[float]] = OrderedDict()

    def get(self, key: str) -> list[float] | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: str, value: list[float]) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


class Retriever:
    """Dense, keyword and hybrid search over one index with one query embedder."""

    def __init__(self, index: VectorIndex, embedder: Embedder, default_mode: Mode,
                 out_of_scope_threshold: float) -> None:
        self.index = index
        self.embedder = embedder
        self.default_mode = default_mode
        self.out_of_scope_threshold = out_of_scope_threshold
        self.cache = QueryCache()

    async def _query_vector(self, query: str) -> list[float]:
        cached = self.cache.get(query)
        if cached is None:
            cached = await self.embedder.embed_query(query)
            self.cache.put(query, cached)
        return cached

    async def _vector(self, view: View, query: str) -> tuple[list[float] | None, str]:
        """The query vector, or None and the reason when the embedder cannot serve this index."""
        built_by = await view.embedder()
        if built_by is not None and built_by.name != self.embedder.spec.name:
            return None, (f"index built by {built_by.name}, queries embedded by "
                          f"{self.embedder.spec.name}; fell back to keyword search")
        try:
            return await self._query_vector(query), ""
        except Exception as exc:  # the seed ADRs ask for keyword fallback, not failure
            log.warning("embedder unavailable, falling back to keyword", extra={"error": repr(exc)})
            return None, f"embedder unavailable ({type(exc).__name__}); fell back to keyword search"

    async def _dense(self, view: View, query: str, flt: Filter, limit: int) -> tuple[list[Hit], str]:
        """Dense hits, or none and the reason when the embedder cannot serve this index."""
        vector, reason = await self._vector(view, query)
        if vector is None:
            return [], reason
        return await view.dense(vector, flt, limit), ""

    async def _fill_similarity(self, view: View, query: str, chunk_ids: list[str],
                               similarity: dict[str, float]) -> None:
        """Hits that only keyword search found get their real dense similarity too, so every
        result reports one (the query vector is in the cache: the dense search just used it)."""
        vector = self.cache.get(query)
        if chunk_ids and vector is not None:
            similarity.update(await view.similarity(vector, chunk_ids))

    @staticmethod
    async def _read(view: View, scored: list[tuple[str, float]], similarity: dict[str, float]) -> list[Result]:
        """Reads the payloads of the final hits only (the costly part of a search)."""
        score = dict(scored)
        chunks = await view.chunks([cid for cid, _ in scored])
        return [Result(c, score[c.chunk_id], similarity.get(c.chunk_id, 0.0)) for c in chunks]

    async def _keyword_only(self, view: View, query: str, flt: Filter, top_k: int,
                            degraded_reason: str = "") -> Outcome:
        hits = await view.keyword(query, flt, top_k)
        results = await self._read(view, [(h.chunk_id, h.score) for h in hits], {})
        return Outcome(results, out_of_scope=not results, mode=Mode.KEYWORD,
                       degraded=bool(degraded_reason), degraded_reason=degraded_reason)

    async def _out_of_scope(self, view: View, results: list[Result], best: float, query: str, flt: Filter) -> bool:
        """Too weak to answer from: nothing found, the nearest chunk too far, or (for middling
        evidence) a named term the book never mentions."""
        if not results or best < self.out_of_scope_threshold:
            return True
        return best < NAMED_TERM_CEILING and await unknown_term(view, query, flt.book) is not None

    async def _fused(self, view: FusingView, query: str, top_k: int, flt: Filter) -> Outcome:
        """Hybrid search in one trip to a store that can fuse (the same results as below)."""
        vector, degraded_reason = await self._vector(view, query)
        if vector is None:
            return await self._keyword_only(view, query, flt, top_k, degraded_reason)
        fused = await view.hybrid(vector, query, flt, _pool(top_k), top_k)
        out_of_scope = await self._out_of_scope(view, fused.results, fused.best_similarity, query, flt)
        return Outcome(fused.results, out_of_scope=out_of_scope, mode=Mode.HYBRID)

    async def search(self, query: str, top_k: int, mode: Mode | None, flt: Filter) -> Outcome:
        # One version of the book for the whole search, even if a re-index commits meanwhile.
        async with self.index.reading(flt.book) as view:
            return await self._search(view, query, top_k, mode or self.default_mode, flt)

    async def _search(self, view: View, query: str, top_k: int, mode: Mode, flt: Filter) -> Outcome:
        if mode is Mode.KEYWORD:
            return await self._keyword_only(view, query, flt, top_k)
        if mode is Mode.HYBRID and isinstance(view, FusingView):
            return await self._fused(view, query, top_k, flt)
        pool = _pool(top_k)
        if mode is Mode.HYBRID:
            # Both searches at once: the index runs them on its own threads.
            (dense_hits, degraded_reason), keyword_hits = await asyncio.gather(
                self._dense(view, query, flt, pool), view.keyword(query, flt, pool))
        else:
            (dense_hits, degraded_reason), keyword_hits = await self._dense(view, query, flt, top_k), []
        if degraded_reason:
            if mode is Mode.DENSE:
                return await self._keyword_only(view, query, flt, top_k, degraded_reason)
            results = await self._read(view, [(h.chunk_id, h.score) for h in keyword_hits[:top_k]], {})
            return Outcome(results, out_of_scope=not results, mode=Mode.KEYWORD,
                           degraded=True, degraded_reason=degraded_reason)
        similarity = {h.chunk_id: h.score for h in dense_hits}
        if mode is Mode.DENSE:
            scored = [(h.chunk_id, h.score) for h in dense_hits[:top_k]]
        else:
            scored = reciprocal_rank_fusion([dense_hits, keyword_hits])[:top_k]
        best = max(similarity.values(), default=0.0)
        await self._fill_similarity(view, query, [cid for cid, _ in scored if cid not in similarity], similarity)
        results = await self._read(view, scored, similarity)
        return Outcome(results, out_of_scope=await self._out_of_scope(view, results, best, query, flt), mode=mode)


def _pool(top_k: int) -> int:
    """Candidates each search contributes to the fusion."""
    return max(top_k * 4, 40)
