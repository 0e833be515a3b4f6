"""Push routes (admin): ``lectern push`` syncs a site to a book over HTTP, changed files only.

1. ``POST /v1/books/{book}/sync`` — the client's path → SHA-256 of every file; the answer says
   what differs and which files to send, and opens a push (409 while another holds the book).
2. ``PUT /v1/books/{book}/pushes/{push_id}/archive`` — those files as a tar archive
   (``Content-Type: application/x-tar``, optionally ``Content-Encoding: gzip``), streamed to
   ingest as it arrives, never held whole.
3. ``POST /v1/books/{book}/pushes/{push_id}/apply`` — ingests the pushed copy; SSE progress
   (``progress``, ``embedding``, ``summary``, ``error``) or, with ``Accept: application/json``,
   the summary.

The limits are ingest's (``services.ingest.push.limits``); the gateway bounds these routes'
bodies from the same values instead of ``LECTERN_MAX_BODY_BYTES``. A limit exceeded is 413.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

import grpc
from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, Response
from lectern.ingest.v1 import ingest_service_pb2 as ipb
from pydantic import Field

from gateway.errors import domain_error_response, error_body
from gateway.routes.admin import ingest_events_response
from gateway.routes.deps import require_admin, upstream
from gateway.schemas import Strict, Text
from gateway.upstream import Upstream
from runtime import limits
from runtime.errors import LecternError
from runtime.status import from_rpc_error
from services.ingest.push.limits import PushLimits

router = APIRouter(tags=["push"], dependencies=[Depends(require_admin)])

SYNC_PATH = re.compile(r"^/v1/books/[^/]+/sync$")
ARCHIVE_PATH = re.compile(r"^/v1/books/[^/]+/pushes/[^/]+/archive$")
# A push's calls take as long as the upload or the embedding does, not the default deadline.
PUSH_CALL_SECONDS = 6 * 3600
_TAR_TYPES = ("application/x-tar", "application/tar")
_GZIP_TYPES = ("application/gzip", "application/x-gzip")

Book = Path(..., min_length=1, max_length=limits.BOOK_CHARS)
PushId = Path(..., min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")


def upload_limit(limits: PushLimits) -> Any:
    """The envelope's body limit for the push routes (method, path) -> bytes, or None."""
    def limit(method: str, path: str) -> int | None:
        if method == "POST" and SYNC_PATH.match(path):
            return limits.plan_body_bytes()
        if method == "PUT" and ARCHIVE_PATH.match(path):
            return limits.upload_body_bytes()
        return None
    return limit


class PushFileBody(Strict):
    path: Text = Field(..., min_length=1, max_length=1024, description="Relative to the site root, /-separated.")
    sha256: Text = Field(..., min_length=64, max_length=64)
    size: int = Field(..., ge=0)


class SyncBody(Strict):
    files: list[PushFileBody] = Field(..., description="Every file of the site that ingest reads.")
    dry_run: bool = Field(False, description="Only report the difference; no push is opened.")
    holder: Text = Field("", max_length=200, description="Who pushes; shown to a second pusher (409).")
    base_url: Text = Field("", max_length=limits.URL_CHARS)
    route_base_path: Text = Field("", max_length=limits.URL_CHARS)
    trailing_slash: Text = Field("", max_length=10)
    include_drafts: bool = False
    last_version: Text = Field("", max_length=limits.VERSION_CHARS)
    only_include_versions: list[Annotated[Text, Field(min_length=1, max_length=limits.VERSION_CHARS)]] = Field(
        [], max_length=limits.GIVEN_VERSIONS)


def _too_large_is_413(error: LecternError) -> JSONResponse:
    """Ingest's RESOURCE_EXHAUSTED on a push is always a limit (it has no rate limit): 413."""
    if error.code == "RESOURCE_EXHAUSTED":
        return JSONResponse(error_body("PAYLOAD_TOO_LARGE", error.message), 413)
    return domain_error_response(error)


