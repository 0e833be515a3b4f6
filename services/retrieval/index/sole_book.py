"""Searching a collection that holds one book without checking the book of every candidate.

The usual deployment keeps one book per collection, and then a search's `book` condition is
true of every point; Qdrant still checks it against the payload index for every candidate it
visits, a large share of a hybrid search's CPU at 100k chunks, which dropping it saves. The
condition is dropped only when the index is known to hold that book alone, and never for a
search that overlapped a write, so a search never returns another book's chunks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager


class SoleBook:
    """Which book, if any, holds every point of the index, kept with a sequence lock.

    Writers bracket every change with ``writing()``, which makes the epoch odd while they run
    and moves it on when they finish. A search asks ``epoch_if_sole(book)`` before it runs
    without the condition and ``unchanged(epoch)`` after: if a write started or ended in
    between, it must run again with the condition.
    """

    def __init__(self, count_books: Callable[[], tuple[dict[str, int], int]]) -> None:
        self._count_books = count_books
        """Returns (points per book, all points); called at most once per write epoch."""
        self._epoch = 0
        # (epoch, sole book) as one tuple, replaced whole, so a reader never pairs one epoch's
        # answer with another's.
        self._known: tuple[int, str | None] = (-1, None)
        self.skipped = 0
        """Searches that ran without the book condition (for tests and metrics)."""

    @contextmanager
    def writing(self) -> Iterator[None]:
        self._epoch += 1  # odd: a write is under way (writers hold the index's write lock)
        try:
            yield
        finally:
            self._epoch += 1

    def epoch_if_sole(self, book: str) -> int | None:
        """The current epoch if ``book`` holds every point and no write is under way."""
        epoch = self._epoch
        if epoch % 2:
            return None
        known_epoch, sole = self._known
        if known_epoch != epoch:
            books, total = self._count_books()
            sole = next(iter(books)) if len(books) == 1 and sum(books.values()) == total else None
            if self._epoch != epoch:  # a write began while counting: the answer may be stale
                return None
            self._known = (epoch, sole)
        return epoch if sole == book else None

    def unchanged(self, epoch: int) -> bool:
        """Whether no write started or finished since ``epoch_if_sole`` returned ``epoch``."""
        if self._epoch != epoch:
            return False
        self.skipped += 1
        return True
