"""GET/DELETE /v1/conversations/{id} and POST /v1/feedback (all need X-Conversation-Token)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header, Path
from fastapi.responses import Response
from lectern.sessions.v1 import sessions_service_pb2 as spb

from gateway.routes.chat import source_json
from gateway.routes.deps import upstream
from gateway.schemas import ConversationReply, FeedbackBody, Message, Source, Text
from gateway.upstream import Upstream
from records.proto import source_from_proto
from runtime import limits
from runtime.errors import Unauthenticated

router = APIRouter(tags=["conversations"])
ROLE = {spb.ROLE_USER: "user", spb.ROLE_ASSISTANT: "assistant"}


def _token(value: str | None) -> str:
    if not value:
        raise Unauthenticated("this route needs the X-Conversation-Token header")
    return value


@router.get("/v1/conversations/{conversation_id}", response_model=ConversationReply, summary="Read a conversation")
async def get_conversation(
    conversation_id: Text = Path(..., max_length=limits.ID_CHARS),
    x_conversation_token: Text | None = Header(None, max_length=limits.TOKEN_CHARS),
    up: Upstream = Depends(upstream),
) -> ConversationReply:
    token = _token(x_conversation_token)
    header = await up.sessions.GetConversation(spb.GetConversationRequest(
        conversation_id=conversation_id, conversation_token=token))
    messages: list[Message] = []
    page = ""
    while True:
        reply = await up.sessions.ListMessages(spb.ListMessagesRequest(
            conversation_id=conversation_id, conversation_token=token, page_size=500, page_token=page))
        messages += [
            Message(message_id=m.message_id, role=ROLE.get(m.role, "user"), content=m.content,  # type: ignore[arg-type]
                    sources=[Source(**source_json(source_from_proto(s))) for s in m.sources],
                    created_at=m.created_at.ToJsonString())
            for m in reply.messages
        ]
        page = reply.next_page_token
        if not page:
            return ConversationReply(conversation_id=header.conversation_id, book=header.book,
                                     created_at=header.created_at.ToJsonString(),
                                     last_active_at=header.last_active_at.ToJsonString(), messages=messages)


@router.delete("/v1/conversations/{conversation_id}", status_code=204, summary="Erase a conversation")
async def delete_conversation(
    conversation_id: Text = Path(..., max_length=limits.ID_CHARS),
    x_conversation_token: Text | None = Header(None, max_length=limits.TOKEN_CHARS),
    up: Upstream = Depends(upstream),
) -> Response:
    await up.sessions.DeleteConversation(spb.DeleteConversationRequest(
        conversation_id=conversation_id, conversation_token=_token(x_conversation_token)))
    return Response(status_code=204)


@router.post("/v1/feedback", status_code=204, summary="Rate an answer")
async def feedback(
    body: FeedbackBody,
    x_conversation_token: Text | None = Header(None, max_length=limits.TOKEN_CHARS),
    up: Upstream = Depends(upstream),
) -> Response:
    await up.sessions.RecordFeedback(spb.RecordFeedbackRequest(
        conversation_id=body.conversation_id, conversation_token=_token(x_conversation_token),
        message_id=body.message_id, rating=spb.RATING_UP if body.rating == "up" else spb.RATING_DOWN,
        comment=body.comment or ""))
    return Response(status_code=204)