@router.post("/v1/books/{book}/sync", summary="Plan a push: what differs from the book's copy, what to send")
async def plan(body: SyncBody, book: str = Book, up: Upstream = Depends(upstream)) -> Response:
    request = ipb.PlanPushRequest(
        book=book, dry_run=body.dry_run, holder=body.holder,
        files=[ipb.PushFile(path=f.path, sha256=f.sha256, size=f.size) for f in body.files],
        options=ipb.PushOptions(base_url=body.base_url, route_base_path=body.route_base_path,
                                trailing_slash=body.trailing_slash, include_drafts=body.include_drafts,
                                last_version=body.last_version, only_include_versions=body.only_include_versions))
    try:
        reply = await up.ingest.PlanPush(request)
    except grpc.aio.AioRpcError as exc:
        return _too_large_is_413(from_rpc_error(exc))
    return JSONResponse({
        "push_id": reply.push_id, "added": list(reply.added), "changed": list(reply.changed),
        "deleted": list(reply.deleted), "unchanged": reply.unchanged, "upload": list(reply.upload),
        "upload_bytes": reply.upload_bytes, "up_to_date": reply.up_to_date, "lease_seconds": reply.lease_seconds,
        "limits": {"max_files": reply.limits.max_files, "max_file_bytes": reply.limits.max_file_bytes,
                   "max_total_bytes": reply.limits.max_total_bytes},
    })


@router.put("/v1/books/{book}/pushes/{push_id}/archive",
            summary="Upload the files a plan asked for, as a tar archive (gzip optional)")
async def upload(request: Request, book: str = Book, push_id: str = PushId,
                 up: Upstream = Depends(upstream)) -> Response:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    coding = request.headers.get("content-encoding", "").strip().lower()
    if kind in _GZIP_TYPES or (kind in _TAR_TYPES and coding == "gzip"):
        encoding = "gzip"
    elif kind in _TAR_TYPES and coding in ("", "identity"):
        encoding = ""
    else:
        return JSONResponse(error_body("UNSUPPORTED_MEDIA_TYPE", "send a tar archive (Content-Type: "
                                       "application/x-tar, optionally with Content-Encoding: gzip)"), 415)
    went: list[BaseException] = []  # why the body stopped: the client went, or the envelope cut it

    async def messages() -> AsyncIterator[ipb.UploadPushRequest]:
        yield ipb.UploadPushRequest(start=ipb.UploadStart(book=book, push_id=push_id, encoding=encoding))
        try:
            async for chunk in request.stream():
                if chunk:
                    yield ipb.UploadPushRequest(data=chunk)
        except BaseException as exc:
            went.append(exc)
            # Said here: an intercepted (traced) call does not cancel itself when its requests fail.
            # Ingest keeps the files that arrived whole, for a re-run.
            call.cancel()
            raise

    call = up.ingest.UploadPush(messages(), timeout=PUSH_CALL_SECONDS)
    try:
        reply = await call
    except (grpc.aio.AioRpcError, asyncio.CancelledError) as exc:
        if went:
            raise went[0] from None
        if not isinstance(exc, grpc.aio.AioRpcError):
            raise
        if went:
            raise went[0] from None
        # Refused part-way: the rest of the body is never read, so the connection must close.
        response = _too_large_is_413(from_rpc_error(exc))
        response.headers["Connection"] = "close"
        return response
    return JSONResponse({"files_received": reply.files_received, "bytes_received": reply.bytes_received,
                         "missing": list(reply.missing)})


@router.post("/v1/books/{book}/pushes/{push_id}/apply",
             summary="Ingest the pushed copy (SSE progress, or the summary as JSON); it finishes even if the "
                     "client goes")
async def apply(request: Request, book: str = Book, push_id: str = PushId,
                up: Upstream = Depends(upstream)) -> Response:
    call = up.ingest.ApplyPush(ipb.ApplyPushRequest(book=book, push_id=push_id), timeout=PUSH_CALL_SECONDS)
    return await ingest_events_response(call, request, _too_large_is_413)
