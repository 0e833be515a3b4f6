"""Gemini through google-genai, with retries and errors in domain terms.

429 and 5xx are retried under RetryPolicy (Retry-After honoured); what still fails becomes
ResourceExhausted ("busy, try again shortly") or Unavailable, never a raw SDK exception.
A stream is retried only before its first chunk: after that the reader has seen text, and
a failure ends the answer with an error event instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from runtime.errors import FailedPrecondition, LecternError, ResourceExhausted, Unavailable
from runtime.retry import RetryPolicy, parse_retry_after

log = logging.getLogger("lectern.chat.gemini")

BUSY = "the language model is busy; try again shortly"


def _retry_after(exc: genai_errors.APIError) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    return parse_retry_after(headers.get("retry-after") if headers is not None else None)


def to_domain(exc: Exception, retry_after: float | None = None) -> LecternError:
    if isinstance(exc, genai_errors.APIError):
        if exc.code == 429:
            return ResourceExhausted(BUSY, retry_after if retry_after is not None else 5.0)
        if exc.code >= 500:
            return Unavailable(f"the language model failed ({exc.code}); try again shortly")
        return FailedPrecondition(f"Gemini refused the request ({exc.code}): {exc.message or exc.status}")
    return Unavailable(f"the language model is unreachable: {exc}")


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, genai_errors.APIError):
        return exc.code == 429 or exc.code >= 500
    return isinstance(exc, (httpx.TransportError, ConnectionError, TimeoutError))


class GeminiModel:
    """One Gemini model behind google-genai's async client."""

    def __init__(self, api_key: str, model: str, base_url: str = "", timeout_seconds: float = 30.0,
                 policy: RetryPolicy | None = None) -> None:
        self.model = model
        self.policy = policy or RetryPolicy()
        options = types.HttpOptions(base_url=base_url or None, timeout=int(timeout_seconds * 1000))
        self.client = genai.Client(api_key=api_key, http_options=options)

    @property
    def name(self) -> str:
        return f"gemini:{self.model}"

    async def _wait_or_raise(self, attempt: int, exc: Exception) -> None:
        retry_after = _retry_after(exc) if isinstance(exc, genai_errors.APIError) else None
        delay = self.policy.delay(attempt, retry_after) if _retryable(exc) else None
        if delay is None:
            raise to_domain(exc, retry_after) from exc
        log.warning("model call failed; retrying", extra={"attempt": attempt, "delay_s": round(delay, 2),
                                                          "error": type(exc).__name__})
        await asyncio.sleep(delay)

    async def generate(self, contents: Any, config: types.GenerateContentConfig) -> types.GenerateContentResponse:
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self.client.aio.models.generate_content(model=self.model, contents=contents,
                                                                     config=config)
            except (genai_errors.APIError, httpx.TransportError, ConnectionError, TimeoutError) as exc:
                await self._wait_or_raise(attempt, exc)

    async def stream(self, contents: Any, config: types.GenerateContentConfig
                     ) -> AsyncIterator[types.GenerateContentResponse]:
        attempt = 0
        while True:
            attempt += 1
            started = False
            try:
                chunks = await self.client.aio.models.generate_content_stream(model=self.model, contents=contents,
                                                                              config=config)
                async for chunk in chunks:
                    started = True
                    yield chunk
                return
            except (genai_errors.APIError, httpx.TransportError, ConnectionError, TimeoutError) as exc:
                if started:
                    raise Unavailable("the language model's answer broke off; try again") from exc
                await self._wait_or_raise(attempt, exc)
            except (ValueError, KeyError) as exc:
                # A malformed or truncated stream (the SDK fails to parse it).
                raise Unavailable("the language model's answer broke off; try again") from exc

    async def close(self) -> None:
        await self.client.aio.aclose()
