"""Rate limits, CORS and metrics on a gateway of their own (the shared one runs unlimited)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest_asyncio

from gateway.app import create_app
from gateway.limits import RateLimiter
from gateway.settings import GatewaySettings
from tests.conftest import Stack


def test_the_token_bucket_allows_a_burst_then_the_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=3, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == 1.0  # one token a second
    assert limiter.take("b") == 0.0  # clients are independent
    now[0] = 2.0
    assert limiter.take("a") == 0.0
    assert not RateLimiter(0, 1).take("a") and not RateLimiter(0, 1).enabled


@pytest_asyncio.fixture(loop_scope="session")
async def limited(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    settings = replace(GatewaySettings.from_env({}), peers=stack.peers, admin_token="t", rate_per_minute=60,
                       rate_burst=2, cors_origins=("https://docs.example.com",))
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
        yield client


async def test_public_routes_are_rate_limited_with_retry_after(limited: httpx.AsyncClient) -> None:
    replies = [await limited.post("/v1/search", json={"query": "pid"}) for _ in range(4)]
    assert [r.status_code for r in replies][:2] != [429, 429]
    last = replies[-1]
    assert last.status_code == 429 and last.json()["error"]["code"] == "RESOURCE_EXHAUSTED"
    assert int(last.headers["Retry-After"]) >= 1
    assert (await limited.get("/healthz")).status_code in (200, 503)  # never limited
    metrics = (await limited.get("/metrics")).text
    assert "lectern_rate_limited_total" in metrics and 'route="/v1/search"' in metrics


async def test_cors_only_for_configured_origins(limited: httpx.AsyncClient) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    ok = await limited.options("/v1/chat", headers={"Origin": "https://docs.example.com", **preflight})
    assert ok.headers.get("access-control-allow-origin") == "https://docs.example.com"
    other = await limited.options("/v1/chat", headers={"Origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in other.headers
