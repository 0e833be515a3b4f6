"""google-genai calls in domain terms, shared by the Gemini answerer and the Gemini embedder.

429 and 5xx (and transport failures) are retried under a RetryPolicy with Retry-After
honoured; what still fails becomes ResourceExhausted ("busy, try again shortly"),
Unavailable or FailedPrecondition, never a raw SDK exception.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from runtime.errors import FailedPrecondition, LecternError, ResourceExhausted, Unavailable
from runtime.retry import RetryPolicy, parse_retry_after

log = logging.getLogger("lectern.gemini")

T = TypeVar("T")
FAILURES = (genai_errors.APIError, httpx.TransportError, ConnectionError, TimeoutError)
"""What a Gemini call can fail with; callers catch these and hand them to wait_or_raise."""


def make_client(api_key: str, base_url: str, timeout_seconds: float) -> genai.Client:
    options = types.HttpOptions(base_url=base_url or None, timeout=int(timeout_seconds * 1000))
    return genai.Client(api_key=api_key, http_options=options)


def _retry_after(exc: Exception) -> float | None:
    headers = getattr(getattr(exc, "response", None), "headers", None)
    return parse_retry_after(headers.get("retry-after") if headers is not None else None)


def to_domain(exc: Exception, what: str, retry_after: float | None = None) -> LecternError:
    """`what` names the service in messages, such as "the language model"."""
    if isinstance(exc, genai_errors.APIError):
        if exc.code == 429:
            return ResourceExhausted(f"{what} is busy; try again shortly",
                                     retry_after if retry_after is not None else 5.0)
        if exc.code >= 500:
            return Unavailable(f"{what} failed ({exc.code}); try again shortly")
        return FailedPrecondition(f"Gemini refused the request ({exc.code}): {exc.message or exc.status}")
    return Unavailable(f"{what} is unreachable: {exc}")


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, genai_errors.APIError):
        return exc.code == 429 or exc.code >= 500
    return isinstance(exc, FAILURES)


async def wait_or_raise(attempt: int, exc: Exception, policy: RetryPolicy, what: str) -> None:
    """Sleeps before the next attempt, or raises the domain error when there is none."""
    retry_after = _retry_after(exc) if isinstance(exc, genai_errors.APIError) else None
    delay = policy.delay(attempt, retry_after) if _retryable(exc) else None
    if delay is None:
        raise to_domain(exc, what, retry_after) from exc
    log.warning("Gemini call failed; retrying", extra={"attempt": attempt, "delay_s": round(delay, 2),
                                                       "error": type(exc).__name__})
    await asyncio.sleep(delay)


async def call(make: Callable[[], Awaitable[T]], policy: RetryPolicy, what: str) -> T:
    """Runs one request with retries."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await make()
        except FAILURES as exc:
            await wait_or_raise(attempt, exc, policy, what)
