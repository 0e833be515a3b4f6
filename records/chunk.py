"""A chunk: one section-sized piece of a Docusaurus page, as ingest cuts it and the index keeps it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from records.edition import SOLE_EDITION, Edition


def heading_prefix(heading_path: Sequence[str]) -> str:
    """What precedes a chunk's content in the text that is embedded: its headings carry much of
    a section's meaning."""
    return " > ".join(h for h in heading_path if h) + "\n\n"


@dataclass(frozen=True)
class Chunk:
    """Field meanings are stated once, in `lectern.common.v1.Chunk` (protos/lectern/common/v1)."""

    chunk_id: str
    book: str
    file_path: str
    module: str
    heading_path: tuple[str, ...]
    section_depth: int
    content: str
    token_count: int
    content_hash: str
    title: str
    tags: tuple[str, ...]
    position: int
    url: str
    edition: Edition = SOLE_EDITION
    edit_url: str = ""

    @property
    def embed_text(self) -> str:
        """What the dense vector embeds (and ``token_count`` counts): the heading path, then the content."""
        return heading_prefix(self.heading_path) + self.content

    @property
    def keyword_text(self) -> str:
        """What BM25 scores: the headings and the content."""
        return " ".join((*self.heading_path, self.content))
