"""A book's outline: its sidebar, one per version and locale (see services/ingest/book/outline.py
for how it is built)."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from records.edition import SOLE_EDITION, Edition


@dataclass(frozen=True)
class OutlineEntry:
    """A page, or a category with its items, in sidebar order."""

    category: bool
    label: str  # what the sidebar shows
    title: str = ""  # a page's title; a category's linked page's ("" when it has none)
    url: str = ""  # a page's route; a category's linked page's ("" when it has none); no anchor
    file_path: str = ""  # a page's file; a category's folder
    description: str = ""
    items: tuple[OutlineEntry, ...] = ()  # a category's
    part: bool = False  # a category that is one sidebar of several (a part of the book)

    def first_page(self) -> OutlineEntry | None:
        """What a citation of this entry leads to: its own page, else its first page."""
        if self.url:
            return self
        return next((p for p in (i.first_page() for i in self.items) if p is not None), None)

    def pages(self) -> list[OutlineEntry]:
        """Its pages in order, itself first when it is one (or links to one)."""
        out = [self] if self.url else []
        for item in self.items:
            out += item.pages()
        return out


@dataclass(frozen=True)
class EditionOutline:
    """The sidebar of one version and locale of a book: its top-level items in order."""

    edition: Edition = SOLE_EDITION
    items: tuple[OutlineEntry, ...] = ()


def route_path(url: str) -> str:
    """A page URL's path as routes are compared: no query, anchor or trailing slash ("/" for the
    site's root)."""
    return urlsplit(url).path.rstrip("/") or "/"


def docs_root(urls: Iterable[str]) -> str:
    """The route every one of these pages is under ("" for none): where the docs' home page is
    served, when one is."""
    paths = [route_path(u) for u in urls]
    return posixpath.commonpath(paths) if paths else ""
