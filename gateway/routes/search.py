"""POST /v1/search."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from lectern.common.v1 import common_pb2
from lectern.retrieval.v1 import retrieval_service_pb2 as rpb

from gateway.routes.deps import upstream
from gateway.schemas import SearchBody, SearchHit, SearchReply
from gateway.upstream import Upstream

router = APIRouter()
MODES = {None: rpb.SEARCH_MODE_UNSPECIFIED, "dense": rpb.SEARCH_MODE_DENSE, "keyword": rpb.SEARCH_MODE_KEYWORD,
         "hybrid": rpb.SEARCH_MODE_HYBRID}


def search_request(body: SearchBody) -> rpb.SearchRequest:
    f = body.filters
    flt = common_pb2.SearchFilter(book=body.book)
    if f is not None:
        if f.file_path:
            # A trailing "/" asks for a folder; anything else is an exact file.
            if f.file_path.endswith("/"):
                flt.file_path_prefix = f.file_path
            else:
                flt.file_path = f.file_path
        flt.module = f.module or ""
        flt.max_section_depth = f.section_depth or 0
        flt.version = f.version or ""
        flt.locale = f.locale or ""
    request = rpb.SearchRequest(query=body.query, top_k=body.top_k, mode=MODES[body.mode], filter=flt)
    if body.rerank is not None:  # unset stays unset: the server's default decides
        request.rerank = body.rerank
    return request


@router.post("/v1/search", response_model=SearchReply, tags=["search"], summary="Search the book")
async def search(body: SearchBody, up: Upstream = Depends(upstream)) -> SearchReply:
    reply = await up.retrieval.Search(search_request(body))
    return SearchReply(
        results=[SearchHit(chunk_id=r.chunk.chunk_id, file_path=r.chunk.file_path,
                           heading_path=list(r.chunk.heading_path), section_depth=r.chunk.section_depth,
                           url=r.chunk.url, content=r.chunk.content, score=r.score, version=r.chunk.version,
                           locale=r.chunk.locale, dense_similarity=r.dense_similarity,
                           rerank_score=r.rerank_score if r.HasField("rerank_score") else None)
                 for r in reply.results],
        out_of_scope=reply.out_of_scope, degraded=reply.degraded, degraded_reason=reply.degraded_reason,
        reranked=reply.reranked,
    )
