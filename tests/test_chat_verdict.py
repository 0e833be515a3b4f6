"""Whether the book answered is one Verdict, decided once by the answerer (or by the research when
there is nothing to answer from) and followed by the engine, which never reads the answer's text
to find out: a model's refusal is caught where its text comes in, held back from the reader and
replaced by the canonical refusal; text that only starts like a refusal is an answer; the same
verdict reaches ``done`` and the recorded turn. On chat's own ports, with the real Gemini and
OpenAI answerers over scripted model streams (the SDKs' own chunk types)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any, cast

import pytest
from google.genai import types
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam
from openai.types.chat.chat_completion_chunk import Choice, ChoiceDelta

from services.chat.answerers.base import ANSWERED, Answerer, Outcome, TextAnswerer, Usage, Verdict, Written
from services.chat.answerers.gemini import GeminiAnswerer
from services.chat.answerers.openai import OpenAIAnswerer
from services.chat.answerers.refusal import screened
from services.chat.engine import ChatEngine, Question
from services.chat.events import Done, Event, Failed, Meta, Sources, TokenText, Warning
from services.chat.evidence import Evidence
from services.chat.llm.gemini import GeminiModel
from services.chat.llm.openai import OpenAIModel
from services.chat.llm.prompts import REFUSAL, SELECTION_REFUSAL, SELECTION_RULES
from services.chat.ports import PastTurn
from services.chat.recorder import Recorder
from services.chat.research import Findings, Request
from tests.test_chat_agent import FlakySessions

PID = Evidence(1, "c1", "motion/pid.md", ("PID", "Tuning"), "/docs/motion/pid#tuning", 0.9,
               "Tune the proportional gain first. Then raise the derivative gain.")
CLOSEST = REFUSAL + " The closest sections are listed below."


class ScriptedGemini:
    """GeminiModel's stream, answering with the scripted pieces; remembers each call's config."""

    name = "gemini:scripted"

    def __init__(self, pieces: Sequence[str], hang: bool = False) -> None:
        self.pieces, self.hang = pieces, hang
        self.configs: list[types.GenerateContentConfig] = []

    async def stream(self, contents: Any, config: types.GenerateContentConfig
                     ) -> AsyncIterator[types.GenerateContentResponse]:
        self.configs.append(config)
        for piece in self.pieces:
            yield types.GenerateContentResponse(candidates=[types.Candidate(
                content=types.Content(role="model", parts=[types.Part(text=piece)]))])
        if self.hang:
            await asyncio.Event().wait()

    def rules(self) -> str:
        return str(self.configs[-1].system_instruction)


class ScriptedOpenAI:
    """OpenAIModel's stream, answering with the scripted pieces; remembers each call's messages."""

    name = "openai:scripted"

    def __init__(self, pieces: Sequence[str], hang: bool = False) -> None:
        self.pieces, self.hang = pieces, hang
        self.calls: list[list[ChatCompletionMessageParam]] = []

    async def stream(self, messages: Iterable[ChatCompletionMessageParam], *, temperature: float
                     ) -> AsyncIterator[ChatCompletionChunk]:
        self.calls.append(list(messages))
        for piece in self.pieces:
            yield ChatCompletionChunk(id="c", object="chat.completion.chunk", created=0, model="scripted",
                                      choices=[Choice(index=0, delta=ChoiceDelta(content=piece))])
        if self.hang:
            await asyncio.Event().wait()

    def rules(self) -> str:
        return str(self.calls[-1][0].get("content"))


Model = ScriptedGemini | ScriptedOpenAI


def gemini(pieces: Sequence[str], hang: bool = False) -> tuple[Answerer, Model]:
    model = ScriptedGemini(pieces, hang)
    return GeminiAnswerer(cast(GeminiModel, model)), model


def openai(pieces: Sequence[str], hang: bool = False) -> tuple[Answerer, Model]:
    model = ScriptedOpenAI(pieces, hang)
    return OpenAIAnswerer(cast(OpenAIModel, model)), model


MODELS = pytest.mark.parametrize("answerer_of", [gemini, openai], ids=["gemini", "openai"])
AnswererOf = Callable[..., tuple[Answerer, Model]]


class Scripted:
    """An answerer that writes the given pieces and ends with the given verdict (None: with none)."""

    name = "scripted"

    def __init__(self, pieces: Sequence[str], verdict: Verdict | None) -> None:
        self.pieces, self.verdict = pieces, verdict

    async def reply(self, question: str, sources: Sequence[Evidence], history: Sequence[PastTurn], *,
                    selection: bool, usage: Usage) -> AsyncIterator[Written]:
        for piece in self.pieces:
            yield piece
        if self.verdict is not None:
            yield self.verdict


class Unasked:
    name = "unasked"

    def reply(self, question: str, sources: Sequence[Evidence], history: Sequence[PastTurn], *,
              selection: bool, usage: Usage) -> AsyncIterator[Written]:
        raise AssertionError("no answerer may be asked without evidence")


class Research:
    """Finds what it is given; ``None`` means no research may happen (selection mode)."""

    def __init__(self, findings: Findings | None) -> None:
        self.findings = findings

    async def gather(self, request: Request) -> Findings:
        assert self.findings is not None, "selection mode must not search"
        return self.findings


FOUND = Findings("tune the PID gains", [PID], out_of_scope=False)


async def ask(answerer: Answerer, question: Question, findings: Findings | None = FOUND,
              deadline: float = 10.0) -> tuple[list[Event], FlakySessions, int]:
    """The events of one answer, the conversations it was recorded in, and how many turns
    they held when ``done`` came (-1: no ``done``)."""
    conversations = FlakySessions(failures=0)
    engine = ChatEngine(Research(findings), answerer, conversations, Recorder(conversations), deadline)
    events: list[Event] = []
    held_at_done = -1
    async for event in engine.answer(question):
        events.append(event)
        if isinstance(event, Done):
            held_at_done = len(conversations.turns)
    return events, conversations, held_at_done


def streamed(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TokenText))


def done(events: list[Event]) -> Done:
    assert isinstance(events[-1], Done), events[-1]
    return events[-1]


def kinds(events: list[Event]) -> list[str]:
    """Event kinds in order, with runs of text folded into one."""
    out: list[str] = []
    for e in events:
        kind = type(e).__name__
        if not (out and out[-1] == kind == "TokenText"):
            out.append(kind)
    return out


GENERAL = Question(message="How do I tune the PID gains?", book="robots")


@MODELS
async def test_an_answer_that_only_starts_like_the_refusal_is_answered_in_full(answerer_of: AnswererOf) -> None:
    answer = "I couldn't find this in the book's index, but the gain is tuned first [1]."
    answerer, _ = answerer_of(["I couldn't find ", "this in the book", "'s index, but the gain ",
                               "is tuned first [1]."])
    events, conversations, held_at_done = await ask(answerer, GENERAL)
    final = done(events)
    assert final.verdict == ANSWERED and not final.out_of_scope and final.grounded
    assert streamed(events) == final.answer == answer
    assert kinds(events) == ["Meta", "Sources", "TokenText", "Done"] and held_at_done == 1
    [turn] = conversations.turns
    assert (turn.answer, turn.out_of_scope, turn.grounded) == (answer, False, True)


@MODELS
@pytest.mark.parametrize("pieces", [["I couldn't ", "find this in the book."], ["  i couldn't find this in the book"],
                                    [""], ["I couldn't find this in the book.", "  "]],
                         ids=["split", "lowercase-no-stop", "nothing", "trailing-blanks"])
async def test_a_model_refusal_is_out_of_scope_and_the_reader_sees_only_ours(answerer_of: AnswererOf,
                                                                            pieces: list[str]) -> None:
    answerer, _ = answerer_of(pieces)
    events, conversations, held_at_done = await ask(answerer, GENERAL)
    final = done(events)
    assert final.out_of_scope and final.verdict.outcome is Outcome.REFUSED and final.verdict.reason
    assert final.answer == CLOSEST and not final.grounded
    assert streamed(events) == CLOSEST  # not one of the model's own words reached the reader
    assert kinds(events) == ["Meta", "Sources", "TokenText", "Done"] and held_at_done == 1
    [turn] = conversations.turns
    assert (turn.answer, turn.out_of_scope, turn.grounded) == (CLOSEST, True, False)


async def test_the_engine_follows_the_verdict_and_never_the_text() -> None:
    # A troubleshooting page may quote the very sentence the model is told to refuse with.
    quoted = Scripted([REFUSAL], ANSWERED)
    events, conversations, _ = await ask(quoted, GENERAL)
    assert not done(events).out_of_scope and done(events).answer == streamed(events) == REFUSAL
    assert not conversations.turns[0].out_of_scope

    silent = Scripted([], Verdict(Outcome.REFUSED, "nothing relevant"))
    events, conversations, _ = await ask(silent, GENERAL)
    assert done(events).verdict == Verdict(Outcome.REFUSED, "nothing relevant")
    assert done(events).answer == streamed(events) == CLOSEST and conversations.turns[0].out_of_scope


@MODELS
async def test_a_selection_the_model_finds_silent_gets_the_selection_refusal(answerer_of: AnswererOf) -> None:
    answerer, model = answerer_of(["The selected ", "text doesn't answer this"])
    selection = "The robot is painted green. " * 400  # over the selection's token limit
    question = Question(message="How fast is it?", mode="selection", selection=selection, page_title="Robot")
    events, conversations, _ = await ask(answerer, question, findings=None)  # any search fails the test
    final = done(events)
    assert final.out_of_scope and final.verdict.outcome is Outcome.REFUSED
    assert final.answer == streamed(events) == SELECTION_REFUSAL
    assert kinds(events) == ["Meta", "Warning", "Sources", "TokenText", "Done"]
    assert [w.code for w in events if isinstance(w, Warning)] == ["SELECTION_TRUNCATED"]
    [sources] = [e for e in events if isinstance(e, Sources)]
    assert [s.heading_path for s in sources.sources] == [("Robot",)]
    assert model.rules() == SELECTION_RULES
    [turn] = conversations.turns
    assert (turn.mode, turn.out_of_scope, turn.answer) == ("selection", True, SELECTION_REFUSAL)


@MODELS
async def test_a_selection_answer_keeps_only_citations_of_the_selection(answerer_of: AnswererOf) -> None:
    answerer, _ = answerer_of(["It runs at 42 km/h [", "1][", "3]."])
    question = Question(message="How fast is it?", mode="selection", selection="It runs at 42 km/h.")
    events, conversations, _ = await ask(answerer, question, findings=None)
    final = done(events)
    assert final.verdict == ANSWERED and final.grounded
    assert streamed(events) == final.answer == "It runs at 42 km/h [1]."
    assert conversations.turns[0].rewritten_query == ""


async def test_without_evidence_no_answerer_is_asked_and_the_research_decides() -> None:
    nearby = Findings("tune the PID gains", [PID], out_of_scope=True)
    events, conversations, held_at_done = await ask(Unasked(), GENERAL, nearby)
    final = done(events)
    assert final.verdict.outcome is Outcome.NO_EVIDENCE and final.out_of_scope and not final.grounded
    assert final.answer == streamed(events) == CLOSEST
    assert held_at_done == 1 and conversations.turns[0].out_of_scope

    nothing = Findings("tune the PID gains", [], out_of_scope=True)
    events, _, _ = await ask(Unasked(), GENERAL, nothing)
    assert done(events).answer == REFUSAL and done(events).verdict.outcome is Outcome.NO_EVIDENCE


class Blanks(TextAnswerer):
    """A text-only answerer writing the given pieces."""

    name = "blanks"

    def __init__(self, *pieces: str) -> None:
        self.pieces = pieces

    async def stream(self, question: str, sources: Sequence[Evidence], history: Sequence[PastTurn], *,
                     selection: bool, usage: Usage) -> AsyncIterator[str]:
        for piece in self.pieces:
            yield piece


async def test_a_text_only_answerer_that_writes_nothing_refuses() -> None:
    events, _, _ = await ask(Blanks(" ", "\n"), GENERAL)
    assert done(events).verdict.outcome is Outcome.REFUSED and streamed(events) == CLOSEST
    events, _, _ = await ask(Blanks(" ", "Tune the gain [1]."), GENERAL)
    assert done(events).verdict == ANSWERED and streamed(events) == " Tune the gain [1]."


async def test_an_answerer_that_gives_no_verdict_fails_the_answer_instead_of_guessing() -> None:
    events, conversations, _ = await ask(Scripted(["Tune the gain [1]."], None), GENERAL)
    last = events[-1]
    assert isinstance(last, Failed) and last.code == "INTERNAL" and "verdict" in last.message
    assert not conversations.turns


@MODELS
async def test_a_model_past_the_deadline_fails_and_records_nothing(answerer_of: AnswererOf) -> None:
    answerer, _ = answerer_of(["I couldn't"], hang=True)  # held back, then silence
    events, conversations, _ = await ask(answerer, GENERAL, deadline=0.2)
    assert isinstance(events[0], Meta) and streamed(events) == ""
    last = events[-1]
    assert isinstance(last, Failed) and last.code == "DEADLINE_EXCEEDED" and not conversations.turns


async def pieces_of(*chunks: str) -> AsyncIterator[str]:
    for chunk in chunks:
        yield chunk


async def test_screening_holds_back_only_while_the_text_may_still_become_the_refusal() -> None:
    out = [p async for p in screened(pieces_of("I", " couldn't", " find the setting, ", "so see [1]."))]
    assert out == ["I couldn't find the setting, ", "so see [1].", ANSWERED]
    refused = [p async for p in screened(pieces_of("The selected", " text doesn't answer this."))]
    assert len(refused) == 1 and isinstance(refused[0], Verdict) and refused[0].out_of_scope
