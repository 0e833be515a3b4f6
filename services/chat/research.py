"""Finding the evidence: the agent's tool loop, bounded to three searches.

Two researchers share one contract. RuleResearch runs offline on deterministic rules (rewrite
a follow-up, search, reformulate once when the evidence is weak). GeminiResearch lets Gemini
drive the same `search_book(query, module?)` tool by function calling. Both return numbered
evidence and whether the book seems to hold no answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from google.genai import types

from services.chat.evidence import Evidence, content_words
from services.chat.llm.gemini import GeminiModel
from services.chat.llm.prompts import RESEARCH_RULES, history_turns
from services.chat.ports import PastTurn, Search, SearchOutcome

MAX_TOOL_CALLS = 3
TOP_K = 5
MAX_SOURCES = 6
_FOLLOW_UP = re.compile(r"\b(it|its|this|that|these|those|they|them|their|there|he|she|one)\b", re.I)
_NAMED_MODULE = re.compile(r"\b(?:in|from|of) the ([\w-]+(?: [\w-]+)?) (?:module|chapter|part)\b", re.I)


@dataclass(frozen=True)
class Request:
    message: str
    book: str
    history: Sequence[PastTurn] = ()
    page_url: str = ""


@dataclass
class Findings:
    query: str
    """The standalone query the first search used (the rewrite)."""
    evidence: list[Evidence]
    out_of_scope: bool
    searches: list[str] = field(default_factory=list)
    degraded: bool = False


class Research(Protocol):
    async def gather(self, request: Request) -> Findings: ...


def rewrite(message: str, history: Sequence[PastTurn]) -> str:
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
    """The second try: only the content words, which keyword search weighs best, as written:
    capitals mark the names retrieval uses to tell what the book never mentions."""
    return " ".join(content_words(query, keep_case=True))


def named_module(message: str) -> str:
    """'... in the motion module' -> 'motion' (module folders are slugs)."""
    m = _NAMED_MODULE.search(message)
    return m.group(1).lower().replace(" ", "-") if m else ""


def _page_path(url: str) -> str:
    return url.split("#", 1)[0].rstrip("/")


def prefer_page(evidence: list[Evidence], page_url: str, message: str) -> list[Evidence]:
    """An ambiguous question ("what does this mean?") is most likely about the page being read."""
    page = _page_path(page_url)
    if not page or (len(content_words(message)) > 3 and not _FOLLOW_UP.search(message)):
        return evidence
    on_page = [e for e in evidence if page.endswith(_page_path(e.url)) or _page_path(e.url).endswith(page)]
    rest = [e for e in evidence if e not in on_page]
    return renumber(on_page + rest) if on_page else evidence


def renumber(evidence: Sequence[Evidence]) -> list[Evidence]:
    return [Evidence(i, e.chunk_id, e.file_path, e.heading_path, e.url, e.score, e.content)
            for i, e in enumerate(evidence, start=1)]


class RuleResearch:
    """The offline agent: deterministic rules drive the tool."""

    def __init__(self, search: Search) -> None:
        self.search = search

    async def gather(self, request: Request) -> Findings:
        query = rewrite(request.message, request.history)
        module = named_module(request.message)
        outcome = await self.search.search(query, request.book, TOP_K, module)
        searches = [query]
        if module and not outcome.evidence:
            outcome = await self.search.search(query, request.book, TOP_K)
            searches.append(query)
        if outcome.out_of_scope:
            second = reformulate(query)
            if second and second != query and len(searches) < MAX_TOOL_CALLS:
                searches.append(second)
                retry = await self.search.search(second, request.book, TOP_K)
                if not retry.out_of_scope:
                    outcome = retry
        evidence = prefer_page(outcome.evidence, request.page_url, request.message)
        return Findings(query, evidence, outcome.out_of_scope, searches, outcome.degraded)


SEARCH_TOOL = types.Tool(function_declarations=[types.FunctionDeclaration(
    name="search_book",
    description="Search the book for the sections that answer a question. Returns numbered excerpts.",
    parameters_json_schema={
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "A standalone search query."},
            "module": {"type": "string", "description": "Only search this part (module) of the book."},
        },
        "required": ["query"],
    },
)])


class GeminiResearch:
    """Gemini chooses the searches by function calling; we run them and keep the evidence."""

    def __init__(self, model: GeminiModel, search: Search) -> None:
        self.model = model
        self.search = search

    async def gather(self, request: Request) -> Findings:
        contents: list[Any] = history_turns(request.history)
        page = f"\n(The reader is on the page {request.page_url}.)" if request.page_url else ""
        contents.append({"role": "user", "parts": [{"text": request.message + page}]})
        found: dict[str, Evidence] = {}
        outcomes: list[SearchOutcome] = []
        searches: list[str] = []
        while len(searches) < MAX_TOOL_CALLS:
            # The first turn must search: an answer needs evidence. Later turns may stop.
            mode = (types.FunctionCallingConfigMode.ANY if not searches
                    else types.FunctionCallingConfigMode.AUTO)
            config = types.GenerateContentConfig(
                system_instruction=RESEARCH_RULES, tools=[SEARCH_TOOL], temperature=0.0,
                tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(mode=mode)),
                automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
            )
            response = await self.model.generate(contents, config)
            calls = [c for c in (response.function_calls or []) if c.name == "search_book"]
            if not calls:
                break
            contents.append(response.candidates[0].content if response.candidates else
                            {"role": "model", "parts": [{"function_call": calls[0]}]})
            replies = []
            for call in calls[: MAX_TOOL_CALLS - len(searches)]:
                args = call.args or {}
                query = str(args.get("query") or request.message)[:1000]
                outcome = await self.search.search(query, request.book, TOP_K, str(args.get("module") or ""))
                searches.append(query)
                outcomes.append(outcome)
                for e in outcome.evidence:
                    found.setdefault(e.chunk_id, e)
                replies.append(types.Part.from_function_response(name="search_book", response={
                    "out_of_scope": outcome.out_of_scope,
                    "results": [{"section": " > ".join(e.heading_path), "excerpt": e.content[:600]}
                                for e in outcome.evidence],
                }))
            contents.append(types.Content(role="user", parts=replies))
        if not searches:  # the model would not search; search the question itself
            outcome = await self.search.search(request.message, request.book, TOP_K)
            searches.append(request.message)
            outcomes.append(outcome)
            found = {e.chunk_id: e for e in outcome.evidence}
        ranked = sorted(found.values(), key=lambda e: -e.score)[:MAX_SOURCES]
        evidence = prefer_page(renumber(ranked), request.page_url, request.message)
        return Findings(searches[0], evidence, all(o.out_of_scope for o in outcomes), searches,
                        any(o.degraded for o in outcomes))
