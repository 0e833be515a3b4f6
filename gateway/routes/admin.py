"""Admin routes (Authorization: Bearer $LECTERN_ADMIN_TOKEN): ingest, removing a book, analytics, retention."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from google.protobuf.json_format import MessageToDict
from lectern.ingest.v1 import ingest_service_pb2 as ipb
from lectern.retrieval.v1 import retrieval_service_pb2 as rpb
from lectern.sessions.v1 import sessions_service_pb2 as spb

from gateway.routes.deps import require_admin, upstream, wants_json
from gateway.schemas import IngestBody, Text
from gateway.sse import frame, sse_response
from gateway.upstream import Upstream
from runtime import limits
from runtime.errors import LecternError
from runtime.status import domain_errors, from_rpc_error

router = APIRouter(tags=["admin"], dependencies=[Depends(require_admin)])


def summary_dict(s: ipb.IngestSummary) -> dict[str, Any]:
    return {
        "files_seen": s.files_seen, "files_skipped": s.files_skipped,
        "files_failed": [{"file_path": f.file_path, "reason": f.reason} for f in s.failed],
        "chunks_new": s.chunks_new, "chunks_changed": s.chunks_changed, "chunks_deleted": s.chunks_deleted,
        "chunks_unchanged": s.chunks_unchanged, "tokens_embedded": s.tokens_embedded,
        "seconds": round(s.seconds, 3), "embed_seconds": round(s.embed_seconds, 3), "dry_run": s.dry_run,
        "chunks_reused": s.chunks_reused, "warnings": list(s.warnings),
    }


@router.post("/v1/ingest",
             summary="Ingest a docs folder or a Docusaurus site root (SSE progress, or the summary as JSON)")
async def ingest(body: IngestBody, request: Request, up: Upstream = Depends(upstream)) -> Response:
    # Ingesting a large book takes minutes: no per-call deadline beyond an hour.
    call = up.ingest.Ingest(ipb.IngestRequest(
        source_dir=body.source_dir, book=body.book, base_url=body.base_url or "",
        route_base_path=body.route_base_path or "", trailing_slash=body.trailing_slash or "",
        manifest=body.manifest or "", last_version=body.last_version or "",
        only_include_versions=body.only_include_versions or (),
        dry_run=body.dry_run, reindex=body.reindex), timeout=3600)
    return await ingest_events_response(call, request, refused)


def refused(error: LecternError) -> Response:
    """An ingest refused before its first event: raised, so the app's handler answers and
    counts it like any other upstream error."""
    raise error


async def ingest_events_response(call: Any, request: Request,
                                 on_refusal: Callable[[LecternError], Response]) -> Response:
    """The events of an ingest or a push's apply (the same events) as the caller asked: the
    summary as JSON, or SSE. The first event is awaited here, so a refusal (bad input, a book
    already being ingested) is an HTTP error, not an SSE stream that starts with one."""
    stream = call.__aiter__()
    try:
        first = await stream.__anext__()
    except grpc.aio.AioRpcError as exc:
        return on_refusal(from_rpc_error(exc))

    if wants_json(request):
        last = first
        async for last in stream:  # noqa: B007 - only the final (summary) event matters
            continue
        return JSONResponse(summary_dict(last.summary))

    async def frames() -> AsyncIterator[bytes]:
        try:
            yield ingest_frame(first)
            async for event in stream:
                yield ingest_frame(event)
        except grpc.aio.AioRpcError as exc:
            err = from_rpc_error(exc)
            yield frame("error", {"code": err.code, "message": err.message})
        finally:
            call.cancel()  # the reader went away or the stream ended; a push's apply goes on in ingest

    return sse_response(frames(), request.app.state.metrics.open_streams)


def ingest_frame(event: ipb.IngestResponse | ipb.ApplyPushResponse) -> bytes:
    """One SSE event of an ingest or a push's apply (the same events): `progress` per file,
    `embedding` per embedded batch, then `summary`."""
    kind = event.WhichOneof("event")
    if kind == "summary":
        return frame("summary", summary_dict(event.summary))
    if kind == "embedding":
        return frame("embedding", {"chunks_embedded": event.embedding.chunks_embedded,
                                   "chunks_total": event.embedding.chunks_total})
    return frame("progress", MessageToDict(event.progress, preserving_proto_field_name=True,
                                           always_print_fields_with_no_presence=True))


@router.get("/v1/analytics", summary="What readers asked and how answers fared (for the book's authors)")
async def get_analytics(days: int = Query(7, ge=1, le=3650), book: Text = Query("", max_length=limits.BOOK_CHARS),
                        limit: int = Query(10, ge=1, le=100), up: Upstream = Depends(upstream)) -> JSONResponse:
    with domain_errors():
        reply = await up.sessions.Analytics(spb.AnalyticsRequest(days=days, book=book, limit=limit))
    return JSONResponse(MessageToDict(reply, preserving_proto_field_name=True,
                                      always_print_fields_with_no_presence=True))


@router.delete("/v1/books/{book}", summary="Remove a book: its chunks in every version, and its outline")
async def delete_book(book: Text = Path(..., min_length=1, max_length=limits.BOOK_CHARS),
                      up: Upstream = Depends(upstream)) -> JSONResponse:
    with domain_errors():
        reply = await up.retrieval.DeleteBook(rpb.DeleteBookRequest(book=book))
    return JSONResponse({"book": book, "chunks_deleted": reply.deleted})


@router.post("/v1/retention/run", summary="Run retention now (conversations past LECTERN_RETENTION_DAYS)")
async def post_retention(up: Upstream = Depends(upstream)) -> JSONResponse:
    with domain_errors():
        reply = await up.sessions.RunRetention(spb.RunRetentionRequest(), timeout=600)
    return JSONResponse(MessageToDict(reply, preserving_proto_field_name=True,
                                      always_print_fields_with_no_presence=True))
