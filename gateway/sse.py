"""Server-Sent Events framing, with heartbeats so idle proxies keep the stream open."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import StreamingResponse

HEARTBEAT_SECONDS = 15.0


def frame(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


async def with_heartbeats(events: AsyncIterator[bytes], every: float = HEARTBEAT_SECONDS) -> AsyncIterator[bytes]:
    """Passes events through, adding a comment line whenever none came for ``every`` seconds.

    Closing this generator (the client went away) cancels the pending upstream read, which
    cancels the upstream gRPC stream.
    """
    iterator = events.__aiter__()
    pending: asyncio.Task[bytes] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(iterator.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=every)
            if not done:
                yield b": keep-alive\n\n"
                continue
            try:
                item = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield item
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(BaseException):
                await aclose()


async def _counted(events: AsyncIterator[bytes], gauge: Any) -> AsyncIterator[bytes]:
    gauge.inc()
    try:
        async for event in events:
            yield event
    finally:
        gauge.dec()


def sse_response(events: AsyncIterator[bytes], gauge: Any = None) -> StreamingResponse:
    """An event stream with heartbeats; `gauge` (open streams) counts it while it is open."""
    if gauge is not None:
        events = _counted(events, gauge)
    return StreamingResponse(
        with_heartbeats(events), media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"},
    )
