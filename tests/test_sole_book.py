"""SoleBook: the book condition is dropped only while one book holds every point and no
write overlaps the search."""

from __future__ import annotations

from services.retrieval.index.sole_book import SoleBook


class Counts:
    def __init__(self, books: dict[str, int], total: int) -> None:
        self.books, self.total, self.calls = books, total, 0

    def __call__(self) -> tuple[dict[str, int], int]:
        self.calls += 1
        return dict(self.books), self.total


def test_only_the_book_that_holds_every_point_skips_the_condition() -> None:
    assert SoleBook(Counts({"a": 3}, 3)).epoch_if_sole("a") == 0
    assert SoleBook(Counts({"a": 3}, 3)).epoch_if_sole("b") is None
    assert SoleBook(Counts({"a": 2, "b": 1}, 3)).epoch_if_sole("a") is None
    assert SoleBook(Counts({"a": 2}, 3)).epoch_if_sole("a") is None  # a point with no book
    assert SoleBook(Counts({}, 0)).epoch_if_sole("a") is None


def test_books_are_counted_once_per_write() -> None:
    counts = Counts({"a": 3}, 3)
    sole = SoleBook(counts)
    for _ in range(5):
        epoch = sole.epoch_if_sole("a")
        assert epoch is not None and sole.unchanged(epoch)
    assert counts.calls == 1 and sole.skipped == 5
    with sole.writing():
        counts.books, counts.total = {"a": 3, "b": 1}, 4
    assert sole.epoch_if_sole("a") is None
    assert counts.calls == 2


def test_a_search_that_overlaps_a_write_must_run_again_with_the_condition() -> None:
    sole = SoleBook(Counts({"a": 3}, 3))
    before = sole.epoch_if_sole("a")
    assert before is not None
    with sole.writing():
        assert sole.epoch_if_sole("a") is None  # no shortcut while a write is under way
        assert not sole.unchanged(before)  # a search that started before it
    assert not sole.unchanged(before)  # ... or ran across it
    assert sole.skipped == 0


def test_a_write_that_begins_while_counting_leaves_nothing_cached() -> None:
    sole: SoleBook

    def count_while_a_write_begins() -> tuple[dict[str, int], int]:
        sole._epoch += 1  # what writing() does on the writer's thread
        return {"a": 3}, 3

    sole = SoleBook(count_while_a_write_begins)
    assert sole.epoch_if_sole("a") is None
    assert sole._known[0] == -1
