"""When to restart a crashed process: exponential backoff, bounded, forgiven after a healthy spell."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RestartPolicy:
    """One per supervised process. ``after_crash`` gives the delay before the next start, or None
    once the process keeps crashing without ever staying up (then the supervisor gives up)."""

    first_delay: float = 0.5
    max_delay: float = 10.0
    healthy_after: float = 30.0
    """A process that served this long before crashing starts again from ``first_delay``."""
    max_attempts: int = 8
    """Consecutive crashes (none of them after a healthy spell) before giving up."""
    attempts: int = 0

    def after_crash(self, served_seconds: float) -> float | None:
        """``served_seconds``: how long it was SERVING before it died (0 if it never got there)."""
        if served_seconds >= self.healthy_after:
            self.attempts = 0
        self.attempts += 1
        if self.attempts > self.max_attempts:
            return None
        return float(min(self.max_delay, self.first_delay * 2 ** (self.attempts - 1)))
