"""Shared route dependencies: the upstream stubs, the settings, admin authentication.

Dependencies are ``async def``: FastAPI runs plain ``def`` ones on a worker thread, a thread
hop on every request for work that never blocks."""

from __future__ import annotations

import hmac

from fastapi import Header, Request

from gateway.settings import GatewaySettings
from gateway.upstream import Upstream
from runtime.errors import PermissionDenied, Unauthenticated


async def upstream(request: Request) -> Upstream:
    value: Upstream = request.app.state.upstream
    return value


def settings(request: Request) -> GatewaySettings:
    value: GatewaySettings = request.app.state.settings
    return value


async def require_admin(request: Request, authorization: str | None = Header(None)) -> None:
    expected = settings(request).admin_token
    if not authorization or not authorization.lower().startswith("bearer "):
        raise Unauthenticated("admin routes need Authorization: Bearer <LECTERN_ADMIN_TOKEN>")
    given = authorization[7:].strip()
    # Constant-time comparison: the time taken says nothing about how much of the token matched.
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise PermissionDenied("wrong admin token")


def wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/event-stream" not in accept
