"""The HTTP contract (v1) as Pydantic models; unknown fields are refused."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class SearchFilters(Strict):
    file_path: str | None = Field(None, max_length=1000, description="Exact file, or a prefix ending in '/'.")
    module: str | None = Field(None, max_length=200)
    section_depth: int | None = Field(None, ge=1, le=6, description="Deepest section level to include.")


class SearchBody(Strict):
    query: str = Field(..., min_length=1, max_length=8192)
    top_k: int = Field(5, ge=1, le=50)
    mode: Literal["dense", "keyword", "hybrid"] | None = None
    filters: SearchFilters | None = None
    book: str = Field("default", min_length=1, max_length=200)


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
    url: str = Field("", max_length=2000)
    title: str = Field("", max_length=500)


class ChatBody(Strict):
    message: str = Field(..., min_length=1, max_length=8192)
    mode: Literal["general", "selection"] = "general"
    context: str | None = Field(None, max_length=60_000, description="The selected text (selection mode).")
    conversation_id: str | None = Field(None, max_length=64)
    book: str = Field("default", min_length=1, max_length=200)
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
    conversation_id: str = Field(..., min_length=1, max_length=64)
    message_id: str = Field(..., min_length=1, max_length=64)
    rating: Literal["up", "down"]
    comment: str | None = Field(None, max_length=2000)


class IngestBody(Strict):
    source_dir: str = Field(..., min_length=1, max_length=4096)
    book: str = Field("default", min_length=1, max_length=200)
    base_url: str = Field("/docs/", min_length=1, max_length=2000)
    dry_run: bool = False
    reindex: bool = False
