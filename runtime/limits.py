"""Request limits, declared once: the gateway's models, the MCP tools and every servicer read them.

Every limit counts characters (Unicode code points), the unit of pydantic's ``max_length`` and of
Python's ``len`` on a protobuf string, so a question the gateway accepts is accepted by each
service behind it, whatever its script ('é' * QUESTION_CHARS passes everywhere; one more fails
everywhere). The .proto field comments name the same figures.
"""

from __future__ import annotations

QUESTION_CHARS = 8192
"""A reader's question (chat ``message``) and a search ``query``: a long paragraph, pasted error included."""

SELECTION_CHARS = 60_000
"""Text selected on a page (selection mode): fits the gateway's default 64 KiB body in ASCII."""

TURN_TEXT_CHARS = 64 * 1024
"""One stored turn's question, answer or rewritten query: an answer is longer than any question."""

BOOK_CHARS = 200
"""A book's name, as ingested and as every request scopes it."""

VERSION_CHARS = 200
"""A docs version label ('current', '1.0', 'next')."""

GIVEN_VERSIONS = 1000
"""Versions an ingest may name (``only_include_versions``): far more than any site publishes."""

LOCALE_CHARS = 50
"""A locale tag ('en', 'pt-BR'): BCP 47 tags in use are far shorter."""

MODULE_CHARS = 200
"""A module (top-level docs folder) a search is narrowed to."""

FILE_PATH_CHARS = 1000
"""A file path, or a path prefix, a search is narrowed to."""

URL_CHARS = 2000
"""A URL or route: a page's url, an ingest's base_url and route_base_path; what browsers reliably keep."""

PAGE_TITLE_CHARS = 500
"""The title of the page the reader is on."""

ID_CHARS = 64
"""A conversation or message id as the HTTP API takes it (a UUID is 36)."""

TOKEN_CHARS = 200
"""A conversation token (X-Conversation-Token), and a turn id chat sends to sessions."""

COMMENT_CHARS = 2000
"""A reader's feedback comment."""

SOURCE_PATH_CHARS = 4096
"""An ingest's source_dir or manifest path: Linux's PATH_MAX."""

TOP_K = 50
"""Most results one search returns."""
