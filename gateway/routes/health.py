"""GET /healthz: each service's health, that of each dependency its calls need, and the active
answerer."""

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

# The one dependency a service's own health stands for, when it reports none by name (a
# service with several reports each as "<service>/<dependency>", see runtime.server).
DATASTORE = {"retrieval": "vector index", "sessions": "postgres", "ingest": "embedder"}


def _name(status: int) -> str:
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(status))


async def _check(up: Upstream, name: str) -> dict[str, Any]:
    try:
        reply = await up.health(name).List(health_pb2.HealthListRequest(), timeout=2)
    except Exception as exc:  # any failure to answer is "unreachable", with the reason
        return {"status": "UNREACHABLE", "dependencies": {}, "error": type(exc).__name__}
    status = _name(reply.statuses[""].status) if "" in reply.statuses else "UNKNOWN"
    dependencies = {key.rpartition("/")[2]: _name(s.status) for key, s in reply.statuses.items() if "/" in key}
    if not dependencies and name in DATASTORE:
        dependencies = {DATASTORE[name]: status}
    return {"status": status, "dependencies": dict(sorted(dependencies.items()))}


async def _llm(up: Upstream) -> str:
    try:
        reply = await up.chat.DescribeAnswerer(chat_pb.DescribeAnswererRequest(), timeout=2)
    except grpc.aio.AioRpcError:
        return "unknown"
    return str(reply.llm)


@router.get("/healthz", tags=["health"], summary="Health of every service and datastore")
async def healthz(up: Upstream = Depends(upstream)) -> JSONResponse:
    names = list(up.channels)
    llm, *results = await asyncio.gather(_llm(up), *(_check(up, n) for n in names))
    services = dict(zip(names, results, strict=True))
    ok = all(r["status"] == "SERVING" for r in results)
    body = {"status": "ok" if ok else "degraded", "services": services, "llm": llm}
    return JSONResponse(body, status_code=200 if ok else 503)
