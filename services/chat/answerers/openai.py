"""An OpenAI-compatible model writes the answer from the numbered sources, streamed; its refusal is caught
on the way."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from services.chat.answerers.base import Usage
from services.chat.answerers.refusal import ModelAnswerer
from services.chat.evidence import Evidence
from services.chat.llm.openai import OpenAIModel, history_messages, system, user
from services.chat.llm.prompts import ANSWER_RULES, SELECTION_RULES, answer_prompt
from services.chat.ports import PastTurn


class OpenAIAnswerer(ModelAnswerer[OpenAIModel]):
    async def _text(self, question: str, sources: Sequence[Evidence], history: Sequence[PastTurn],
                    selection: bool, usage: Usage) -> AsyncIterator[str]:
        messages = [system(SELECTION_RULES if selection else ANSWER_RULES),
                    *([] if selection else history_messages(history)), user(answer_prompt(question, sources))]
        async for chunk in self.model.stream(messages, temperature=self.temperature):
            if chunk.usage and chunk.usage.total_tokens:
                usage.tokens = chunk.usage.total_tokens
            for choice in chunk.choices:
                if choice.delta.content:
                    yield choice.delta.content
