"""A Gemini model through google-genai; retries and errors come from runtime.retry's ModelCalls.

A stream is retried only before its first chunk: after that the reader has seen text, and
a failure ends the answer with an error event instead.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from google.genai import types

from runtime.gemini import calls, classify, make_client
from runtime.retry import Failure, ModelCalls, RetryPolicy

WHAT = "the language model"


def _classify_stream(exc: BaseException) -> Failure | None:
    if isinstance(exc, ValueError | KeyError):
        return Failure(None, str(exc), malformed=True)  # the SDK could not parse a truncated stream
    return classify(exc)


class GeminiModel:
    """One Gemini model behind google-genai's async client."""

    def __init__(self, api_key: str, model: str, base_url: str = "", timeout_seconds: float = 30.0,
                 policy: RetryPolicy | None = None) -> None:
        self.model = model
        self.calls = calls(policy or RetryPolicy(), WHAT)
        self.streams = ModelCalls(self.calls.provider, _classify_stream, WHAT, self.calls.policy)
        self.client = make_client(api_key, base_url, timeout_seconds)

    @property
    def name(self) -> str:
        return f"gemini:{self.model}"

    async def generate(self, contents: Any, config: types.GenerateContentConfig) -> types.GenerateContentResponse:
        return await self.calls.call(lambda: self.client.aio.models.generate_content(
            model=self.model, contents=contents, config=config))

    def stream(self, contents: Any, config: types.GenerateContentConfig
               ) -> AsyncIterator[types.GenerateContentResponse]:
        async def open_() -> AsyncGenerator[types.GenerateContentResponse, None]:
            async for chunk in await self.client.aio.models.generate_content_stream(
                    model=self.model, contents=contents, config=config):
                yield chunk

        return self.streams.stream(open_)

    async def close(self) -> None:
        await self.client.aio.aclose()
