"""ChatService over gRPC: validate, run the engine, stream its events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from lectern.chat.v1 import chat_service_pb2 as pb
from lectern.chat.v1 import chat_service_pb2_grpc as pb_grpc

from records.proto import source_to_proto
from runtime import limits
from runtime.errors import Violations
from runtime.text import check_message
from services.chat.engine import ChatEngine, Question
from services.chat.events import Done, Event, Failed, Meta, Sources, TokenText, Warning
from services.chat.llm.liveness import Liveness


def event_to_proto(event: Event) -> pb.ChatResponse:
    if isinstance(event, Meta):
        return pb.ChatResponse(meta=pb.MetaEvent(conversation_id=event.conversation_id,
                                                 conversation_token=event.conversation_token,
                                                 message_id=event.message_id))
    if isinstance(event, TokenText):
        return pb.ChatResponse(token=pb.TokenEvent(text=event.text))
    if isinstance(event, Sources):
        return pb.ChatResponse(sources=pb.SourcesEvent(sources=[source_to_proto(s) for s in event.sources]))
    if isinstance(event, Warning):
        return pb.ChatResponse(warning=pb.WarningEvent(code=event.code, message=event.message))
    if isinstance(event, Done):
        return pb.ChatResponse(done=pb.DoneEvent(answer=event.answer, grounded=event.grounded,
                                                 out_of_scope=event.out_of_scope))
    assert isinstance(event, Failed)
    return pb.ChatResponse(error=pb.ErrorEvent(code=event.code, message=event.message))


class ChatServicer(pb_grpc.ChatServiceServicer):
    def __init__(self, engine: ChatEngine, liveness: Liveness | None = None) -> None:
        self.engine = engine
        self.liveness = liveness or Liveness(None, unchecked=True)

    async def DescribeAnswerer(self, request: pb.DescribeAnswererRequest, context: Any
                               ) -> pb.DescribeAnswererResponse:
        health = await self.liveness.check()
        return pb.DescribeAnswererResponse(llm=self.engine.answerer.name, answers=health.answers,
                                           error=health.error)

    async def GetStats(self, request: pb.GetStatsRequest, context: Any) -> pb.GetStatsResponse:
        s = self.engine.recorder.stats()
        return pb.GetStatsResponse(turns_recorded=s.recorded, turns_rejected=s.rejected, turns_abandoned=s.abandoned,
                                   turns_overflowed=s.overflowed, turns_pending=s.pending)

    async def Chat(self, request: pb.ChatRequest, context: Any) -> AsyncIterator[pb.ChatResponse]:
        v = Violations()
        check_message(v, request)  # nothing chat passes on to sessions may be unstorable
        if not request.message.strip():
            v.add("message", "must not be empty or whitespace")
        elif len(request.message) > limits.QUESTION_CHARS:
            v.add("message", f"must be at most {limits.QUESTION_CHARS} characters")
        mode = "selection" if request.mode == pb.CHAT_MODE_SELECTION else "general"
        if request.mode not in (pb.CHAT_MODE_UNSPECIFIED, pb.CHAT_MODE_GENERAL, pb.CHAT_MODE_SELECTION):
            v.add("mode", "must be general or selection")
        if mode == "selection" and not request.selection.strip():
            v.add("selection", "is required in selection mode")
        if len(request.selection) > limits.SELECTION_CHARS:
            v.add("selection", f"must be at most {limits.SELECTION_CHARS} characters")
        if request.conversation_id and not request.conversation_token:
            v.add("conversation_token", "is required to continue a conversation")
        for name, value, most in (("book", request.book, limits.BOOK_CHARS),
                                  ("version", request.version, limits.VERSION_CHARS),
                                  ("locale", request.locale, limits.LOCALE_CHARS),
                                  ("page.url", request.page.url, limits.URL_CHARS),
                                  ("page.title", request.page.title, limits.PAGE_TITLE_CHARS),
                                  ("conversation_id", request.conversation_id, limits.ID_CHARS),
                                  ("conversation_token", request.conversation_token, limits.TOKEN_CHARS)):
            if len(value) > most:
                v.add(name, f"must be at most {most} characters")
        v.raise_if_any()
        question = Question(
            message=request.message.strip(), mode=mode, selection=request.selection,
            conversation_id=request.conversation_id, conversation_token=request.conversation_token,
            book=request.book or "default", page_url=request.page.url, page_title=request.page.title,
            version=request.version, locale=request.locale,
        )
        async for event in self.engine.answer(question):
            yield event_to_proto(event)
