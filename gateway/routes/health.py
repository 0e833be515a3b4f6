"""GET /healthz: each service's health and the active answerer."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from grpc_health.v1 import health_pb2
from lectern.chat.v1 import chat_service_pb2 as chat_pb

from gateway.routes.deps import upstream
from gateway.upstream import Upstream

router = APIRouter()

# What each service's own health stands for.
DATASTORE = {"retrieval": "vector index", "sessions": "postgres", "ingest": "embedder", "chat": "retrieval"}


async def _check(up: Upstream, name: str) -> dict[str, Any]:
    try:
        reply = await up.health(name).Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    except Exception as exc:  # any failure to answer is "unreachable", with the reason
        return {"status": "UNREACHABLE", "dependency": DATASTORE[name], "dependency_ok": False,
                "error": type(exc).__name__}
    return {"status": status, "dependency": DATASTORE[name], "dependency_ok": status == "SERVING"}


async def _llm(up: Upstream) -> str:
    try:
        reply = await up.chat.DescribeAnswerer(chat_pb.DescribeAnswererRequest(), timeout=2)
    except grpc.aio.AioRpcError:
        return "unknown"
    return str(reply.llm)


@router.get("/healthz", tags=["health"], summary="Health of every service and datastore")
async def healthz(up: Upstream = Depends(upstream)) -> JSONResponse:
    names = list(DATASTORE)
    llm, *results = await asyncio.gather(_llm(up), *(_check(up, n) for n in names))
    services = dict(zip(names, results, strict=True))
    ok = all(r["status"] == "SERVING" for r in results)
    body = {"status": "ok" if ok else "degraded", "services": services, "llm": llm}
    return JSONResponse(body, status_code=200 if ok else 503)
