"""The agent loop: research, judge, answer, cite, record. Knows nothing of gRPC.

Bounded: the researcher makes at most three searches, and the whole answer runs under one
deadline. When the book has no answer the reply is a refusal with the closest sections,
never an invented answer. The turn is recorded before ``done`` (see Recorder.record), so
whatever the reader does with the answer's id next (feedback, reading the conversation)
finds it; when sessions cannot take it in time the answer is still given and the turn waits
in the recorder's queue.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from embedding.tokens import truncate_tokens
from runtime.errors import LecternError
from services.chat.answerers.base import Answerer, Usage
from services.chat.citations import CitationFilter, verify_citations
from services.chat.events import Done, Event, Failed, Meta, Sources, TokenText, Warning
from services.chat.evidence import Evidence, close_sections
from services.chat.llm.prompts import REFUSAL
from services.chat.ports import Conversations, PastTurn, TurnRecord
from services.chat.recorder import Recorder
from services.chat.research import Findings, Request, Research

log = logging.getLogger("lectern.chat.engine")

SELECTION_REFUSAL = "The selected text doesn't answer this."
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


def is_refusal(text: str) -> bool:
    core = text.strip().rstrip(".").lower()
    return not core or core in (REFUSAL.rstrip(".").lower(), SELECTION_REFUSAL.rstrip(".").lower())


def may_be_refusal(text: str) -> bool:
    start = text.strip().lower()
    return any(r.lower().startswith(start) for r in (REFUSAL, SELECTION_REFUSAL))


class ChatEngine:
    def __init__(self, research: Research, answerer: Answerer, conversations: Conversations, recorder: Recorder,
                 deadline_seconds: float = 30.0) -> None:
        self.research = research
        self.answerer = answerer
        self.conversations = conversations
        self.recorder = recorder
        self.deadline_seconds = deadline_seconds

    async def answer(self, q: Question) -> AsyncIterator[Event]:
        started = time.perf_counter()
        cid, token = q.conversation_id, q.conversation_token
        history: list[PastTurn] = []
        creating: asyncio.Task[tuple[str, str]] | None = None
        if cid:
            history = await self.conversations.history(cid, token, HISTORY_PAIRS) if q.mode == "general" else []
        else:
            creating = asyncio.create_task(self.conversations.create(q.book))
        # Research starts now, beside the conversation's creation: the first token comes sooner.
        researching = None if q.mode == "selection" else asyncio.create_task(
            self.research.gather(Request(q.message, q.book, history, q.page_url, q.version, q.locale)))
        try:
            async for event in self._answer(q, started, cid, token, history, creating, researching):
                yield event
        finally:
            for task in (creating, researching):
                if task is not None and not task.done():
                    task.cancel()  # the reader went away: stop the upstream work

    async def _answer(self, q: Question, started: float, cid: str, token: str, history: list[PastTurn],
                      creating: asyncio.Task[tuple[str, str]] | None,
                      researching: asyncio.Task[Findings] | None) -> AsyncIterator[Event]:
        if creating is not None:
            try:
                cid, token = await creating
            except LecternError as exc:
                log.warning("conversation not created; answering without a record", extra={"error": exc.message})
                yield Warning("NOT_RECORDED", "the conversation could not be saved; the answer is still given")
        message_id = str(uuid.uuid4())
        yield Meta(cid, token, message_id)

        timings: dict[str, float] = {}
        usage = Usage()
        record = _Record(q, cid, message_id)
        try:
            async with asyncio.timeout(self.deadline_seconds):
                t0 = time.perf_counter()
                if q.mode == "selection":
                    selection, cut = truncate_tokens(q.selection, MAX_SELECTION_TOKENS)
                    if cut:
                        yield Warning("SELECTION_TRUNCATED",
                                      f"the selection was cut to its first {MAX_SELECTION_TOKENS} tokens")
                    findings = Findings(q.message, [selection_evidence(q, selection)], out_of_scope=False)
                else:
                    assert researching is not None
                    findings = await researching
                    timings["retrieve"] = (time.perf_counter() - t0) * 1000
                if findings.degraded:
                    yield Warning("KEYWORD_ONLY", "semantic search is unavailable; results come from keyword search")
                # A question the book cannot answer lists only the sections close to it, or none.
                sources = close_sections(q.message, findings.evidence) if findings.out_of_scope else findings.evidence
                yield Sources(sources)
                t0 = time.perf_counter()
                text = ""
                if not findings.out_of_scope and sources:
                    citations = CitationFilter({s.n for s in sources})
                    held = ""
                    async for piece in self.answerer.stream(q.message if q.mode == "selection" else findings.query,
                                                            sources, history, selection=q.mode == "selection",
                                                            usage=usage):
                        timings.setdefault("first_token", (time.perf_counter() - started) * 1000)
                        text += piece
                        held += citations.feed(piece)
                        # A model's refusal is replaced by ours; hold text that may still become one.
                        if held and not may_be_refusal(text):
                            yield TokenText(held)
                            held = ""
                    held += citations.flush()
                    if held and not is_refusal(text):
                        yield TokenText(held)
                timings["generate"] = (time.perf_counter() - t0) * 1000
        except TimeoutError:
            yield Failed("DEADLINE_EXCEEDED", "the answer took too long; try again")
            return
        except LecternError as exc:
            yield Failed(exc.code, exc.message)
            return

        out_of_scope = is_refusal(text)
        if out_of_scope:
            answer = SELECTION_REFUSAL if q.mode == "selection" else (
                REFUSAL + (" The closest sections are listed below." if sources else ""))
            grounded = False
            for piece in _words(answer):
                yield TokenText(piece)
        else:
            answer, grounded = verify_citations(text, sources)
        timings["total"] = (time.perf_counter() - started) * 1000
        if cid and not await self.recorder.record(
                record.turn(findings, answer, sources, timings, usage.tokens, out_of_scope, grounded)):
            yield Warning("NOT_RECORDED", "the answer could not be saved, so it cannot be rated; it is still given")
        yield Done(answer, grounded, out_of_scope)


def _words(text: str) -> list[str]:
    parts = text.split(" ")
    return [p + (" " if i < len(parts) - 1 else "") for i, p in enumerate(parts)]


@dataclass(frozen=True)
class _Record:
    q: Question
    cid: str
    message_id: str

    def turn(self, findings: Findings, answer: str, sources: list[Evidence], timings: dict[str, float],
             tokens: int, out_of_scope: bool, grounded: bool) -> TurnRecord:
        rewritten = findings.query if findings.query != self.q.message else ""
        return TurnRecord(
            conversation_id=self.cid, turn_id=self.message_id, question=self.q.message, answer=answer,
            mode=self.q.mode, rewritten_query=rewritten, sources=sources, latencies_ms=timings, tokens=tokens,
            out_of_scope=out_of_scope, grounded=grounded, answer_message_id=self.message_id,
        )
