"""A local HTTP server that speaks Gemini's REST shapes, for driving the real google-genai SDK.

Each request takes the next scripted reply; with the script empty it behaves like a tiny,
obedient Gemini: it calls `search_book` with the reader's words, says DONE after one search,
and answers by quoting the first sentence of source [1].
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse


@dataclass
class Reply:
    """One scripted reply: an HTTP error, or chunks (one for generateContent)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[dict[str, Any]] = field(default_factory=list)
    break_after: int | None = None
    """For streams: close the connection after this many chunks, mid-answer."""
    delay_per_chunk: float = 0.0


def text_chunk(text: str, tokens: int = 0) -> dict[str, Any]:
    chunk: dict[str, Any] = {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}]}
    if tokens:
        chunk["usageMetadata"] = {"promptTokenCount": tokens, "candidatesTokenCount": 1, "totalTokenCount": tokens + 1}
    return chunk


def call_chunk(name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"candidates": [{"content": {"role": "model", "parts": [{"functionCall": {"name": name, "args": args}}]},
                            "finishReason": "STOP", "index": 0}]}


def error(status: int, message: str, retry_after: str | None = None) -> Reply:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    body = {"error": {"code": status, "message": message,
                      "status": "RESOURCE_EXHAUSTED" if status == 429 else "INTERNAL"}}
    return Reply(status=status, headers=headers, chunks=[body])


def fake_vector(text: str, dimension: int) -> list[float]:
    """Deterministic, deliberately not unit length (the client must re-normalise)."""
    seed = int(hashlib.sha256(text.encode()).hexdigest(), 16)
    rng = random.Random(seed)
    return [3.0 * rng.uniform(-1, 1) for _ in range(dimension)]


class FakeGemini:
    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.default_delay = 0.0
        """Seconds before each streamed chunk of default replies: a fixed per-token model delay."""
        self.requests: list[dict[str, Any]] = []
        self.app = FastAPI()
        self.app.post("/{version}/models/{target}")(self._handle)
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.url = ""

    async def start(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=port, log_config=None,
                                                     access_log=False))
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.02)
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._server and self._task:
            self._server.should_exit = True
            await self._task

    def reset(self, *replies: Reply) -> None:
        self.script = list(replies)
        self.requests.clear()

    def default_reply(self, body: dict[str, Any]) -> Reply:
        contents = body.get("contents", [])
        last_parts = contents[-1]["parts"] if contents else []
        if body.get("tools"):
            if any("functionResponse" in p for p in last_parts):
                return Reply(chunks=[text_chunk("DONE")])
            question = " ".join(p.get("text", "") for p in last_parts).split("\n(The reader")[0]
            return Reply(chunks=[call_chunk("search_book", {"query": question})])
        prompt = " ".join(p.get("text", "") for p in last_parts)
        m = re.search(r'<source n="1" .*?">\n(.*?)\n</source>', prompt, re.S)
        words = re.findall(r"[\w'-]+", m.group(1))[:15] if m else []
        answer = f"{' '.join(words)} [1]." if words else "I couldn't find this in the book."
        words = re.findall(r"\S+\s*", answer)
        return Reply(chunks=[text_chunk("".join(words[i:i + 3]), tokens=42) for i in range(0, len(words), 3)],
                     delay_per_chunk=self.default_delay)

    async def _handle(self, version: str, target: str, request: Request) -> Response:
        body = await request.json()
        model, _, action = target.partition(":")
        self.requests.append({"model": model, "action": action, "body": body,
                              "api_key": request.headers.get("x-goog-api-key", "")})
        if action == "batchEmbedContents" and not self.script:
            return JSONResponse({"embeddings": [{"values": fake_vector(r["content"]["parts"][0]["text"],
                                                                      r.get("outputDimensionality", 768))}
                                                for r in body["requests"]]})
        reply = self.script.pop(0) if self.script else self.default_reply(body)
        if reply.status != 200:
            return JSONResponse(reply.chunks[0], status_code=reply.status, headers=reply.headers)
        if action == "generateContent":
            return JSONResponse(reply.chunks[0])

        async def events() -> AsyncIterator[bytes]:
            for i, chunk in enumerate(reply.chunks):
                if reply.break_after is not None and i >= reply.break_after:
                    # A stream that breaks: half a JSON object, then the connection ends.
                    yield b'data: {"candidates": [{"content": {"parts": [{"te'
                    return
                if reply.delay_per_chunk:
                    await asyncio.sleep(reply.delay_per_chunk)
                yield f"data: {json.dumps(chunk)}\r\n\r\n".encode()

        return StreamingResponse(events(), media_type="text/event-stream")
