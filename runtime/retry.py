"""Backoff for a rate-limited or failing model: exponential with full jitter, Retry-After honoured."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


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
