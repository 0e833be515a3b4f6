"""Search: embed the query, run dense and/or BM25 search, fuse, and judge the evidence.

Knows nothing of gRPC: the servicer validates requests and maps this module's results.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Generic, Protocol, TypeVar

from embedding.base import Embedder
from embedding.models import ModelUnavailable
from embedding.reranker import passage_text
from runtime.errors import NotFound
from services.retrieval.fusion import blended, fetch_size, fuse_pools
from services.retrieval.index.base import Filter, FusingView, Hit, Result, VectorIndex, View
from services.retrieval.scope import (
    CODE_LOOKUP_HITS,
    NAMED_TERM_CEILING,
    RERANK_RELEVANT_LOGIT,
    absent_code,
    absent_term,
    mentions_code,
    unknown_term,
)

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
    rerank_scores: dict[str, float] = dataclasses.field(default_factory=dict)
    """The cross-encoder's score of each reranked result, by chunk id; empty when none ran."""
    best_similarity: float = 0.0
    """The best dense similarity of any chunk (0 when no dense search ran)."""

    @property
    def reranked(self) -> bool:
        return bool(self.rerank_scores)


K = TypeVar("K")
V = TypeVar("V")


class LruCache(Generic[K, V]):
    """Least-recently-used cache: readers repeat questions, and chat searches a question again."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


QueryCache = LruCache[str, list[float]]


class Scorer(Protocol):
    """A cross-encoder: one relevance score per (query, passage), higher is better. Raises
    embedding.models.ModelUnavailable when its model cannot be used."""

    @property
    def name(self) -> str: ...

    async def ascore(self, query: str, passages: Sequence[str]) -> list[float]: ...


@dataclass(frozen=True)
class Reranking:
    """How fused results are rescored: by which model, over how many candidates, by default
    or only when asked, and the score under which the best candidate cannot answer."""

    scorer: Scorer
    candidates: int
    default: bool
    out_of_scope_below: float
    """A best cross-encoder logit under this means no candidate answers the question."""


class Retriever:
    """Dense, keyword and hybrid search over one index with one query embedder, optionally
    reranked by a cross-encoder."""

    def __init__(self, index: VectorIndex, embedder: Embedder, default_mode: Mode,
                 out_of_scope_threshold: float, named_term_ceiling: float = NAMED_TERM_CEILING,
                 reranking: Reranking | None = None) -> None:
        self.index = index
        self.embedder = embedder
        self.default_mode = default_mode
        self.out_of_scope_threshold = out_of_scope_threshold
        self.named_term_ceiling = named_term_ceiling
        self.reranking = reranking
        self.cache = QueryCache()
        # (query, chunk id, content hash): a pair's score stays right across re-indexes that
        # keep the chunk, and is dropped with it when its content changes.
        self.pair_scores: LruCache[tuple[str, str, str], float] = LruCache(16384)

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
        except Exception as exc:  # a search without its embedder still answers, by keyword
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
        return best < self.named_term_ceiling and await unknown_term(view, query, flt.book) is not None

    async def _fused(self, view: FusingView, query: str, top_k: int, flt: Filter) -> Outcome:
        """Hybrid search in one trip to a store that can fuse (the same results as below)."""
        vector, degraded_reason = await self._vector(view, query)
        if vector is None:
            return await self._keyword_only(view, query, flt, top_k, degraded_reason)
        fused = await view.hybrid(vector, query, flt, _pool(top_k), top_k)
        out_of_scope = await self._out_of_scope(view, fused.results, fused.best_similarity, query, flt)
        return Outcome(fused.results, out_of_scope=out_of_scope, mode=Mode.HYBRID,
                       best_similarity=fused.best_similarity)

    async def search(self, query: str, top_k: int, mode: Mode | None, flt: Filter,
                     rerank: bool | None = None) -> Outcome:
        """The top_k results; `rerank` None means the service's default. A reranked search
        fetches max(top_k, candidates) fused results, rescores the first `candidates` and cuts."""
        rr = self.reranking
        on = rr is not None and (rr.default if rerank is None else rerank)
        fetch = max(top_k, rr.candidates) if on and rr is not None else top_k
        # One version of the book for the whole search, even if a re-index commits meanwhile.
        async with self.index.reading(flt.book) as view:
            outcome = await self._search(view, query, fetch, mode or self.default_mode, flt)
            if flt.book and not outcome.results:
                await self._known(flt.book)
            if rr is not None and on:
                return await self._rerank(rr, query, outcome, top_k, view, flt)
            if rerank and rr is None:
                return dataclasses.replace(outcome, degraded=True, degraded_reason=_joined(
                    outcome.degraded_reason, "no reranker is configured; results in fused order"))
            return outcome

    async def _known(self, book: str) -> None:
        """A search of a book the index does not hold is a mistake (a widget's book id mistyped, a
        book not yet ingested, or removed), not a question the book cannot answer. Checked only
        when nothing was found, so a search that finds something costs nothing more."""
        books = (await self.index.stats()).books
        if book not in books:
            held = ", ".join(repr(b) for b in sorted(books)[:MAX_BOOKS_NAMED]) or "none"
            raise NotFound(f"no book {book!r} is in the index (books: {held}); ingest it first")

    async def _scores(self, scorer: Scorer, query: str, results: Sequence[Result]) -> list[float]:
        """The cross-encoder's scores, scoring only the pairs not already cached."""
        keys = [(query, r.chunk.chunk_id, r.chunk.content_hash) for r in results]
        known = [self.pair_scores.get(k) for k in keys]
        missing = [i for i, v in enumerate(known) if v is None]
        if missing:
            fresh = await scorer.ascore(query, [passage_text(results[i].chunk.heading_path, results[i].chunk.content)
                                                for i in missing])
            for i, value in zip(missing, fresh, strict=True):
                known[i] = value
                self.pair_scores.put(keys[i], value)
        return [v for v in known if v is not None]

    async def _rerank(self, rr: Reranking, query: str, outcome: Outcome, top_k: int, view: View,
                      flt: Filter) -> Outcome:
        """Reorders the first `rr.candidates` results by their fused and cross-encoder scores
        blended (fusion.blended), cuts to top_k, and judges scope on the best cross-encoder
        score. When the model cannot be used the fused order stands, degraded, with the reason."""
        head = outcome.results[:rr.candidates]
        if not head:
            return outcome
        try:
            scores = await self._scores(rr.scorer, query, head)
        except Exception as exc:  # a reranker that fails must cost the ordering, never the search
            reason = exc.reason if isinstance(exc, ModelUnavailable) else f"{type(exc).__name__}: {exc}"
            log.warning("reranker unavailable, keeping the fused order", extra={"reason": reason})
            return dataclasses.replace(outcome, results=outcome.results[:top_k], degraded=True,
                                       degraded_reason=_joined(outcome.degraded_reason,
                                                               f"reranker unavailable ({reason}); "
                                                               "results in fused order"))
        ordering = blended([r.score for r in head], scores)
        reordered = [dataclasses.replace(head[i], score=ordering[i]) for i in reranked_order(ordering)]
        rerank_scores = {r.chunk.chunk_id: s for r, s in zip(head, scores, strict=True)}
        # Results past the candidates keep their fused order, scored just under the last
        # reranked one, so `score` still orders the whole list on one scale.
        floor = min(ordering)
        tail = [dataclasses.replace(r, score=floor - TAIL_STEP * n)
                for n, r in enumerate(outcome.results[rr.candidates:top_k], start=1)]
        results = (reordered + tail)[:top_k]
        return dataclasses.replace(
            outcome, results=results,
            out_of_scope=await self._reranked_out_of_scope(rr, outcome, max(scores), query, view, flt),
            rerank_scores={r.chunk.chunk_id: rerank_scores[r.chunk.chunk_id] for r in results[:len(head)]})

    async def _reranked_out_of_scope(self, rr: Reranking, outcome: Outcome, best_score: float, query: str,
                                     view: View, flt: Filter) -> bool:
        """Scope judged on evidence. Out of scope when:
        - no candidate reads as an answer to the cross-encoder;
        - both models are weak at once: the nearest chunk under the dense floor and no candidate
          the cross-encoder judges relevant (a question from another field whose words brush the
          book's). The floor alone is not enough: it refused in-scope questions the
          cross-encoder answers ("XSHUT pin");
        - the question names something none of the candidates mentions while the nearest chunk
          is only middling. That catches near-domain questions (another library's API) that
          the cross-encoder scores like in-scope ones; a name the book mentions only elsewhere
          is no evidence either. The candidates are every fused result fetched, at least the
          reranked ones;
        - the question writes as code a name (`cy.mount`, `mkdocs.yml`) that neither the candidates
          nor the book's chunks that BM25 finds for it hold, however close the evidence reads:
          near-domain questions about a neighbouring tool's API read much like the book. The book
          is asked too, since a reader's own code (`state.value = 5`) may be written as the
          book writes it elsewhere."""
        if best_score < rr.out_of_scope_below:
            return True
        dense_ran = outcome.mode is not Mode.KEYWORD
        if dense_ran and outcome.best_similarity < self.out_of_scope_threshold and best_score < RERANK_RELEVANT_LOGIT:
            return True
        passages = [passage_text(r.chunk.heading_path, r.chunk.content) for r in outcome.results]
        for term in absent_code(query, passages):
            if await self._foreign_code(view, term, flt):
                return True
        return outcome.best_similarity < self.named_term_ceiling and absent_term(query, passages) is not None

    @staticmethod
    async def _foreign_code(view: View, term: str, flt: Filter) -> bool:
        """Whether none of the chunks BM25 ranks first for a code term names it (BM25 reads
        `cy.mount` as "cy" and "mount", so a chunk that names it ranks among those with both)."""
        hits = await view.keyword(term, flt, CODE_LOOKUP_HITS)
        chunks = await view.chunks([h.chunk_id for h in hits])
        return not any(mentions_code(passage_text(c.heading_path, c.content), term) for c in chunks)

    async def _search(self, view: View, query: str, top_k: int, mode: Mode, flt: Filter) -> Outcome:
        if mode is Mode.KEYWORD:
            return await self._keyword_only(view, query, flt, top_k)
        if mode is Mode.HYBRID and isinstance(view, FusingView):
            return await self._fused(view, query, top_k, flt)
        pool = _pool(top_k)
        if mode is Mode.HYBRID:
            # Both searches at once: the index runs them on its own threads.
            (dense_hits, degraded_reason), keyword_hits = await asyncio.gather(
                self._dense(view, query, flt, fetch_size(pool)), view.keyword(query, flt, fetch_size(pool)))
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
            scored = fuse_pools([dense_hits, keyword_hits], pool)[:top_k]
        best = max(similarity.values(), default=0.0)
        await self._fill_similarity(view, query, [cid for cid, _ in scored if cid not in similarity], similarity)
        results = await self._read(view, scored, similarity)
        return Outcome(results, out_of_scope=await self._out_of_scope(view, results, best, query, flt), mode=mode,
                       best_similarity=best)


MAX_BOOKS_NAMED = 10  # books an unknown book's error lists

# A fused result past the reranked candidates scores this much under the one before it.
TAIL_STEP = 1e-3


def reranked_order(scores: Sequence[float]) -> list[int]:
    """Positions of the candidates (given in fused order), best score first; ties keep the fused
    order."""
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


def _joined(*reasons: str) -> str:
    return "; ".join(r for r in reasons if r)


# Hits each ranking contributes to the fusion. Fixed, not grown with top_k: a deeper pool changes
# every fused score, so asking for more results would reorder the first ones.
FUSION_POOL = 40


def _pool(top_k: int) -> int:
    """Candidates each search contributes to the fusion: FUSION_POOL, so that the first k results
    are the same whatever top_k up to it asks for; a bigger top_k needs that many."""
    return max(top_k, FUSION_POOL)
