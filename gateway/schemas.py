"""The HTTP contract (v1) as Pydantic models; unknown fields are refused, and so is text that
cannot be stored (``Text``: NUL or a lone surrogate), with a 400 naming the field."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from runtime.text import UNSTORABLE_DESCRIPTION, unstorable


def storable(value: object) -> object:
    """Refuses text no service can store or send; before pydantic's own string checks, so a
    lone surrogate gets the same message as a NUL."""
    if isinstance(value, str) and unstorable(value):
        raise PydanticCustomError("unstorable_text", UNSTORABLE_DESCRIPTION)
    return value


Text = Annotated[str, BeforeValidator(storable)]
"""A string of the HTTP contract: every request field, query parameter and header that is text."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class SearchFilters(Strict):
    file_path: Text | None = Field(None, max_length=1000, description="Exact file, or a prefix ending in '/'.")
    module: Text | None = Field(None, max_length=200)
    section_depth: int | None = Field(None, ge=1, le=6, description="Deepest section level to include.")


class SearchBody(Strict):
    query: Text = Field(..., min_length=1, max_length=8192)
    top_k: int = Field(5, ge=1, le=50)
    mode: Literal["dense", "keyword", "hybrid"] | None = None
    filters: SearchFilters | None = None
    book: Text = Field("default", min_length=1, max_length=200)


class SearchHit(BaseModel):
    chunk_id: str
    file_path: str
    heading_path: list[str]
    section_depth: int
    url: str
    content: str
    score: float


class SearchReply(BaseModel):
    results: list[SearchHit]
    out_of_scope: bool
    degraded: bool


class Page(Strict):
    url: Text = Field("", max_length=2000)
    title: Text = Field("", max_length=500)


class ChatBody(Strict):
    message: Text = Field(..., min_length=1, max_length=8192)
    mode: Literal["general", "selection"] = "general"
    context: Text | None = Field(None, max_length=60_000, description="The selected text (selection mode).")
    conversation_id: Text | None = Field(None, max_length=64)
    book: Text = Field("default", min_length=1, max_length=200)
    page: Page | None = None


class Source(BaseModel):
    n: int
    file_path: str
    heading_path: list[str]
    url: str
    score: float


class ChatReply(BaseModel):
    conversation_id: str
    conversation_token: str
    message_id: str
    answer: str
    sources: list[Source]
    grounded: bool
    out_of_scope: bool


class Message(BaseModel):
    message_id: str
    role: Literal["user", "assistant"]
    content: str
    sources: list[Source]
    created_at: str


class ConversationReply(BaseModel):
    conversation_id: str
    messages: list[Message]


class FeedbackBody(Strict):
    conversation_id: Text = Field(..., min_length=1, max_length=64)
    message_id: Text = Field(..., min_length=1, max_length=64)
    rating: Literal["up", "down"]
    comment: Text | None = Field(None, max_length=2000)


class IngestBody(Strict):
    source_dir: Text = Field(..., min_length=1, max_length=4096)
    book: Text = Field("default", min_length=1, max_length=200)
    base_url: Text = Field("/docs/", min_length=1, max_length=2000)
    dry_run: bool = False
    reindex: bool = False
