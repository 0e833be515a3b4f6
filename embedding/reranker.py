"""Cross-encoder reranking: cross-encoder/ms-marco-MiniLM-L-12-v2 (int8 ONNX) reads the question
and one passage together and scores how well the passage answers it.

A passage is its heading path and content, cut to a token budget. Scoring runs in worker threads
off the event loop, one pair per model call by default: the int8 export quantises activations
per call, so a pair padded into a batch scores a little differently than alone, and on this CPU
a batch was slower per pair, not faster. Between model calls the work checks whether its caller
has gone, so a cancelled search stops within one call.
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

from embedding.models import RERANKER, BundledModel, ModelUnavailable, model_dir, open_session, open_tokenizer

MAX_TOKENS = 512  # the model's position table
# Questions are short; a long one is cut so that the passage keeps its budget.
QUERY_TOKENS = 64
SPECIAL_TOKENS = 3  # [CLS] question [SEP] passage [SEP]
MAX_PASSAGE_TOKENS = MAX_TOKENS - QUERY_TOKENS - SPECIAL_TOKENS
# A word piece is rarely longer than this many characters: text beyond budget x this is cut
# before tokenising, so a long chunk costs no tokenising work that the budget then throws away.
CHARS_PER_TOKEN_BOUND = 12
HEADING_SEPARATOR = " > "
CLS, SEP = "[CLS]", "[SEP]"


class RerankCancelled(Exception):
    """The caller went away; scoring stopped between model calls."""


def passage_text(heading_path: Sequence[str], content: str) -> str:
    """What the cross-encoder reads of a chunk: where it sits in the book, then its text."""
    headings = HEADING_SEPARATOR.join(h.strip() for h in heading_path if h.strip())
    return f"{headings}\n{content}" if headings else content


class CrossEncoder:
    """Scores (question, passage) pairs; higher is more relevant (raw logits, about -11 to +11).

    ``load`` (or the first call) checks the model files; a missing or altered file raises
    ModelUnavailable every time after, with the reason, so callers can fall back to their own
    ranking and say why.
    """

    def __init__(self, passage_tokens: int = 256, threads: int = 1, batch_size: int = 1,
                 workers: int = 0, model: BundledModel = RERANKER, root: Path | None = None) -> None:
        if not 1 <= passage_tokens <= MAX_PASSAGE_TOKENS:
            raise ValueError(f"passage_tokens must be between 1 and {MAX_PASSAGE_TOKENS}")
        self.passage_tokens = passage_tokens
        self.threads = max(1, threads)
        self.batch_size = max(1, batch_size)
        self.model = model
        self.root = root
        # Concurrent searches score side by side, each on its own `threads`, up to the cores.
        self.workers = workers or max(1, min(4, (os.cpu_count() or 1) // self.threads))
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="rerank")
        self._session: Any = None
        self._tokenizer: Any = None
        self._special: tuple[int, int] = (0, 0)
        self._lock = threading.Lock()
        self.calls = 0
        """Model calls made (tests count them to see cancellation stop the work)."""

    @property
    def name(self) -> str:
        return self.model.name

    def load(self) -> None:
        """Checks the files and opens the model; raises ModelUnavailable with the reason."""
        with self._lock:
            if self._session is not None:
                return
            folder = model_dir(self.model, self.root)
            try:
                tokenizer = open_tokenizer(folder / "tokenizer.json")
                special = (tokenizer.token_to_id(CLS), tokenizer.token_to_id(SEP))
                if None in special:
                    raise ValueError("the tokenizer has no [CLS]/[SEP]")
                session = open_session(folder / "model.onnx", self.threads)
            except Exception as exc:  # a file that hashes right but will not open is still unusable
                raise ModelUnavailable(self.model.name, f"cannot be opened: {exc}") from exc
            self._tokenizer, self._special, self._session = tokenizer, special, session

    def unavailable_reason(self) -> str:
        """Empty when the model can score, else why not (for health reports)."""
        try:
            self.load()
        except ModelUnavailable as exc:
            return exc.reason
        return ""

    def _pairs(self, query: str, passages: Sequence[str]) -> tuple[int, list[list[int]]]:
        """Word-piece ids of [CLS] question [SEP] passage [SEP], each part cut to its budget, and
        the length of the question's part."""
        cls, sep = self._special
        question = self._tokenizer.encode(query[:QUERY_TOKENS * CHARS_PER_TOKEN_BOUND],
                                          add_special_tokens=False).ids[:QUERY_TOKENS]
        limit = self.passage_tokens * CHARS_PER_TOKEN_BOUND
        encoded = self._tokenizer.encode_batch([p[:limit] for p in passages], add_special_tokens=False)
        return len(question) + 2, [[cls, *question, sep, *e.ids[:self.passage_tokens], sep] for e in encoded]

    def _run(self, pairs: list[list[int]], question_length: int) -> np.ndarray:
        width = max(len(p) for p in pairs)
        ids = np.zeros((len(pairs), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, pair in enumerate(pairs):
            ids[row, :len(pair)] = pair
            mask[row, :len(pair)] = 1
            types[row, question_length:len(pair)] = 1  # the passage and its closing [SEP]
        (logits,) = self._session.run(["logits"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
        self.calls += 1
        scores: np.ndarray = logits[:, 0]
        return scores

    def score(self, query: str, passages: Sequence[str], cancel: threading.Event | None = None) -> list[float]:
        """One score per passage, in order. Blocking; raises RerankCancelled when `cancel` is set
        before a model call, ModelUnavailable when the model cannot be used."""
        if not passages:
            return []
        self.load()
        question_length, pairs = self._pairs(query, passages)
        # Similar lengths share a batch, so batches > 1 pad as little as possible.
        order = sorted(range(len(pairs)), key=lambda i: len(pairs[i])) if self.batch_size > 1 else list(
            range(len(pairs)))
        out = [0.0] * len(pairs)
        for start in range(0, len(order), self.batch_size):
            if cancel is not None and cancel.is_set():
                raise RerankCancelled(f"stopped after {start} of {len(pairs)} passages")
            chunk = order[start:start + self.batch_size]
            for i, value in zip(chunk, self._run([pairs[i] for i in chunk], question_length), strict=True):
                out[i] = float(value)
        return out

    async def ascore(self, query: str, passages: Sequence[str]) -> list[float]:
        """`score` in a worker thread; when the awaiting task is cancelled, the thread stops
        before its next model call instead of scoring passages nobody will read."""
        cancel = threading.Event()
        future = asyncio.get_running_loop().run_in_executor(self._executor, self.score, query, list(passages),
                                                            cancel)
        try:
            return await future
        except asyncio.CancelledError:
            cancel.set()
            raise

    async def ready(self) -> bool:
        """True when the model can score (loads it off the event loop)."""
        return not await asyncio.get_running_loop().run_in_executor(self._executor, self.unavailable_reason)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
