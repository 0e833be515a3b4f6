"""Chat on keyword-only evidence: when retrieval reports that its semantic search is down, the
reader is told so (a KEYWORD_ONLY warning before the answer) and still gets a cited answer,
and the turn is recorded as usual."""

from __future__ import annotations

from services.chat.answerers.extractive import ExtractiveAnswerer
from services.chat.engine import ChatEngine, Question
from services.chat.events import Done, Sources, TokenText, Warning
from services.chat.evidence import Evidence
from services.chat.ports import PastTurn, SearchOutcome, TurnRecord
from services.chat.recorder import Recorder
from services.chat.research import RuleResearch

PASSAGE = Evidence(1, "c1", "motion/pid.md", ("PID", "Tuning procedure"), "/docs/motion/pid#tuning-procedure",
                   0.03, "Tune the proportional gain first. Then raise the derivative gain until the overshoot stops.")


class KeywordOnlySearch:
    """Retrieval whose embedder is down: BM25 results, flagged as degraded."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    async def search(self, query: str, book: str, top_k: int, module: str = "") -> SearchOutcome:
        self.queries.append(query)
        return SearchOutcome([PASSAGE], out_of_scope=False, degraded=True)


class InMemoryConversations:
    def __init__(self) -> None:
        self.turns: list[TurnRecord] = []

    async def create(self, book: str) -> tuple[str, str]:
        return "conversation-1", "token-1"

    async def history(self, conversation_id: str, token: str, pairs: int) -> list[PastTurn]:
        return []

    async def append(self, turn: TurnRecord) -> None:
        self.turns.append(turn)


async def test_keyword_only_evidence_is_flagged_and_still_answered_with_citations() -> None:
    search, conversations = KeywordOnlySearch(), InMemoryConversations()
    recorder = Recorder(conversations, 10)
    recorder.start()
    try:
        engine = ChatEngine(RuleResearch(search), ExtractiveAnswerer(), conversations, recorder, 10.0)
        events = [e async for e in engine.answer(Question(message="How do I tune the PID gains?", book="robots"))]
        await recorder.drain(2.0)
    finally:
        await recorder.stop()
    kinds = [type(e) for e in events]
    warnings = [e for e in events if isinstance(e, Warning)]
    assert [w.code for w in warnings] == ["KEYWORD_ONLY"]
    assert kinds.index(Warning) < kinds.index(Sources) < kinds.index(TokenText)
    done = events[-1]
    assert isinstance(done, Done) and done.grounded and not done.out_of_scope
    assert "[1]" in done.answer and "proportional gain" in done.answer
    assert search.queries and len(conversations.turns) == 1
