"""The HTTP contract (v1) as Pydantic models; unknown fields are refused, and so is text that
cannot be stored (``Text``: NUL or a lone surrogate), with a 400 naming the field."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool
from pydantic_core import PydanticCustomError

from runtime import limits
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
    file_path: Text | None = Field(None, max_length=limits.FILE_PATH_CHARS,
                                   description="Exact file, or a prefix ending in '/'.")
    module: Text | None = Field(None, max_length=limits.MODULE_CHARS)
    section_depth: int | None = Field(None, ge=1, le=6, description="Deepest section level to include.")
    version: Text | None = Field(None, max_length=limits.VERSION_CHARS,
                                 description="Docs version, such as 'current' or '1.0'.")
    locale: Text | None = Field(None, max_length=limits.LOCALE_CHARS, description="Locale, such as 'en' or 'fr'.")


class SearchBody(Strict):
    query: Text = Field(..., min_length=1, max_length=limits.QUESTION_CHARS)
    top_k: int = Field(5, ge=1, le=limits.TOP_K)
    mode: Literal["dense", "keyword", "hybrid"] | None = None
    filters: SearchFilters | None = None
    book: Text = Field("default", min_length=1, max_length=limits.BOOK_CHARS)
    rerank: StrictBool | None = Field(
        None, description="Rescore the best candidates with the cross-encoder; unset: the server's default "
                          "(LECTERN_RERANK).")


class SearchHit(BaseModel):
    chunk_id: str
    file_path: str
    heading_path: list[str]
    section_depth: int
    url: str
    content: str
    score: float
    version: str = ""
    locale: str = ""
    dense_similarity: float = 0.0
    rerank_score: float | None = None
    """The cross-encoder's logit; None when this result was not reranked."""


class SearchReply(BaseModel):
    results: list[SearchHit]
    out_of_scope: bool
    degraded: bool
    degraded_reason: str = ""
    reranked: bool = False


class Page(Strict):
    url: Text = Field("", max_length=limits.URL_CHARS)
    title: Text = Field("", max_length=limits.PAGE_TITLE_CHARS)


class ChatBody(Strict):
    message: Text = Field(..., min_length=1, max_length=limits.QUESTION_CHARS)
    mode: Literal["general", "selection"] = "general"
    context: Text | None = Field(None, max_length=limits.SELECTION_CHARS,
                                 description="The selected text (selection mode).")
    conversation_id: Text | None = Field(None, max_length=limits.ID_CHARS)
    book: Text = Field("default", min_length=1, max_length=limits.BOOK_CHARS)
    page: Page | None = None
    version: Text | None = Field(None, max_length=limits.VERSION_CHARS, description=(
        "Docs version the reader is on (the page's docusaurus_version meta); answers come from it, or from "
        "the latest version when it holds nothing."))
    locale: Text | None = Field(None, max_length=limits.LOCALE_CHARS, description=(
        "Locale the reader is on (docusaurus_locale meta or <html lang>); answers come from it, or from the "
        "default locale when it holds nothing."))


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
    book: str = Field(description="The book the conversation is about.")
    created_at: str
    last_active_at: str = Field(description="Retention removes the conversation LECTERN_RETENTION_DAYS after this.")
    messages: list[Message]


class FeedbackBody(Strict):
    conversation_id: Text = Field(..., min_length=1, max_length=limits.ID_CHARS)
    message_id: Text = Field(..., min_length=1, max_length=limits.ID_CHARS)
    rating: Literal["up", "down"]
    comment: Text | None = Field(None, max_length=limits.COMMENT_CHARS)


class IngestBody(Strict):
    source_dir: Text = Field(..., min_length=1, max_length=limits.SOURCE_PATH_CHARS)
    book: Text = Field("default", min_length=1, max_length=limits.BOOK_CHARS)
    base_url: Text | None = Field(None, min_length=1, max_length=limits.URL_CHARS, description=(
        "A docs folder's URL (default /docs/), or a site root's baseUrl (default: its config's)."))
    route_base_path: Text | None = Field(None, min_length=1, max_length=limits.URL_CHARS,
                                         description="Site root only: the docs plugin's routeBasePath.")
    trailing_slash: Literal["true", "false", "unset"] | None = Field(
        None, description="Site root only: the site's trailingSlash (default: its config's).")
    last_version: Text | None = Field(None, min_length=1, max_length=limits.VERSION_CHARS, description=(
        "Site root only: the docs plugin's lastVersion, for a config that computes it."))
    only_include_versions: list[Annotated[Text, Field(min_length=1, max_length=limits.VERSION_CHARS)]] | None = Field(
        None, min_length=1, max_length=limits.GIVEN_VERSIONS, description=(
            "Site root only: the docs plugin's onlyIncludeVersions (\"current\" or versions.json names), "
            "for a config that computes it."))
    manifest: Text | None = Field(None, min_length=1, max_length=limits.SOURCE_PATH_CHARS, description=(
        "The site's build folder or its lectern-manifest.json: routes and anchors as Docusaurus built them."))
    dry_run: bool = False
    reindex: bool = False
