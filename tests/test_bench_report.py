"""The bench's report: Lectern runs paired with the naive baseline at the same concurrency,
ratios from medians, and the repeated-question runs shown on their own rows."""

from __future__ import annotations

from typing import Any

from bench.main import markdown, ratios


def figure(value: float) -> dict[str, float]:
    return {"median": value, "low": value, "high": value, "runs": 3}


def run(concurrency: int, qps: float, p50: float) -> dict[str, Any]:
    return {"concurrency": concurrency, "qps": figure(qps), "p50_ms": figure(p50), "p95_ms": figure(p50 * 2),
            "p99_ms": figure(p50 * 3)}


RESULT = {"retrieval": {"synthetic-100k": {
    "lectern": [run(1, 100.0, 6.0), run(32, 200.0, 150.0)],
    "baseline": [run(1, 4.0, 240.0)],
    "lectern_repeated": [run(1, 190.0, 4.8), run(32, 230.0, 130.0)],
}}}


def test_ratios_pair_runs_at_the_same_concurrency() -> None:
    assert ratios(RESULT) == {"synthetic-100k@1": {"qps_ratio": 25.0, "p50_speedup": 40.0}}


def test_the_table_shows_unique_and_repeated_question_runs_apart() -> None:
    table = markdown(RESULT).splitlines()
    assert "| synthetic-100k | 1 | 100 | 6.0 | 12.0 | 18.0 | 4.0 | 240.0 |" in table
    assert "| synthetic-100k | 32 | 200 | 150.0 | 300.0 | 450.0 | – | – |" in table
    assert "| synthetic-100k, repeated questions | 1 | 190 | 4.8 | 9.6 | 14.4 | – | – |" in table
    assert "| synthetic-100k, repeated questions | 32 | 230 | 130.0 | 260.0 | 390.0 | – | – |" in table
