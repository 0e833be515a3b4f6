"""The embedder interface."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class EmbedderSpec:
    """What an index needs to know about the model that built it."""

    name: str
    """Stable name, such as ``local:all-MiniLM-L6-v2``."""
    dimension: int
    """Vector length."""
    max_input_tokens: int
    """Longest input, in the model's own tokens, that is embedded without truncation."""


class Embedder(Protocol):
    """Turns texts into unit-length vectors of ``spec.dimension`` floats."""

    spec: EmbedderSpec

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Vectors for texts that go into the index."""
        ...

    async def embed_query(self, text: str) -> list[float]:
        """Vector for a search query."""
        ...

    def count_tokens(self, text: str) -> int:
        """Length of text in the model's own tokens (special tokens included)."""
        ...

    async def ready(self) -> bool:
        """True when the model can embed now (loaded, or its API answers); raises or returns
        False when it cannot. Called by health checks every few seconds, so it stays cheap."""
        ...

    async def close(self) -> None:
        """Stops the embedder's threads and connections; calls still waiting fail."""
        ...
