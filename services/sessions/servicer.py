"""SessionsService over gRPC: validate, call the store, map the result.

Every request's text is checked first (``check_message``): what Postgres cannot store is
refused with a field violation before it reaches the database."""

from __future__ import annotations

import math
from typing import Any

from lectern.sessions.v1 import sessions_service_pb2 as pb
from lectern.sessions.v1 import sessions_service_pb2_grpc as pb_grpc

from records.proto import gap_question_to_proto, source_to_proto, timestamp_to_proto, turn_from_proto
from records.turn import MODES, Turn
from runtime import limits
from runtime.batching import Batcher
from runtime.errors import Violations
from runtime.text import check_message
from services.sessions.store import ConversationStore

MAX_GAP_QUESTIONS = 5000  # a gap report's questions per call: what the gateway embeds in one go


def _need_conversation(v: Violations, conversation_id: str, token: str | None) -> None:
    if not conversation_id:
        v.add("conversation_id", "must not be empty")
    if token is not None and not token:
        v.add("conversation_token", "must not be empty")


class SessionsServicer(pb_grpc.SessionsServiceServicer):
    def __init__(self, store: ConversationStore, retention_days: int = 30) -> None:
        self.store = store
        self.retention_days = retention_days
        # Concurrent AppendTurn calls share one transaction: a commit per batch, not per turn.
        self.turns: Batcher[Turn, tuple[str, str]] = Batcher(store.append_turns)

    async def CreateConversation(self, request: pb.CreateConversationRequest, context: Any) -> Any:
        v = Violations()
        check_message(v, request)
        if len(request.book) > limits.BOOK_CHARS:
            v.add("book", f"must be at most {limits.BOOK_CHARS} characters")
        v.raise_if_any()
        cid, token = await self.store.create(request.book or "default")
        return pb.CreateConversationResponse(conversation_id=cid, conversation_token=token)

    async def AppendTurn(self, request: pb.AppendTurnRequest, context: Any) -> Any:
        v = Violations()
        check_message(v, request)
        _need_conversation(v, request.conversation_id, None)
        if not request.turn_id or len(request.turn_id) > limits.TOKEN_CHARS:
            v.add("turn_id", f"must be 1 to {limits.TOKEN_CHARS} characters")
        if not request.question:
            v.add("question", "must not be empty")
        for name in ("question", "answer", "rewritten_query"):
            if len(getattr(request, name)) > limits.TURN_TEXT_CHARS:
                v.add(name, f"must be at most {limits.TURN_TEXT_CHARS} characters")
        if request.mode not in ("", *MODES):
            v.add("mode", f"must be {' or '.join(MODES)}")
        numbers: set[int] = set()
        for i, source in enumerate(request.sources):
            # n is how the answer cites the source, and the rank it is stored under.
            if source.n < 1 or source.n in numbers:
                v.add(f"sources[{i}].n", "must be a positive number no other source of the turn has")
            numbers.add(source.n)
            if not math.isfinite(source.score):  # JSON, and so the stored turn, has no NaN or infinity
                v.add(f"sources[{i}].score", "must be a finite number")
        for i, latency in enumerate(request.latencies):
            if not math.isfinite(latency.ms):
                v.add(f"latencies[{i}].ms", "must be a finite number")
        v.raise_if_any()
        qid, aid = await self.turns.submit(turn_from_proto(request))
        return pb.AppendTurnResponse(question_message_id=qid, answer_message_id=aid)

    async def GetConversation(self, request: pb.GetConversationRequest, context: Any) -> Any:
        v = Violations()
        check_message(v, request)
        _need_conversation(v, request.conversation_id, request.conversation_token)
        v.raise_if_any()
        c = await self.store.get(request.conversation_id, request.conversation_token)
        return pb.GetConversationResponse(conversation_id=c.conversation_id, book=c.book,
                                          created_at=timestamp_to_proto(c.created_at),
                                          last_active_at=timestamp_to_proto(c.last_active_at))

    async def ListMessages(self, request: pb.ListMessagesRequest, context: Any) -> Any:
        v = Violations()
        check_message(v, request)
        _need_conversation(v, request.conversation_id, request.conversation_token)
        if not 0 <= request.page_size <= 500:
            v.add("page_size", "must be between 0 and 500")
        v.raise_if_any()
        messages, token = await self.store.list_messages(
            request.conversation_id, request.conversation_token, request.page_size or 50, request.page_token
        )
        return pb.ListMessagesResponse(
            messages=[pb.Message(message_id=m.message_id, role=pb.Role.ValueType(m.role), content=m.content,
                                 sources=[source_to_proto(s) for s in m.sources],
                                 created_at=timestamp_to_proto(m.created_at), mode=m.mode) for m in messages],
            next_page_token=token,
        )

    async def RecordFeedback(self, request: pb.RecordFeedbackRequest, context: Any) -> Any:
        v = Violations()
        check_message(v, request)
        _need_conversation(v, request.conversation_id, request.conversation_token)
        if not request.message_id:
            v.add("message_id", "must not be empty")
        if request.rating not in (pb.RATING_UP, pb.RATING_DOWN):
            v.add("rating", "must be up or down")
        if len(request.comment) > limits.COMMENT_CHARS:
            v.add("comment", f"must be at most {limits.COMMENT_CHARS} characters")
        v.raise_if_any()
        await self.store.record_feedback(request.conversation_id, request.conversation_token, request.message_id,
                                         request.rating, request.comment)
        return pb.RecordFeedbackResponse()

    async def DeleteConversation(self, request: pb.DeleteConversationRequest, context: Any) -> Any:
        v = Violations()
        check_message(v, request)
        _need_conversation(v, request.conversation_id, request.conversation_token)
        v.raise_if_any()
        await self.store.delete(request.conversation_id, request.conversation_token)
        return pb.DeleteConversationResponse()

    async def Analytics(self, request: pb.AnalyticsRequest, context: Any) -> Any:
        v = Violations()
        check_message(v, request)
        if not 1 <= request.days <= 3650:
            v.add("days", "must be between 1 and 3650")
        if not 0 <= request.limit <= 100:
            v.add("limit", "must be between 0 and 100")
        v.raise_if_any()
        a = await self.store.analytics(request.days, request.book, request.limit or 10)
        return pb.AnalyticsResponse(
            questions_per_day=[pb.DailyCount(day=d.isoformat(), questions=n) for d, n in a.questions_per_day],
            top_questions=[pb.CountedQuestion(text=q.text, count=q.count) for q in a.top_questions],
            unanswered=[pb.CountedQuestion(text=q.text, count=q.count) for q in a.unanswered],
            downvoted=[pb.DownvotedAnswer(question=d.question, answer=d.answer, comment=d.comment,
                                          source_urls=d.sources) for d in a.downvoted],
            most_cited=[pb.CitedSection(file_path=c.file_path, heading=c.heading, url=c.url, count=c.count)
                        for c in a.most_cited],
            latency=[pb.StagePercentiles(stage=s.stage, p50_ms=s.p50_ms, p95_ms=s.p95_ms) for s in a.latency],
            upvotes=a.upvotes, downvotes=a.downvotes, feedback_ratio=a.feedback_ratio,
        )

    async def RunRetention(self, request: pb.RunRetentionRequest, context: Any) -> Any:
        report = await self.store.run_retention(self.retention_days)
        return pb.RunRetentionResponse(conversations_deleted=report.conversations_deleted,
                                       partitions_dropped=report.partitions_dropped,
                                       days_rolled_up=report.days_rolled_up)

    async def GapQuestions(self, request: pb.GapQuestionsRequest, context: Any) -> Any:
        v = Violations()
        check_message(v, request)
        if not 1 <= request.days <= 3650:
            v.add("days", "must be between 1 and 3650")
        if not 0 <= request.limit <= MAX_GAP_QUESTIONS:
            v.add("limit", f"must be between 0 and {MAX_GAP_QUESTIONS}")
        v.raise_if_any()
        found = await self.store.gap_questions(request.days, request.book, request.limit or 1000)
        return pb.GapQuestionsResponse(questions=[gap_question_to_proto(q) for q in found])
