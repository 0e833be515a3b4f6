"""POST /v1/chat: Server-Sent Events by default, one JSON object with Accept: application/json."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse, Response
from lectern.chat.v1 import chat_service_pb2 as cpb

from gateway.routes.deps import upstream, wants_json
from gateway.schemas import ChatBody, ChatReply, Text
from gateway.sse import frame, sse_response
from gateway.upstream import Upstream
from records.proto import source_from_proto
from records.source import Source
from runtime import limits
from runtime.errors import BY_CODE, Internal
from runtime.status import from_rpc_error

router = APIRouter()


def chat_request(body: ChatBody, token: str | None) -> cpb.ChatRequest:
    return cpb.ChatRequest(
        message=body.message,
        mode=cpb.CHAT_MODE_SELECTION if body.mode == "selection" else cpb.CHAT_MODE_GENERAL,
        selection=body.context or "", conversation_id=body.conversation_id or "",
        conversation_token=token or "", book=body.book,
        page=cpb.PageContext(url=body.page.url, title=body.page.title) if body.page else None,
        version=body.version or "", locale=body.locale or "",
    )


# The source fields the HTTP contract leaves out: chunk ids name the index's rows, which readers
# never address (a citation's url leads to the section).
SOURCE_FIELDS_NOT_SENT = frozenset({"chunk_id"})


def source_json(source: Source) -> dict[str, Any]:
    """A source as the HTTP contract gives it (``gateway.schemas.Source``)."""
    return {"n": source.n, "file_path": source.file_path, "heading_path": list(source.heading_path),
            "url": source.url, "score": round(source.score, 6)}


def event_payload(event: cpb.ChatResponse) -> tuple[str, dict[str, Any]]:
    kind = event.WhichOneof("event")
    if kind == "meta":
        m = event.meta
        return "meta", {"conversation_id": m.conversation_id, "conversation_token": m.conversation_token,
                        "message_id": m.message_id}
    if kind == "token":
        return "token", {"text": event.token.text}
    if kind == "sources":
        return "sources", {"sources": [source_json(source_from_proto(s)) for s in event.sources.sources]}
    if kind == "done":
        d = event.done
        return "done", {"answer": d.answer, "grounded": d.grounded, "out_of_scope": d.out_of_scope}
    if kind == "warning":
        return "warning", {"code": event.warning.code, "message": event.warning.message}
    return "error", {"code": event.error.code, "message": event.error.message}


@router.post(
    "/v1/chat", tags=["chat"], summary="Ask the book",
    responses={200: {"description": "text/event-stream of meta, token, sources, done or error events; "
                     "or one ChatReply object with Accept: application/json",
                     "model": ChatReply}},
)
async def chat(body: ChatBody, request: Request, up: Upstream = Depends(upstream),
               x_conversation_token: Text | None = Header(None, max_length=limits.TOKEN_CHARS)) -> Response:
    call = up.chat.Chat(chat_request(body, x_conversation_token))
    stream = call.__aiter__()
    try:
        # The first event settles the status: a bad request is a 4xx, not a 200 stream.
        first = await stream.__anext__()
    except grpc.aio.AioRpcError as exc:
        call.cancel()
        raise from_rpc_error(exc) from None

    if wants_json(request):
        collected: dict[str, Any] = {"sources": []}
        async for name, data in _events(first, stream, call):
            if name == "meta":
                collected.update(data)
            elif name == "sources":
                collected["sources"] = data["sources"]
            elif name == "done":
                collected.update(grounded=data["grounded"], out_of_scope=data["out_of_scope"],
                                 answer=data["answer"])
            elif name == "error":
                raise BY_CODE.get(data["code"], Internal)(data["message"])
        return JSONResponse(ChatReply(**collected).model_dump())

    async def frames() -> AsyncIterator[bytes]:
        async for name, data in _events(first, stream, call):
            yield frame(name, data)

    return sse_response(frames(), request.app.state.metrics.open_streams)


async def _events(first: cpb.ChatResponse, stream: AsyncIterator[cpb.ChatResponse],
                  call: Any) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """Upstream events as (name, data); an upstream failure mid-stream becomes an error event."""
    try:
        yield event_payload(first)
        async for event in stream:
            yield event_payload(event)
    except grpc.aio.AioRpcError as exc:
        err = from_rpc_error(exc)
        yield "error", {"code": err.code, "message": err.message}
    finally:
        call.cancel()  # a no-op when finished; stops upstream work when the client left
