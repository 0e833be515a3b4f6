"""gemini-embedding-001 through google-genai (set LECTERN_EMBEDDER=gemini and GEMINI_API_KEY).

Documents are embedded with task type RETRIEVAL_DOCUMENT and queries with RETRIEVAL_QUERY, at
768 dimensions. Vectors cut below the model's native size are not unit length, so they are
re-normalised: the index uses cosine, and the out-of-scope threshold assumes unit vectors.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

from google.genai import types

from embedding.base import EmbedderSpec
from runtime.errors import FailedPrecondition, Unavailable
from runtime.gemini import call, make_client
from runtime.retry import RetryPolicy

MODEL = "gemini-embedding-001"
DIMENSION = 768
MAX_TOKENS = 2048  # the model's input limit; chunks stay far below it (512 cl100k tokens)
BATCH = 100  # texts per request, the API's limit
WHAT = "the Gemini embedding service"
# Health probes run every few seconds: a check's outcome is reused, so they never become API
# traffic of their own (one short embedding a minute at most), and a failure is retried sooner.
READY_SECONDS = 60.0
NOT_READY_SECONDS = 10.0
CHECK_SECONDS = 5.0  # one check's bound: a probe never waits longer
CHECK_TEXT = "ready"
ONE_TRY = RetryPolicy(attempts=1)  # a check reports the service as it is, without retrying

log = logging.getLogger("lectern.embedding.gemini")


def normalise(values: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values] if norm else list(values)


class GeminiEmbedder:
    spec = EmbedderSpec(name=f"gemini:{MODEL}@{DIMENSION}", dimension=DIMENSION, max_input_tokens=MAX_TOKENS)

    def __init__(self, api_key: str, base_url: str = "", policy: RetryPolicy | None = None,
                 timeout_seconds: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        if not api_key:
            raise FailedPrecondition("LECTERN_EMBEDDER=gemini needs GEMINI_API_KEY")
        self.policy = policy or RetryPolicy(attempts=5)
        self.client = make_client(api_key, base_url, timeout_seconds)
        self.clock = clock
        self._checked: tuple[float, bool] | None = None
        """When readiness was last known, and what it was."""

    async def _embed(self, texts: list[str], task: str, policy: RetryPolicy | None = None) -> list[list[float]]:
        config = types.EmbedContentConfig(task_type=task, output_dimensionality=DIMENSION)
        reply = await call(lambda: self.client.aio.models.embed_content(
            model=MODEL, contents=cast(Any, texts), config=config), policy or self.policy, WHAT)
        vectors = [normalise(e.values or []) for e in (reply.embeddings or [])]
        if len(vectors) != len(texts) or any(len(v) != DIMENSION for v in vectors):
            raise Unavailable("Gemini returned embeddings of the wrong number or size")
        self._checked = (self.clock(), True)  # a call that worked is as good as a check
        return vectors

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for start in range(0, len(texts), BATCH):
            out += await self._embed(list(texts[start:start + BATCH]), "RETRIEVAL_DOCUMENT")
        return out

    async def embed_query(self, text: str) -> list[float]:
        return (await self._embed([text], "RETRIEVAL_QUERY"))[0]

    def count_tokens(self, text: str) -> int:
        # Gemini counts its own tokens server-side; cl100k is a close, slightly high estimate.
        from embedding.tokens import count_tokens

        return count_tokens(text)

    async def ready(self) -> bool:
        """Whether Gemini embeds now with this key: one short query embedded, without retries
        and within CHECK_SECONDS. The outcome (or that of any real call that worked) is reused
        for READY_SECONDS, a failure for NOT_READY_SECONDS."""
        if self._checked is not None:
            at, ok = self._checked
            if self.clock() - at < (READY_SECONDS if ok else NOT_READY_SECONDS):
                return ok
        try:
            async with asyncio.timeout(CHECK_SECONDS):
                await self._embed([CHECK_TEXT], "RETRIEVAL_QUERY", ONE_TRY)
            ok = True
        except Exception as exc:  # any failure means "cannot embed now"; the reason goes to the log
            log.warning("Gemini embeddings unavailable", extra={"error": repr(exc)})
            ok = False
        self._checked = (self.clock(), ok)
        return ok

    async def close(self) -> None:
        await self.client.aio.aclose()
