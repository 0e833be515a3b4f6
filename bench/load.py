"""A bounded closed-loop load generator: N concurrent clients calling as fast as they can for a
fixed duration. Latencies are per call; QPS is completed calls over the wall time."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class LoadResult:
    concurrency: int
    calls: int
    errors: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @property
    def qps(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def run_load(call: Callable[[int], Awaitable[object]], concurrency: int, seconds: float) -> LoadResult:
    """`call(i)` gets a running counter so clients can rotate through their inputs."""
    latencies: list[float] = []
    errors = 0
    counter = 0
    stop_at = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal errors, counter
        while time.perf_counter() < stop_at:
            counter += 1
            started = time.perf_counter()
            try:
                await call(counter)
            except Exception:
                errors += 1
                continue
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    return LoadResult(concurrency, len(latencies), errors, wall, percentile(latencies, 50), percentile(latencies, 95),
                      percentile(latencies, 99))


@dataclass(frozen=True)
class Summary:
    """Median of repeated runs with the spread (min and max)."""

    median: float
    low: float
    high: float
    runs: int


def summary(values: Sequence[float]) -> Summary:
    return Summary(statistics.median(values), min(values), max(values), len(values))


def summarise_runs(runs: Sequence[LoadResult]) -> dict[str, object]:
    return {
        "concurrency": runs[0].concurrency,
        "qps": summary([r.qps for r in runs]).__dict__,
        "p50_ms": summary([r.p50_ms for r in runs]).__dict__,
        "p95_ms": summary([r.p95_ms for r in runs]).__dict__,
        "p99_ms": summary([r.p99_ms for r in runs]).__dict__,
        "errors": sum(r.errors for r in runs),
        "calls": sum(r.calls for r in runs),
    }
