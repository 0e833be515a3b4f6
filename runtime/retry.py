"""Backoff for a rate-limited or failing model: exponential with full jitter, Retry-After honoured.

ModelCalls runs any provider's calls under that policy: 429 and 5xx (and transport failures)
are retried, what still fails becomes ResourceExhausted ("busy, try again shortly"),
Unavailable or FailedPrecondition, never a raw SDK exception. Each SDK only says, through
its Classify function, what its exceptions mean.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from runtime.errors import FailedPrecondition, LecternError, ResourceExhausted, Unavailable

log = logging.getLogger("lectern.llm")

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before giving up on a model call."""

    attempts: int = 3
    """Calls in all, the first included."""
    base_seconds: float = 0.5
    """Ceiling of the first backoff; it doubles with each attempt."""
    max_wait_seconds: float = 10.0
    """Longest single wait. A Retry-After beyond it ends the retries at once: the reader
    would rather hear "busy" now than wait a minute."""

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random | None = None) -> float | None:
        """Seconds to wait after failed attempt number `attempt` (1-based); None means give up."""
        if attempt >= self.attempts:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_wait_seconds else None
        ceiling = min(self.max_wait_seconds, self.base_seconds * 2 ** (attempt - 1))
        # Full jitter spreads many clients' retries apart instead of synchronising them.
        return (rng or random).uniform(0, ceiling)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: either a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class Failure:
    """A failed model call in the terms the retry policy needs, whatever the SDK."""

    status: int | None
    """HTTP status; None for a transport failure or a timeout."""
    detail: str
    retry_after: float | None = None
    malformed: bool = False
    """The reply could not be read (a truncated or garbled stream): never retried."""

    @property
    def retryable(self) -> bool:
        return not self.malformed and (self.status is None or self.status == 429 or self.status >= 500)


Classify = Callable[[BaseException], Failure | None]
"""An SDK's failures as Failure; None for anything else, which then propagates untouched."""


@dataclass(frozen=True)
class ModelCalls:
    """How one model provider's calls are retried and reported."""

    provider: str
    """Names the provider in a refusal, such as "Gemini"."""
    classify: Classify
    what: str = "the language model"
    """Names the service in messages the reader sees."""
    policy: RetryPolicy = field(default_factory=RetryPolicy)

    def to_domain(self, failure: Failure) -> LecternError:
        if failure.malformed:
            return Unavailable(f"{self.what}'s answer broke off; try again")
        if failure.status is None:
            return Unavailable(f"{self.what} is unreachable: {failure.detail}")
        if failure.status == 429:
            return ResourceExhausted(f"{self.what} is busy; try again shortly",
                                     failure.retry_after if failure.retry_after is not None else 5.0)
        if failure.status >= 500:
            return Unavailable(f"{self.what} failed ({failure.status}); try again shortly")
        return FailedPrecondition(f"{self.provider} refused the request ({failure.status}): {failure.detail}")

    async def wait_or_raise(self, attempt: int, exc: BaseException, failure: Failure) -> None:
        """Sleeps before the next attempt, or raises the domain error when there is none."""
        delay = self.policy.delay(attempt, failure.retry_after) if failure.retryable else None
        if delay is None:
            raise self.to_domain(failure) from exc
        log.warning("model call failed; retrying", extra={"provider": self.provider, "attempt": attempt,
                                                          "delay_s": round(delay, 2), "error": type(exc).__name__})
        await asyncio.sleep(delay)

    async def call(self, make: Callable[[], Awaitable[T]]) -> T:
        """Runs one request with retries."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await make()
            except Exception as exc:
                failure = self.classify(exc)
                if failure is None:
                    raise
                await self.wait_or_raise(attempt, exc, failure)

    async def stream(self, open_: Callable[[], AsyncGenerator[T, None]]) -> AsyncIterator[T]:
        """A streamed reply, retried only before its first item: after that the reader has seen
        text, and a failure ends the answer with an error instead."""
        attempt = 0
        while True:
            attempt += 1
            started = False
            try:
                # aclosing: a reader who goes away closes the upstream request at once, not at GC.
                async with aclosing(open_()) as items:
                    async for item in items:
                        started = True
                        yield item
                return
            except Exception as exc:
                failure = self.classify(exc)
                if failure is None:
                    raise
                if started or failure.malformed:
                    raise Unavailable(f"{self.what}'s answer broke off; try again") from exc
                await self.wait_or_raise(attempt, exc, failure)
