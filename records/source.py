"""A source: a section of the book an answer cites, as chat gives it and sessions keeps it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    """Field meanings are stated once, in `lectern.common.v1.SourceReference` (protos/lectern/common/v1).
    Chat's `Evidence` is a source with the text the answerer read."""

    n: int
    chunk_id: str
    file_path: str
    heading_path: tuple[str, ...]
    url: str
    score: float
