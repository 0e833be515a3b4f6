"""Any OpenAI-compatible chat server (OpenAI, Ollama, vLLM, llama.cpp's server, LM Studio,
OpenRouter) through the openai SDK; retries and errors come from runtime.retry's ModelCalls.

The SDK's own retries are off: one policy (backoff, Retry-After, the reader's deadline) governs
every provider. Tool calling is not everywhere: `tools="auto"` offers `search_book` until the
server shows it cannot take tools (it refuses them, or ignores a required call), then asks
for searches in plain text instead (see research.OpenAIResearch).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

import httpx2
import openai
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionAssistantMessageParam,
    ChatCompletionChunk,
    ChatCompletionMessageParam,
    ChatCompletionSystemMessageParam,
    ChatCompletionToolChoiceOptionParam,
    ChatCompletionToolParam,
    ChatCompletionUserMessageParam,
)

from runtime.retry import Failure, ModelCalls, RetryPolicy, parse_retry_after
from services.chat.llm.liveness import CHECK_SECONDS
from services.chat.ports import PastTurn

log = logging.getLogger("lectern.chat.openai")

WHAT = "the language model"
NO_KEY = "unused"
"""Local servers need no key, but the SDK insists on one."""


def _retry_after(headers: httpx2.Headers) -> float | None:
    # OpenAI sends milliseconds too; either one is honoured.
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    return parse_retry_after(headers.get("retry-after"))


def classify(exc: BaseException) -> Failure | None:
    if isinstance(exc, openai.APIStatusError):
        return Failure(exc.status_code, _detail(exc), _retry_after(exc.response.headers))
    if isinstance(exc, openai.APIConnectionError | httpx2.TransportError | ConnectionError | TimeoutError):
        return Failure(None, str(exc) or type(exc).__name__)
    if isinstance(exc, openai.APIResponseValidationError | json.JSONDecodeError):
        return Failure(None, str(exc), malformed=True)
    if isinstance(exc, openai.APIError):  # an error event inside a stream
        return Failure(None, exc.message)
    return None


def _detail(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, Mapping):
        message = body.get("message") or body.get("error")
        if isinstance(message, Mapping):
            message = message.get("message")
        if message:
            return str(message)[:300]
    return exc.message[:300]


class OpenAIModel:
    """One chat model on an OpenAI-compatible server."""

    def __init__(self, model: str, base_url: str = "", api_key: str = "", timeout_seconds: float = 30.0,
                 *, tools: str = "auto", max_tokens: int = 1024, extra_body: Mapping[str, Any] | None = None,
                 policy: RetryPolicy | None = None, http_client: httpx2.AsyncClient | None = None) -> None:
        self.model = model
        self.max_tokens = max_tokens
        self.extra_body = dict(extra_body or {})
        self.tools_mode = tools
        self.calls = ModelCalls("the OpenAI-compatible server", classify, WHAT, policy or RetryPolicy())
        self.client = openai.AsyncOpenAI(api_key=api_key or NO_KEY, base_url=base_url or None,
                                         timeout=timeout_seconds, max_retries=0, http_client=http_client)
        self._tools_work: bool | None = None if tools == "auto" else tools == "on"

    @property
    def name(self) -> str:
        return f"openai:{self.model}"

    @property
    def uses_tools(self) -> bool:
        """Whether searches go through tool calls (else through plain-text replies)."""
        return self._tools_work is not False

    def tools_unsupported(self, why: str) -> bool:
        """Records that the server cannot take tools; False when tools were asked for explicitly."""
        if self.tools_mode != "auto":
            return False
        if self._tools_work is None:
            log.warning("the server does not take tools; searching by prompt instead",
                        extra={"model": self.model, "reason": why})
        self._tools_work = False
        return True

    def tools_supported(self) -> None:
        if self._tools_work is None:
            self._tools_work = True

    async def complete(self, messages: Iterable[ChatCompletionMessageParam], *, max_tokens: int,
                       tools: Iterable[ChatCompletionToolParam] | None = None,
                       tool_choice: ChatCompletionToolChoiceOptionParam | None = None) -> ChatCompletion:
        options: dict[str, Any] = {}
        if tools is not None:
            options.update(tools=tools, tool_choice=tool_choice or "auto")
        messages = list(messages)
        return await self.calls.call(lambda: self.client.chat.completions.create(
            model=self.model, messages=messages, temperature=0.0, max_tokens=min(max_tokens, self.max_tokens),
            extra_body=self.extra_body or None, **options))

    def stream(self, messages: Iterable[ChatCompletionMessageParam], *, temperature: float
               ) -> AsyncIterator[ChatCompletionChunk]:
        messages = list(messages)

        async def open_() -> AsyncGenerator[ChatCompletionChunk, None]:
            chunks = await self.client.chat.completions.create(
                model=self.model, messages=messages, temperature=temperature, max_tokens=self.max_tokens,
                stream=True, stream_options={"include_usage": True}, extra_body=self.extra_body or None)
            async with chunks:  # closing it drops the connection: the server stops generating
                async for chunk in chunks:
                    yield chunk

        return self.calls.stream(open_)

    async def ping(self) -> None:
        """Lists the server's models: cheap, and it answers only when the server is up (for health)."""
        await self.client.models.list(timeout=CHECK_SECONDS)

    async def close(self) -> None:
        await self.client.close()


def system(text: str) -> ChatCompletionSystemMessageParam:
    return {"role": "system", "content": text}


def user(text: str) -> ChatCompletionUserMessageParam:
    return {"role": "user", "content": text}


def assistant(text: str) -> ChatCompletionAssistantMessageParam:
    return {"role": "assistant", "content": text}


def history_messages(history: Sequence[PastTurn]) -> list[ChatCompletionMessageParam]:
    """Past turns as chat messages, oldest first."""
    messages: list[ChatCompletionMessageParam] = []
    for turn in history:
        messages += [user(turn.question), assistant(turn.answer)]
    return messages
