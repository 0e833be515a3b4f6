"""The agent loop: research, judge, answer, cite, record. Knows nothing of gRPC.

Bounded: the researcher makes at most three searches, and the whole answer runs under one
deadline. When the book has no answer the reply is a refusal with the closest sections,
never an invented answer. The turn is recorded before ``done`` (see Recorder.record), so
whatever the reader does with the answer's id next (feedback, reading the conversation)
finds it; when sessions cannot take it in time the answer is still given and the turn waits
in the recorder's queue. Whether the book answered is one Verdict: the research's when it found
nothing to answer from, else the answerer's; it goes unchanged to ``done`` and to the recorded turn.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from embedding.tokens import truncate_tokens
from runtime.errors import Internal, LecternError
from services.chat.answerers.base import Answerer, Outcome, Usage, Verdict
from services.chat.citations import CitationFilter, verify_citations
from services.chat.events import Done, Event, Failed, Meta, Sources, TokenText, Warning
from services.chat.evidence import Evidence, close_sections
from services.chat.llm.prompts import REFUSAL, SELECTION_REFUSAL
from services.chat.ports import Conversations, PastTurn, TurnRecord
from services.chat.recorder import Recorder
from services.chat.research import Findings, Request, Research

log = logging.getLogger("lectern.chat.engine")

HISTORY_PAIRS = 3
MAX_SELECTION_TOKENS = 2000


@dataclass(frozen=True)
class Question:
    message: str
    mode: str = "general"  # or "selection"
    selection: str = ""
    conversation_id: str = ""
    conversation_token: str = ""
    book: str = "default"
    page_url: str = ""
    page_title: str = ""
    version: str = ""  # the docs version and locale the reader is on, "" when unknown
    locale: str = ""


def selection_evidence(question: Question, text: str) -> Evidence:
    title = question.page_title or "Selected text"
    return Evidence(1, "", "", (title,), question.page_url, 1.0, text)


def refusal_text(q: Question, sources: list[Evidence]) -> str:
    """What the reader is shown when the book has no answer, whatever words the answerer used."""
    if q.mode == "selection":
        return SELECTION_REFUSAL
    return REFUSAL + (" The closest sections are listed below." if sources else "")


def _ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


@dataclass
class _Turn:
    """One answer in the making: where it is recorded, and what each step found."""

    q: Question
    started: float
    cid: str
    token: str
    query: str
    """What the answerer is asked: the research's standalone rewrite, or the reader's own words."""
    history: list[PastTurn] = field(default_factory=list)
    message_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    sources: list[Evidence] = field(default_factory=list)
    text: str = ""
    verdict: Verdict | None = None
    timings: dict[str, float] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)

    def record(self, answer: str, grounded: bool, verdict: Verdict) -> TurnRecord:
        return TurnRecord(
            conversation_id=self.cid, turn_id=self.message_id, question=self.q.message, answer=answer,
            mode=self.q.mode, rewritten_query=self.query if self.query != self.q.message else "",
            sources=self.sources, latencies_ms=self.timings, tokens=self.usage.tokens,
            out_of_scope=verdict.out_of_scope, grounded=grounded, answer_message_id=self.message_id,
        )


class ChatEngine:
    def __init__(self, research: Research, answerer: Answerer, conversations: Conversations, recorder: Recorder,
                 deadline_seconds: float = 30.0) -> None:
        self.research = research
        self.answerer = answerer
        self.conversations = conversations
        self.recorder = recorder
        self.deadline_seconds = deadline_seconds

    async def answer(self, q: Question) -> AsyncIterator[Event]:
        turn = _Turn(q, time.perf_counter(), q.conversation_id, q.conversation_token, q.message)
        if turn.cid and q.mode == "general":  # a selection is answered from itself alone
            turn.history = await self.conversations.history(turn.cid, turn.token, HISTORY_PAIRS)
        creating = None if turn.cid else asyncio.create_task(self.conversations.create(q.book))
        # Research starts now, beside the conversation's creation: the first token comes sooner.
        researching = None if q.mode == "selection" else asyncio.create_task(
            self.research.gather(Request(q.message, q.book, turn.history, q.page_url, q.version, q.locale)))
        try:
            async for event in self._run(turn, creating, researching):
                yield event
        finally:
            for task in (creating, researching):
                if task is not None and not task.done():
                    task.cancel()  # the reader went away: stop the upstream work

    async def _run(self, turn: _Turn, creating: asyncio.Task[tuple[str, str]] | None,
                   researching: asyncio.Task[Findings] | None) -> AsyncIterator[Event]:
        if creating is not None and (warning := await self._join(turn, creating)):
            yield warning
        yield Meta(turn.cid, turn.token, turn.message_id)
        try:
            async with asyncio.timeout(self.deadline_seconds):
                steps = self._selection(turn) if researching is None else self._general(turn, researching)
                async for event in steps:
                    yield event
        except TimeoutError:
            yield Failed("DEADLINE_EXCEEDED", "the answer took too long; try again")
            return
        except LecternError as exc:
            yield Failed(exc.code, exc.message)
            return
        async for event in self._conclude(turn):
            yield event

    async def _join(self, turn: _Turn, creating: asyncio.Task[tuple[str, str]]) -> Warning | None:
        """The new conversation's id and token; without them the answer is still given, unrecorded."""
        try:
            turn.cid, turn.token = await creating
        except LecternError as exc:
            log.warning("conversation not created; answering without a record", extra={"error": exc.message})
            return Warning("NOT_RECORDED", "the conversation could not be saved; the answer is still given")
        return None

    async def _selection(self, turn: _Turn) -> AsyncIterator[Event]:
        """Selection mode: the reader's selected text is the one source; nothing is searched."""
        selection, cut = truncate_tokens(turn.q.selection, MAX_SELECTION_TOKENS)
        if cut:
            yield Warning("SELECTION_TRUNCATED", f"the selection was cut to its first {MAX_SELECTION_TOKENS} tokens")
        turn.sources = [selection_evidence(turn.q, selection)]
        yield Sources(turn.sources)
        async for event in self._write(turn, selection=True):
            yield event

    async def _general(self, turn: _Turn, researching: asyncio.Task[Findings]) -> AsyncIterator[Event]:
        """General mode: the research's evidence is answered from. When the research judged that the
        book has no answer, no answerer is asked and only the sections close to the question are listed."""
        t0 = time.perf_counter()
        findings = await researching
        turn.timings["retrieve"] = _ms_since(t0)
        turn.query = findings.query
        if findings.degraded:
            yield Warning("KEYWORD_ONLY", "semantic search is unavailable; results come from keyword search")
        turn.sources = close_sections(turn.q.message, findings.evidence) if findings.out_of_scope \
            else findings.evidence
        yield Sources(turn.sources)
        if findings.out_of_scope or not turn.sources:
            turn.verdict = Verdict(Outcome.NO_EVIDENCE, "the research found no section that answers the question")
            turn.timings["generate"] = 0.0  # every answer reports the same stages
            return
        async for event in self._write(turn, selection=False):
            yield event

    async def _write(self, turn: _Turn, *, selection: bool) -> AsyncIterator[Event]:
        """The answerer's pieces, passing on only citations of given sources, then its verdict."""
        t0 = time.perf_counter()
        citations = CitationFilter({s.n for s in turn.sources})
        async for piece in self.answerer.reply(turn.query, turn.sources, turn.history, selection=selection,
                                               usage=turn.usage):
            if isinstance(piece, Verdict):
                turn.verdict = piece
                continue
            turn.timings.setdefault("first_token", _ms_since(turn.started))
            turn.text += piece
            if shown := citations.feed(piece):
                yield TokenText(shown)
        if rest := citations.flush():
            yield TokenText(rest)
        turn.timings["generate"] = _ms_since(t0)
        if turn.verdict is None:
            raise Internal(f"the answerer {self.answerer.name} ended without a verdict")

    async def _conclude(self, turn: _Turn) -> AsyncIterator[Event]:
        """The final answer (the canonical refusal when the verdict says so), recorded before done."""
        verdict = turn.verdict
        assert verdict is not None  # each mode sets it or fails
        if verdict.out_of_scope:
            answer, grounded = refusal_text(turn.q, turn.sources), False
            for piece in _words(answer):
                yield TokenText(piece)
        else:
            answer, grounded = verify_citations(turn.text, turn.sources)
        turn.timings["total"] = _ms_since(turn.started)
        if turn.cid and not await self.recorder.record(turn.record(answer, grounded, verdict)):
            yield Warning("NOT_RECORDED", "the answer could not be saved, so it cannot be rated; it is still given")
        yield Done(answer, grounded, verdict)


def _words(text: str) -> list[str]:
    parts = text.split(" ")
    return [p + (" " if i < len(parts) - 1 else "") for i, p in enumerate(parts)]
