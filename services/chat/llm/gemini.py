"""A Gemini model through google-genai; retries and errors come from runtime.gemini.

A stream is retried only before its first chunk: after that the reader has seen text, and
a failure ends the answer with an error event instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from google.genai import types

from runtime.errors import Unavailable
from runtime.gemini import FAILURES, call, make_client, wait_or_raise
from runtime.retry import RetryPolicy

WHAT = "the language model"


class GeminiModel:
    """One Gemini model behind google-genai's async client."""

    def __init__(self, api_key: str, model: str, base_url: str = "", timeout_seconds: float = 30.0,
                 policy: RetryPolicy | None = None) -> None:
        self.model = model
        self.policy = policy or RetryPolicy()
        self.client = make_client(api_key, base_url, timeout_seconds)

    @property
    def name(self) -> str:
        return f"gemini:{self.model}"

    async def generate(self, contents: Any, config: types.GenerateContentConfig) -> types.GenerateContentResponse:
        return await call(lambda: self.client.aio.models.generate_content(model=self.model, contents=contents,
                                                                          config=config), self.policy, WHAT)

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
            except FAILURES as exc:
                if started:
                    raise Unavailable("the language model's answer broke off; try again") from exc
                await wait_or_raise(attempt, exc, self.policy, WHAT)
            except (ValueError, KeyError) as exc:
                # A malformed or truncated stream (the SDK fails to parse it).
                raise Unavailable("the language model's answer broke off; try again") from exc

    async def close(self) -> None:
        await self.client.aio.aclose()
