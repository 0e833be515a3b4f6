"""The ONNX query encoder agrees with sentence-transformers, and concurrent queries share calls."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from embedding import onnx_query
from embedding.local import LocalEmbedder
from embedding.onnx_query import FP32_FILE, INT8_FILE, OnnxQueryEncoder, query_batcher

QUERIES = ["How do I tune the PID controller?", "What does store.subscribe() return?",
           "Rover drives in a curve", "x"]


async def test_onnx_query_vectors_match_the_document_model(home: Path) -> None:
    reference = np.array(await LocalEmbedder(query_encoder="torch").embed_documents(QUERIES))
    exact = OnnxQueryEncoder(home / "models", int8=False)
    assert float(np.min(np.sum(np.array(exact.encode(QUERIES)) * reference, axis=1))) > 0.9999
    assert exact.variant == "onnx-fp32"
    quantised = OnnxQueryEncoder(home / "models")
    fast = np.array(quantised.encode(QUERIES))
    assert quantised.variant == "onnx-int8"
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    agreement = np.sum(fast * reference, axis=1)
    assert float(np.min(agreement)) >= 0.97  # measured 0.977 ("x") to 0.990
    # A question's vector depends a little on the batch it shares (activations are quantised
    # per call), but no more than int8 differs from float.
    alone = np.array([quantised.encode([q])[0] for q in QUERIES])
    assert float(np.min(np.sum(fast * alone, axis=1))) >= 0.96  # measured 0.973 ("x") to 0.993
    assert (home / "models" / FP32_FILE).exists() and (home / "models" / INT8_FILE).exists()  # cached


async def test_int8_that_disagrees_with_float_is_not_used(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnx_query, "MIN_AGREEMENT", 1.01)  # no quantised model can pass this
    encoder = OnnxQueryEncoder(home / "models")
    encoder.encode(QUERIES[:1])
    assert encoder.variant == "onnx-fp32"


async def test_concurrent_queries_are_batched_into_few_model_calls() -> None:
    seen: list[int] = []
    gate = threading.Event()

    def encode(texts: list[str]) -> list[list[float]]:
        gate.wait(5)  # the first call blocks while the others queue up
        seen.append(len(texts))
        return [[float(len(t))] for t in texts]

    batcher = query_batcher(encode, ThreadPoolExecutor(1))
    tasks = [asyncio.create_task(batcher.submit("q" * i)) for i in range(1, 41)]
    await asyncio.sleep(0.05)
    gate.set()
    results = await asyncio.gather(*tasks)
    assert [r[0] for r in results] == [float(i) for i in range(1, 41)]
    assert sum(seen) == 40 and batcher.calls <= 3


async def test_with_two_threads_two_batches_run_at_once_and_never_more() -> None:
    running = 0
    most = 0
    both_started = threading.Barrier(2, timeout=5)  # fails unless two batches overlap
    lock = threading.Lock()

    def encode(texts: list[str]) -> list[list[float]]:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        with contextlib.suppress(threading.BrokenBarrierError):  # a broken barrier fails `most`
            both_started.wait()
        with lock:
            running -= 1
        return [[1.0] for _ in texts]

    batcher = query_batcher(encode, ThreadPoolExecutor(2), max_batch=4, threads=2)
    results = await asyncio.gather(*(batcher.submit(f"q{i}") for i in range(16)))
    assert results == [[1.0]] * 16
    assert most == 2 and batcher.calls == 4


async def test_a_failing_model_call_fails_only_its_batch() -> None:
    calls = 0

    def encode(texts: list[str]) -> list[list[float]]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("model failure")
        return [[1.0] for _ in texts]

    batcher = query_batcher(encode, ThreadPoolExecutor(1))
    first = await asyncio.gather(batcher.submit("a"), return_exceptions=True)
    assert isinstance(first[0], RuntimeError)
    assert await batcher.submit("b") == [1.0]


async def test_onnx_document_vectors_equal_the_torch_ones(home: Path) -> None:
    texts = [("Rover keeps a median of the last five readings per sensor. " * (i + 1)).strip() for i in range(12)]
    onnx = LocalEmbedder(query_encoder="onnx", cache_dir=home / "models")
    fast = np.array(await onnx.embed_documents(texts))
    reference = np.array(await LocalEmbedder(query_encoder="torch").embed_documents(texts))
    assert float(np.min(np.sum(fast * reference, axis=1))) > 0.9999
