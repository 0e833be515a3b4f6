"""Whether the language model's server answers, for /healthz: a cheap call (an OpenAI-compatible
server's model list), bounded and cached, so health checks never wait on, nor load, the model."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

CHECK_SECONDS = 2.0  # one check's bound: health answers within the gateway's 2 s
CACHE_SECONDS = 30.0  # a result is reused this long: health polls must not become model traffic


@dataclass(frozen=True)
class LlmHealth:
    answers: bool | None  # None: not checked (no cheap check for this model)
    error: str = ""


class Liveness:
    """Runs ``probe`` (raises when the server does not answer) at most once per CACHE_SECONDS;
    callers at the same time share one check. No probe: the answerer is local (always answers)
    or cannot be checked cheaply (``unchecked``)."""

    def __init__(self, probe: Callable[[], Awaitable[object]] | None, *, unchecked: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.probe = probe
        self.unchecked = unchecked
        self.clock = clock
        self._last: tuple[float, LlmHealth] | None = None
        self._running: asyncio.Task[LlmHealth] | None = None

    async def check(self) -> LlmHealth:
        if self.probe is None:
            return LlmHealth(None if self.unchecked else True)
        if self._last is not None and self.clock() - self._last[0] < CACHE_SECONDS:
            return self._last[1]
        if self._running is None:
            self._running = asyncio.create_task(self._run(self.probe))
        # Shielded: a caller that gives up does not cancel the check the others wait for.
        return await asyncio.shield(self._running)

    async def _run(self, probe: Callable[[], Awaitable[object]]) -> LlmHealth:
        try:
            async with asyncio.timeout(CHECK_SECONDS):
                await probe()
            result = LlmHealth(True)
        except TimeoutError:
            result = LlmHealth(False, f"no answer within {CHECK_SECONDS:g} s")
        except Exception as exc:  # any failure means "does not answer", with its kind
            result = LlmHealth(False, type(exc).__name__)
        finally:
            self._running = None
        self._last = (self.clock(), result)
        return result
