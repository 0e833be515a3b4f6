"""The agent loop: rewrite, retrieve, judge, answer, cite, record. Knows nothing of gRPC.

Bounded: at most three searches (the question, one reformulation, nothing more) under one
overall deadline. When the book has no answer the reply is a refusal with the closest
sections, never an invented answer.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from runtime.errors import LecternError
from services.chat.answerers.extractive import extract
from services.chat.events import Done, Event, Failed, Meta, Sources, TokenText, Warning
from services.chat.evidence import Evidence, content_words
from services.chat.ports import Conversations, PastTurn, Search, SearchOutcome, TurnRecord
from services.chat.recorder import Recorder

log = logging.getLogger("lectern.chat.engine")

REFUSAL = "I couldn't find this in the book."
_CITATION = re.compile(r"\[(\d+)\]")
_FOLLOW_UP = re.compile(r"\b(it|its|this|that|these|those|they|them|their|there|he|she|one)\b", re.I)
HISTORY_PAIRS = 3
TOP_K = 5


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


def rewrite(message: str, history: list[PastTurn]) -> str:
    """A follow-up ("how do I test it?") becomes standalone by borrowing the last topic."""
    if not history:
        return message
    own = content_words(message)
    if _FOLLOW_UP.search(message) or len(own) < 3:
        topic = [w for w in content_words(history[-1].question) if w not in own]
        if topic:
            return f"{message} ({' '.join(topic[:8])})"
    return message


def reformulate(query: str) -> str:
    """The second try: only the content words, which keyword search weighs best."""
    return " ".join(content_words(query))


def verify_citations(answer: str, sources: list[Evidence]) -> tuple[str, bool]:
    """Drops [n] that name no given source; grounded when every sentence keeps a citation."""
    valid = {s.n for s in sources}
    cleaned = _CITATION.sub(lambda m: m.group(0) if int(m.group(1)) in valid else "", answer)
    cleaned = re.sub(r"\s+([.,;:!?])", r"\1", cleaned).strip()
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", cleaned) if s.strip()]
    grounded = bool(sentences) and all(_CITATION.search(s) for s in sentences)
    return cleaned, grounded


def pieces(text: str, words_per_piece: int = 4) -> list[str]:
    tokens = re.findall(r"\S+\s*", text)
    return ["".join(tokens[i:i + words_per_piece]) for i in range(0, len(tokens), words_per_piece)]


def selection_evidence(question: Question) -> Evidence:
    title = question.page_title or "Selected text"
    return Evidence(1, "", "", (title,), question.page_url, 1.0, question.selection)


class ChatEngine:
    def __init__(self, search: Search, conversations: Conversations, recorder: Recorder,
                 deadline_seconds: float = 30.0) -> None:
        self.search = search
        self.conversations = conversations
        self.recorder = recorder
        self.deadline_seconds = deadline_seconds

    async def answer(self, q: Question) -> AsyncIterator[Event]:
        started = time.perf_counter()
        timings: dict[str, float] = {}
        cid, token = q.conversation_id, q.conversation_token
        history: list[PastTurn] = []
        if cid:
            history = await self.conversations.history(cid, token, HISTORY_PAIRS) if q.mode == "general" else []
        else:
            try:
                cid, token = await self.conversations.create(q.book)
            except LecternError as exc:
                log.warning("conversation not created; answering without a record", extra={"error": exc.message})
                yield Warning("NOT_RECORDED", "the conversation could not be saved; the answer is still given")
        message_id = str(uuid.uuid4())
        yield Meta(cid, token, message_id)

        try:
            async with asyncio.timeout(self.deadline_seconds):
                if q.mode == "selection":
                    query, outcome = q.message, SearchOutcome([selection_evidence(q)], out_of_scope=False)
                else:
                    t0 = time.perf_counter()
                    query = rewrite(q.message, history)
                    timings["rewrite"] = (time.perf_counter() - t0) * 1000
                    t0 = time.perf_counter()
                    outcome = await self.search.search(query, q.book, TOP_K)
                    if outcome.out_of_scope:
                        second = reformulate(query)
                        if second and second != query:
                            retry = await self.search.search(second, q.book, TOP_K)
                            if not retry.out_of_scope:
                                query, outcome = second, retry
                    timings["retrieve"] = (time.perf_counter() - t0) * 1000
        except TimeoutError:
            yield Failed("DEADLINE_EXCEEDED", "the answer took too long; try again")
            return
        except LecternError as exc:
            yield Failed(exc.code, exc.message)
            return

        t0 = time.perf_counter()
        sources = outcome.evidence
        text = "" if outcome.out_of_scope else extract(q.message if q.mode == "selection" else query, sources)
        out_of_scope = not text
        if out_of_scope:
            if q.mode == "selection":
                text = "The selected text doesn't answer this."
            else:
                text = REFUSAL + (" The closest sections are listed below." if sources else "")
            answer, grounded = text, False
        else:
            answer, grounded = verify_citations(text, sources)
        yield Sources(sources)
        for piece in pieces(answer):
            yield TokenText(piece)
        timings["generate"] = (time.perf_counter() - t0) * 1000
        timings["total"] = (time.perf_counter() - started) * 1000
        yield Done(answer, grounded, out_of_scope)
        if cid:
            self.recorder.submit(TurnRecord(
                conversation_id=cid, turn_id=message_id, question=q.message, answer=answer, mode=q.mode,
                rewritten_query=query if query != q.message else "", sources=sources, latencies_ms=timings,
                out_of_scope=out_of_scope, grounded=grounded, answer_message_id=message_id,
            ))
