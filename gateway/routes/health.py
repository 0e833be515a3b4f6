"""GET /healthz: each service's health, that of each dependency its calls need, the active
answerer (``llm``, as before) and whether its model server answers (``llm_answers``: true, false
with ``llm_error``, or null when unchecked)."""

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


async def _llm(up: Upstream) -> dict[str, Any]:
    """The active model and whether its server answers (chat checks it cheaply and caches the
    result; null when it cannot be checked cheaply)."""
    try:
        reply = await up.chat.DescribeAnswerer(chat_pb.DescribeAnswererRequest(), timeout=3)
    except grpc.aio.AioRpcError:
        return {"llm": "unknown", "llm_answers": None}
    out: dict[str, Any] = {"llm": str(reply.llm), "llm_answers": reply.answers if reply.HasField("answers") else None}
    if reply.error:
        out["llm_error"] = reply.error
    return out


@router.get("/healthz", tags=["health"], summary="Health of every service and datastore")
async def healthz(up: Upstream = Depends(upstream)) -> JSONResponse:
    names = list(up.channels)
    llm, *results = await asyncio.gather(_llm(up), *(_check(up, n) for n in names))
    services = dict(zip(names, results, strict=True))
    ok = all(r["status"] == "SERVING" for r in results)
    # A model server that does not answer leaves status alone: chat still answers "busy" cleanly.
    body = {"status": "ok" if ok else "degraded", "services": services, **llm}
    return JSONResponse(body, status_code=200 if ok else 503)
