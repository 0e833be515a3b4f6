"""Gemini writes the answer from the numbered sources, streamed; its refusal is caught on the way."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from google.genai import types

from services.chat.answerers.base import Usage
from services.chat.answerers.refusal import ModelAnswerer
from services.chat.evidence import Evidence
from services.chat.llm.gemini import GeminiModel
from services.chat.llm.prompts import ANSWER_RULES, SELECTION_RULES, answer_prompt, history_turns
from services.chat.ports import PastTurn


class GeminiAnswerer(ModelAnswerer[GeminiModel]):
    async def _text(self, question: str, sources: Sequence[Evidence], history: Sequence[PastTurn],
                    selection: bool, usage: Usage) -> AsyncIterator[str]:
        config = types.GenerateContentConfig(
            system_instruction=SELECTION_RULES if selection else ANSWER_RULES,
            temperature=self.temperature,
        )
        contents = [] if selection else history_turns(history)
        contents.append({"role": "user", "parts": [{"text": answer_prompt(question, sources)}]})
        async for chunk in self.model.stream(contents, config):
            if chunk.usage_metadata and chunk.usage_metadata.total_token_count:
                usage.tokens = chunk.usage_metadata.total_token_count
            text = chunk.text or ""
            if text:
                yield text
