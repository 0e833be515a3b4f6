"""google-genai calls in domain terms, shared by the Gemini answerer and the Gemini embedder.

Retries and their errors are runtime.retry's ModelCalls; this module only says what
google-genai's exceptions mean.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from runtime.retry import Failure, ModelCalls, RetryPolicy, parse_retry_after

T = TypeVar("T")


def make_client(api_key: str, base_url: str, timeout_seconds: float) -> genai.Client:
    options = types.HttpOptions(base_url=base_url or None, timeout=int(timeout_seconds * 1000))
    return genai.Client(api_key=api_key, http_options=options)


def classify(exc: BaseException) -> Failure | None:
    if isinstance(exc, genai_errors.APIError):
        headers = getattr(exc.response, "headers", None)
        retry_after = parse_retry_after(headers.get("retry-after") if headers is not None else None)
        return Failure(exc.code, exc.message or exc.status or "", retry_after)
    if isinstance(exc, httpx.TransportError | ConnectionError | TimeoutError):
        return Failure(None, str(exc))
    return None


def calls(policy: RetryPolicy, what: str) -> ModelCalls:
    """`what` names the service in messages, such as "the language model"."""
    return ModelCalls("Gemini", classify, what, policy)


async def call(make: Callable[[], Awaitable[T]], policy: RetryPolicy, what: str) -> T:
    """Runs one request with retries."""
    return await calls(policy, what).call(make)
