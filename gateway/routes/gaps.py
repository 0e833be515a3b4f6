"""The gap report for authors: GET /v1/analytics/gaps (admin, JSON) and /admin/gaps, a static page
that asks for the admin token and calls the JSON API with it (a browser page cannot send a header
on its own, and a token in the URL would end up in logs and history)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response
from lectern.common.v1 import common_pb2
from lectern.retrieval.v1 import retrieval_service_pb2 as rpb
from lectern.sessions.v1 import sessions_service_pb2 as spb

from gateway.gap_report import Topic, group, similarity_for
from gateway.routes.deps import require_admin, upstream
from gateway.schemas import Text
from gateway.upstream import Upstream
from records.proto import gap_question_from_proto
from runtime import limits
from runtime.status import domain_errors

router = APIRouter(tags=["admin"])
STATIC = Path(__file__).resolve().parent.parent / "static"
# The page's script and style are its own; it talks only to this origin.
CSP = ("default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
MAX_QUESTIONS = 2000  # newest questions grouped per report: bounds the embedding work of one request
SECTIONS = 3  # closest sections shown per topic


@router.get("/v1/analytics/gaps", dependencies=[Depends(require_admin)],
            summary="Questions answered badly (refused, not grounded, rated down), grouped into topics")
async def get_gaps(days: int = Query(30, ge=1, le=3650), book: Text = Query("", max_length=limits.BOOK_CHARS),
                   limit: int = Query(20, ge=1, le=100, description="most topics returned"),
                   similarity: float | None = Query(None, ge=0.0, le=1.0,
                                                    description="grouping threshold; default: the embedder's"),
                   up: Upstream = Depends(upstream)) -> JSONResponse:
    until = datetime.now(UTC)
    since = until - timedelta(days=days)
    with domain_errors():
        reply = await up.sessions.GapQuestions(spb.GapQuestionsRequest(days=days, book=book, limit=MAX_QUESTIONS))
    asked = [gap_question_from_proto(q) for q in reply.questions if q.question.strip()]
    body: dict[str, Any] = {"days": days, "book": book, "questions": len(asked), "topics": []}
    if not asked:
        body["similarity"] = similarity
        return JSONResponse(body)
    with domain_errors():
        embedded = await up.retrieval.EmbedQueries(rpb.EmbedQueriesRequest(queries=[a.question for a in asked]))
    threshold = similarity if similarity is not None else similarity_for(embedded.embedder.name)
    topics = group(asked, [list(v.values) for v in embedded.vectors], since, until, threshold)[:limit]
    sections = await asyncio.gather(*(_sections(up, t) for t in topics))
    body["similarity"] = threshold
    body["embedder"] = embedded.embedder.name
    body["topics"] = [_topic(t, s) for t, s in zip(topics, sections, strict=True)]
    return JSONResponse(body)


async def _sections(up: Upstream, topic: Topic) -> list[dict[str, Any]]:
    """The sections nearest the topic's most central question: where an author would add the answer."""
    with domain_errors():
        found = await up.retrieval.Search(rpb.SearchRequest(
            query=topic.questions[0], top_k=SECTIONS, filter=common_pb2.SearchFilter(book=topic.book)))
    return [{"title": r.chunk.title, "heading": " > ".join(r.chunk.heading_path), "file_path": r.chunk.file_path,
             "url": r.chunk.url, "edit_url": r.chunk.edit_url, "score": round(r.score, 4)} for r in found.results]


def _topic(t: Topic, sections: list[dict[str, Any]]) -> dict[str, Any]:
    return {"book": t.book, "count": t.count, "trend": t.trend, "earlier": t.earlier, "recent": t.recent,
            "refused": t.refused, "ungrounded": t.ungrounded, "downvoted": t.downvoted,
            "questions": t.questions, "sections": sections}


@router.get("/admin/gaps", include_in_schema=False)
async def gaps_page() -> HTMLResponse:
    return HTMLResponse((STATIC / "gaps.html").read_text(encoding="utf-8"), headers={"Content-Security-Policy": CSP,
                                                                   "Cache-Control": "no-cache"})


@router.get("/admin/gaps.js", include_in_schema=False)
async def gaps_script() -> Response:
    return Response((STATIC / "gaps.js").read_bytes(), media_type="text/javascript",
                    headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})
