"""SessionsService over gRPC: validate, call the store, map the result.

Every request's text is checked first (``check_message``): what Postgres cannot store is
refused with a field violation before it reaches the database."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf import timestamp_pb2
from lectern.common.v1 import common_pb2
from lectern.sessions.v1 import sessions_service_pb2 as pb
from lectern.sessions.v1 import sessions_service_pb2_grpc as pb_grpc

from runtime import limits
from runtime.batching import Batcher
from runtime.errors import Violations
from runtime.text import check_message
from services.sessions.analytics import analytics
from services.sessions.gaps import gap_questions
from services.sessions.retention import run_retention
from services.sessions.store import ConversationStore, Source, Turn

MAX_GAP_QUESTIONS = 5000  # a gap report's questions per call: what the gateway embeds in one go


def _ts(value: datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def _source_to_proto(s: Source) -> common_pb2.SourceReference:
    return common_pb2.SourceReference(n=s.n, chunk_id=s.chunk_id, file_path=s.file_path,
                                      heading_path=list(s.heading_path), url=s.url, score=s.score)


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
        if request.mode not in ("", "general", "selection"):
            v.add("mode", "must be general or selection")
        numbers: set[int] = set()
        for i, source in enumerate(request.sources):
            # n is how the answer cites the source, and the rank it is stored under.
            if source.n < 1 or source.n in numbers:
                v.add(f"sources[{i}].n", "must be a positive number no other source of the turn has")
            numbers.add(source.n)
        v.raise_if_any()
        qid, aid = await self.turns.submit(Turn(
            conversation_id=request.conversation_id, turn_id=request.turn_id, question=request.question,
            answer=request.answer, mode=request.mode or "general", rewritten_query=request.rewritten_query,
            sources=[Source(s.n, s.chunk_id, s.file_path, tuple(s.heading_path), s.url, s.score)
                     for s in request.sources],
            latencies_ms={lat.stage: lat.ms for lat in request.latencies}, tokens=request.tokens,
            out_of_scope=request.out_of_scope, grounded=request.grounded,
            answer_message_id=request.answer_message_id,
        ))
        return pb.AppendTurnResponse(question_message_id=qid, answer_message_id=aid)

    async def GetConversation(self, request: pb.GetConversationRequest, context: Any) -> Any:
        v = Violations()
        check_message(v, request)
        _need_conversation(v, request.conversation_id, request.conversation_token)
        v.raise_if_any()
        c = await self.store.get(request.conversation_id, request.conversation_token)
        return pb.GetConversationResponse(conversation_id=c.conversation_id, book=c.book,
                                          created_at=_ts(c.created_at), last_active_at=_ts(c.last_active_at))

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
                                 sources=[_source_to_proto(s) for s in m.sources], created_at=_ts(m.created_at),
                                 mode=m.mode) for m in messages],
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
        a = await analytics(self.store.pool, request.days, request.book, request.limit or 10, self.store.clock)
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
        report = await run_retention(self.store.pool, self.retention_days, self.store.clock)
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
        found = await gap_questions(self.store.pool, request.days, request.book, request.limit or 1000,
                                    self.store.clock)
        return pb.GapQuestionsResponse(questions=[
            pb.GapQuestion(question=q.question, book=q.book, asked_at=_ts(q.asked_at), out_of_scope=q.out_of_scope,
                           ungrounded=q.ungrounded, downvoted=q.downvoted) for q in found])
