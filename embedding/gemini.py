"""gemini-embedding-001 through google-genai (set LECTERN_EMBEDDER=gemini and GEMINI_API_KEY).

Documents are embedded with task type RETRIEVAL_DOCUMENT and queries with RETRIEVAL_QUERY, at
768 dimensions. Vectors cut below the model's native size are not unit length, so they are
re-normalised: the index uses cosine, and the out-of-scope threshold assumes unit vectors.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from typing import Any, cast

import httpx
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from embedding.base import EmbedderSpec
from runtime.errors import FailedPrecondition, LecternError, ResourceExhausted, Unavailable
from runtime.retry import RetryPolicy, parse_retry_after

log = logging.getLogger("lectern.embedding.gemini")

MODEL = "gemini-embedding-001"
DIMENSION = 768
MAX_TOKENS = 2048  # the model's input limit; chunks stay far below it (512 cl100k tokens)
BATCH = 100  # texts per request, the API's limit


def normalise(values: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values] if norm else list(values)


def _to_domain(exc: Exception, retry_after: float | None) -> LecternError:
    if isinstance(exc, genai_errors.APIError):
        if exc.code == 429:
            return ResourceExhausted("the Gemini embedding quota is exhausted; try again shortly", retry_after or 5.0)
        if exc.code >= 500:
            return Unavailable(f"Gemini embeddings failed ({exc.code})")
        return FailedPrecondition(f"Gemini refused the embedding request ({exc.code}): {exc.message}")
    return Unavailable(f"Gemini embeddings are unreachable: {exc}")


class GeminiEmbedder:
    spec = EmbedderSpec(name=f"gemini:{MODEL}@{DIMENSION}", dimension=DIMENSION, max_input_tokens=MAX_TOKENS)

    def __init__(self, api_key: str, base_url: str = "", policy: RetryPolicy | None = None,
                 timeout_seconds: float = 30.0) -> None:
        if not api_key:
            raise FailedPrecondition("LECTERN_EMBEDDER=gemini needs GEMINI_API_KEY")
        self.policy = policy or RetryPolicy(attempts=5)
        options = types.HttpOptions(base_url=base_url or None, timeout=int(timeout_seconds * 1000))
        self.client = genai.Client(api_key=api_key, http_options=options)

    async def _embed(self, texts: list[str], task: str) -> list[list[float]]:
        config = types.EmbedContentConfig(task_type=task, output_dimensionality=DIMENSION)
        attempt = 0
        while True:
            attempt += 1
            try:
                reply = await self.client.aio.models.embed_content(
                    model=MODEL, contents=cast(Any, texts), config=config)
                break
            except (genai_errors.APIError, httpx.TransportError) as exc:
                retryable = not isinstance(exc, genai_errors.APIError) or exc.code == 429 or exc.code >= 500
                headers = getattr(getattr(exc, "response", None), "headers", None)
                retry_after = parse_retry_after(headers.get("retry-after") if headers is not None else None)
                delay = self.policy.delay(attempt, retry_after) if retryable else None
                if delay is None:
                    raise _to_domain(exc, retry_after) from exc
                log.warning("embedding call failed; retrying", extra={"attempt": attempt, "delay_s": round(delay, 2)})
                await asyncio.sleep(delay)
        vectors = [normalise(e.values or []) for e in (reply.embeddings or [])]
        if len(vectors) != len(texts) or any(len(v) != DIMENSION for v in vectors):
            raise Unavailable("Gemini returned embeddings of the wrong number or size")
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
        return True

    def close(self) -> None:
        pass
