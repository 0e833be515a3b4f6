"""Every error leaves the gateway as JSON ``{"error": {"code", "message", "details"}}``.

gRPC status codes map to HTTP per google.rpc.Code; a stack trace or an internal address never
reaches a client, and every 429 and 503 says when to retry (``Retry-After``).
"""

from __future__ import annotations

import logging
from typing import Any

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from runtime import errors
from runtime.status import from_rpc_error, scrub

log = logging.getLogger("lectern.gateway.errors")

HTTP_STATUS = {
    "INVALID_ARGUMENT": 400, "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404,
    "ABORTED": 409, "FAILED_PRECONDITION": 409, "RESOURCE_EXHAUSTED": 429, "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504, "INTERNAL": 500,
}
_HTTP_CODE = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
              405: "METHOD_NOT_ALLOWED", 406: "NOT_ACCEPTABLE", 408: "REQUEST_TIMEOUT", 409: "CONFLICT",
              413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE", 429: "RESOURCE_EXHAUSTED",
              431: "HEADERS_TOO_LARGE"}
# Retry-After of a 503 (and of a 429 that gave none): a few health checks
# (LECTERN_HEALTH_INTERVAL_SECONDS, 2 s), by when a restarted service or datastore is usually back.
UNAVAILABLE_RETRY_AFTER_SECONDS = 5
RETRY_STATUSES = frozenset({429, 503})


def error_body(code: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or []}}


def domain_error_response(exc: errors.LecternError) -> JSONResponse:
    details: list[dict[str, Any]] = []
    headers: dict[str, str] = {}
    if isinstance(exc, errors.InvalidArgument):
        details = [{"field": v.field, "description": v.description} for v in exc.violations]
    status = HTTP_STATUS.get(exc.code, 500)
    if isinstance(exc, errors.ResourceExhausted):
        headers["Retry-After"] = str(max(1, round(exc.retry_after_seconds)))
    elif status in RETRY_STATUSES:
        headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER_SECONDS)
    return JSONResponse(error_body(exc.code, scrub(exc.message), details), status, headers=headers)


def install(app: FastAPI) -> None:
    def count(request: Request, code: str) -> None:
        metrics = getattr(request.app.state, "metrics", None)
        if metrics is not None and code not in ("INVALID_ARGUMENT", "NOT_FOUND"):
            metrics.upstream_errors.labels(code).inc()

    @app.exception_handler(errors.LecternError)
    async def on_domain(request: Request, exc: errors.LecternError) -> JSONResponse:
        count(request, exc.code)
        return domain_error_response(exc)

    @app.exception_handler(grpc.aio.AioRpcError)
    async def on_rpc(request: Request, exc: grpc.aio.AioRpcError) -> JSONResponse:
        error = from_rpc_error(exc)
        count(request, error.code)
        return domain_error_response(error)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"), "description": e.get("msg", "")}
            for e in exc.errors()
        ]
        return JSONResponse(error_body("INVALID_ARGUMENT", "the request body is not valid", details), 400)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODE.get(exc.status_code, "HTTP_ERROR")
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error", exc_info=exc)
        return JSONResponse(error_body("INTERNAL", "internal error; see the gateway log"), 500)
