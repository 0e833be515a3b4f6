"""Chat settings, read once from the environment."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embedding.factory import MODEL_DATA_DIR
from runtime import env
from runtime.settings import GEMINI_API_KEY, GEMINI_BASE_URL, ServerSettings

ANSWER_DEADLINE = env.declare(
    "LECTERN_ANSWER_DEADLINE_SECONDS", 30.0, env.number(1, 600), "Overall deadline of one answer."
)
RECORD_BUFFER = env.declare(
    "LECTERN_RECORD_BUFFER", 10_000, env.integer(10, 10_000_000),
    "Turns waiting for sessions (each retried for about a minute); beyond this the oldest is dropped and counted.",
)
GEMINI_MODEL = env.declare("LECTERN_GEMINI_MODEL", "gemini-2.5-flash", env.text, "Gemini model for answers.")
LLM_TIMEOUT = env.declare(
    "LECTERN_LLM_TIMEOUT_SECONDS", 20.0, env.number(1, 300), "Deadline of each single language-model call."
)
LLM = env.declare(
    "LECTERN_LLM", "", env.choice("gemini", "openai", "extractive"),
    "Who writes answers: gemini (needs GEMINI_API_KEY), openai (any OpenAI-compatible server: OpenAI, Ollama, "
    "vLLM, llama.cpp, LM Studio, OpenRouter; see LECTERN_OPENAI_*) or extractive (offline, no model).",
    "(gemini when GEMINI_API_KEY is set, else extractive)",
)
OPENAI_BASE_URL = env.declare(
    "LECTERN_OPENAI_BASE_URL", "", env.text,
    "Base URL of the OpenAI-compatible server, such as http://localhost:11434/v1 (Ollama) or "
    "http://localhost:8000/v1 (vLLM).", "(OpenAI's endpoint)",
)
OPENAI_MODEL = env.declare(
    "LECTERN_OPENAI_MODEL", "", env.text,
    "Model name the OpenAI-compatible server knows, such as llama3.1:8b; required with LECTERN_LLM=openai.",
    "(none)",
)
OPENAI_API_KEY = env.declare(
    "LECTERN_OPENAI_API_KEY", "", env.text, "API key for the OpenAI-compatible server; local servers need none.",
    "(none)",
)
OPENAI_TOOLS = env.declare(
    "LECTERN_OPENAI_TOOLS", "auto", env.choice("auto", "on", "off"),
    "Whether the model searches the book by tool calls: auto (until the server shows it cannot), on, or off "
    "(it writes plain-text SEARCH: lines instead).",
)
OPENAI_MAX_TOKENS = env.declare(
    "LECTERN_OPENAI_MAX_TOKENS", 1024, env.integer(16, 32_768), "Most tokens the OpenAI-compatible model writes "
    "in one reply.",
)


def _json_object(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"must be a JSON object ({exc.msg})") from None
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    return value


OPENAI_EXTRA_BODY: env.EnvVar[dict[str, Any]] = env.declare(
    "LECTERN_OPENAI_EXTRA_BODY", {}, _json_object,
    "JSON object of server-specific fields sent with every request to the OpenAI-compatible server, such as "
    '{"chat_template_kwargs": {"enable_thinking": false}} for a Qwen3 model on vLLM.', "{}",
)


@dataclass(frozen=True)
class GeminiSettings:
    api_key: str
    """Empty: Gemini is off and the extractive answerer runs."""
    model: str
    """Model name, such as gemini-2.5-flash."""
    base_url: str
    """Endpoint override; empty for Google's."""
    timeout_seconds: float
    """Deadline of each call."""


@dataclass(frozen=True)
class OpenAISettings:
    model: str
    """Model name on the server; empty unless LECTERN_LLM=openai."""
    base_url: str = ""
    """Empty for OpenAI's own endpoint."""
    api_key: str = ""
    tools: str = "auto"
    """auto, on or off: searching by tool calls or by plain-text replies."""
    max_tokens: int = 1024
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    """Server-specific request fields."""
    timeout_seconds: float = 20.0


@dataclass(frozen=True)
class ChatSettings:
    server: ServerSettings
    """How the service listens and reaches retrieval and sessions."""
    answer_deadline_seconds: float
    """Deadline of one whole answer."""
    record_buffer: int
    """Capacity of the buffer of turns awaiting sessions."""
    gemini: GeminiSettings
    """Gemini, when a key is set."""
    openai: OpenAISettings = OpenAISettings("")
    """An OpenAI-compatible model, used when llm is "openai"."""
    llm_choice: str = ""
    """LECTERN_LLM as given; "" picks Gemini when it has a key, else the extractive answerer."""
    model_data_dir: Path | None = MODEL_DATA_DIR.default
    """Folder of the bundled models (the extractive answerer's cross-encoder); None: the wheel's."""

    @property
    def llm(self) -> str:
        """Who writes answers: gemini, openai or extractive."""
        return self.llm_choice or ("gemini" if self.gemini.api_key else "extractive")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ChatSettings:
        environ = os.environ if environ is None else environ
        llm = LLM.read(environ)
        if llm == "gemini" and not GEMINI_API_KEY.read(environ):
            raise env.SettingsError(f"{LLM.name}=gemini needs {GEMINI_API_KEY.name}")
        if llm == "openai" and not OPENAI_MODEL.read(environ):
            raise env.SettingsError(f"{LLM.name}=openai needs {OPENAI_MODEL.name} (the model's name on the server)")
        return cls(
            server=ServerSettings.from_env("chat", environ),
            answer_deadline_seconds=ANSWER_DEADLINE.read(environ),
            record_buffer=RECORD_BUFFER.read(environ),
            gemini=GeminiSettings(
                api_key=GEMINI_API_KEY.read(environ), model=GEMINI_MODEL.read(environ),
                base_url=GEMINI_BASE_URL.read(environ), timeout_seconds=LLM_TIMEOUT.read(environ),
            ),
            openai=OpenAISettings(
                model=OPENAI_MODEL.read(environ), base_url=OPENAI_BASE_URL.read(environ),
                api_key=OPENAI_API_KEY.read(environ), tools=OPENAI_TOOLS.read(environ),
                max_tokens=OPENAI_MAX_TOKENS.read(environ), extra_body=OPENAI_EXTRA_BODY.read(environ),
                timeout_seconds=LLM_TIMEOUT.read(environ),
            ),
            llm_choice=llm,
            model_data_dir=MODEL_DATA_DIR.read(environ),
        )
