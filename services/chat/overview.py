"""Questions about the book itself, answered from its outline (its sidebar, kept by retrieval).

"What does this book cover?", "What will I learn?", "How is the guide organised?", "What is in
module 2?", "What is in the sensors chapter?", "Where should I start?" name no topic of the book,
so searching its text finds no section that answers them; its outline does. A question is about
the book when it asks what the book (or one of its parts) covers, how it is organised, or where
to begin, and every other content word it holds is one of those words or names a part of the
book. The evidence is one entry per part (or per page of the part asked about, or the first
pages for where to start), each linking to the page it names, so answers cite real pages.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from records.outline import OutlineEntry, docs_root, route_path
from services.chat.answerers.passages import SENTENCE_END, cite
from services.chat.evidence import OUTLINE, Evidence, content_words
from services.chat.ports import PastTurn

# Most parts (or pages) listed in one answer; a bigger sidebar is cut, the rest is one link away.
MAX_ENTRIES = 10
# Pages named after a part's label in its evidence.
PAGES_PER_PART = 6
START_PAGES = 2
# Names of the pages a newcomer starts with, in order of preference, as `_page_names` spells them
# (file "GettingStarted.md" and route ".../getting-started" are both "gettingstarted"): those that
# say so before a folder's generic index.
START_NAMES = ("intro", "introduction", "gettingstarted", "getstarted", "quickstart", "index", "readme",
               "overview", "tutorial", "install", "installation")
# These name the way into whatever folder holds them (Capacitor's "cordova/index.md" is its Cordova
# section's overview, Redux's "introduction/README.md" a list of that section's pages): the book's
# way in only at its top level, the shallowest its pages go.
FOLDER_WAYS_IN = frozenset({"index", "readme", "overview"})
LABELLED_WAYS_IN = START_NAMES[:START_NAMES.index("index")]  # "Introduction", "Getting started", …
# Words a question about the book may hold besides those that say so ("completely", "really").
MAX_UNKNOWN = 2

_BOOK = {"book", "books", "guide", "docs", "documentation", "manual", "handbook", "course", "tutorial",
         "tutorials", "site", "website", "text", "textbook", "material", "content", "contents", "whole", "overall",
         "page", "pages", "library", "tool", "project", "framework", "package"}
_PART = {"module", "modules", "chapter", "chapters", "part", "parts", "section", "sections", "unit", "units",
         "lesson", "lessons", "category", "categories", "topic", "topics"}
_COVER = {"cover", "covers", "covered", "covering", "about", "contain", "contains", "include", "includes",
          "included", "inside", "learn", "learning", "teach", "teaches", "taught", "outline", "overview",
          "summary", "summarise", "summarize", "organised", "organized", "organisation", "organization",
          "structure", "structured", "table", "discuss", "discusses", "discussed", "explain", "explains",
          "go", "goes", "list", "main", "key", "find", "read", "reading", "study", "tell", "give", "show",
          "offer", "offers", "will", "going", "expect", "need", "know", "lectern", "available"}
_START = {"start", "starting", "begin", "beginning", "beginner", "beginners", "first", "new", "newcomer",
          "started", "intro", "introduction", "prerequisites", "order"}
# The words of _START that ask where to begin even beside other words ("order" and "first" do not:
# "compose function order" asks about compose).
_BEGIN = {"start", "starting", "started", "begin", "beginning", "beginner", "beginners", "newcomer"}
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
             "eighth": 8, "ninth": 9, "tenth": 10, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
             "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}
_NUMBERED = re.compile(r"\b(?:module|chapter|part|section|unit|lesson)\s+(\d{1,3}|[a-z]+)\b", re.I)
_ORDINAL = re.compile(r"\b(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|last)\s+"
                      r"(?:module|chapter|part|section|unit|lesson)\b", re.I)
_WHAT = re.compile(r"\b(what|which)\b", re.I)
# "How do I show the same snippet on several pages?" asks how to do something: with any word
# besides the cues it is about a topic, whatever book words ("pages", "show") it holds.
_HOW_TO = re.compile(r"^\W*how\s+(?:do|does|can|could|should|would|to)\b", re.I)
_FOLLOW_UP = re.compile(r"\b(it|its|that|those|they|them|there)\b", re.I)
# A question that addresses the book itself ("these docs", "this book"). When it holds words no
# cue above covers and search finds nothing close ("What will the first part of these docs teach
# me, and what background should I have?"), the book can still say what it holds: such a question
# is answered from the outline, never refused. "Site" and "library" are left out: in a book about
# building sites or using a library, they name the reader's own.
_ADDRESSES_BOOK = re.compile(r"\b(?:this|these|the|your)\s+(?:book|docs|documentation|guides?|manual|handbook|course|"
                             r"tutorials?)\b", re.I)


class Outlines(Protocol):
    async def outline(self, book: str, version: str, locale: str) -> tuple[OutlineEntry, ...] | None:
        """The book's top-level sidebar items in that edition; None when no outline is kept."""
        ...


@dataclass(frozen=True)
class Ask:
    kind: str  # "book", "part" or "start"
    number: int = 0  # the part asked for by number (-1: the last), else 0
    words: tuple[str, ...] = ()  # words that may name the part asked for
    unknown: tuple[str, ...] = ()
    """Other words of a question that still reads as one about the book ("I'm completely new:
    where should I start?"); it is one only if none of them names something in the outline."""

    def names_a_topic(self, top: Sequence[OutlineEntry]) -> bool:
        """Whether an unknown word names a part or page of the book ("where do I start with
        selectors?" asks about selectors), by the words of their labels and titles and their
        singular forms (descriptions are prose: their words name nothing)."""
        if not self.unknown:
            return False
        named = {w.lower() for node in top for page in [node, *node.pages()]
                 for w in content_words(f"{page.label} {page.title}")}
        named |= {w.rstrip("s") for w in named}
        return any(w in named or w.rstrip("s") in named for w in self.unknown)


def _number(token: str) -> int:
    token = token.lower()
    return int(token) if token.isdigit() else _ORDINALS.get(token, 0)


def _numbered(message: str) -> int:
    """The part a message names by number ("module 2", "the first chapter"; -1: the last), or 0."""
    numbered = next((n for n in (_number(m.group(1)) for m in _NUMBERED.finditer(message)) if n), 0)
    ordinal = _ORDINAL.search(message)
    if not numbered and ordinal:
        numbered = -1 if ordinal.group(1).lower() == "last" else _ORDINALS[ordinal.group(1).lower()]
    return numbered


def fallback(message: str) -> Ask | None:
    """The overview for a question that addresses the book but that search found nothing close
    to: the part it names by number, where to start, or what the book covers."""
    if not _ADDRESSES_BOOK.search(message):
        return None
    numbered = _numbered(message)
    if numbered:
        return Ask("part", numbered)
    return Ask("start") if {w.lower() for w in content_words(message)} & _BEGIN else Ask("book")


def detect(message: str, history: Sequence[PastTurn] = ()) -> Ask | None:
    """The overview the message asks for, or None when it asks about a topic of the book."""
    words = [w.lower() for w in content_words(message)]
    if not words or len(words) > 12:
        return None
    found = set(words)
    numbered = _numbered(message)
    # Contractions ("I'm", "I've") never name a topic.
    rest = [w for w in words if w not in _BOOK | _PART | _COVER | _START | _ORDINALS.keys() | {"last"}
            and not w.isdigit() and "'" not in w]
    names_book = bool(found & (_BOOK | _PART))
    if history and not names_book and _FOLLOW_UP.search(message):
        return None  # "what does it cover?" continues the last answer's topic
    if numbered:
        return Ask("part", numbered) if not rest else None
    if found & _PART and rest and len(rest) <= 3 and (found & _COVER or _WHAT.search(message)):
        return Ask("part", 0, tuple(rest))  # "what is in the sensors chapter?": the name is checked later
    # A few other words are allowed where the question clearly asks where to begin, or what the
    # book covers; the outline then tells whether they name a topic (Ask.names_a_topic).
    if len(rest) > MAX_UNKNOWN or (rest and not (found & _BEGIN or (names_book and found & _COVER))):
        return None
    if rest and _HOW_TO.match(message):
        return None
    if found & _START and not found & {"cover", "covers", "covered", "about"}:
        return Ask("start", unknown=tuple(rest))
    if found & _COVER or names_book:
        return Ask("book", unknown=tuple(rest))
    return None


def _part(ask: Ask, top: Sequence[OutlineEntry]) -> OutlineEntry | None:
    parts = [n for n in top if n.category] or list(top)
    if ask.number > 0:  # a part labelled with the number ("Module 2", "2. Sensors"), else the n-th
        named = re.compile(rf"^(?:(?:module|chapter|part|unit|lesson)\s*)?0*{ask.number}\b(?![.,]\d)", re.I)
        labelled = next((n for n in parts if named.match(n.label)), None)
        if labelled is not None:
            return labelled
    if ask.number:
        index = ask.number - 1 if ask.number > 0 else len(parts) - 1
        return parts[index] if 0 <= index < len(parts) else None
    wanted = set(ask.words)
    for node in parts:
        label = {w.lower() for w in content_words(node.label)}
        stems = {w.rstrip("s") for w in label}
        if wanted <= label or {w.rstrip("s") for w in wanted} <= stems:
            return node
    return None


def _entry(node: OutlineEntry, lead: str = "") -> tuple[str, OutlineEntry | None, str]:
    """(heading, the page it cites, text) of one node as evidence."""
    text = f"{lead}{node.label}"
    # A description that only repeats the label says nothing (Capacitor's "Installing Capacitor").
    description = node.description.rstrip(".")
    if description.casefold() == node.label.casefold():
        description = ""
    if description:
        text += f": {description}"
    pages = [p.label for p in node.pages() if p is not node][:PAGES_PER_PART]
    if node.category and pages:
        text += f" (pages: {', '.join(pages)})" if description else f": {', '.join(pages)}"
    return node.label, node.first_page(), text + "."


def start_pages(top: Sequence[OutlineEntry]) -> list[OutlineEntry]:
    """Where a newcomer starts: a page whose file or route says it is the way in (intro, getting
    started, installation; see START_NAMES), else the sidebar's first pages. A sidebar without
    positions is alphabetical, so its first page is rarely the introduction."""
    # A book of several sidebars is entered by its first part, in the navbar's order, even
    # when no page of it is named as a way in (Home Assistant's "Overview": its architecture and
    # the development environment). In a book whose top level is only categories, a way in of
    # an earlier category comes first; a way in at the book's top level before one deeper
    # (Docusaurus's "introduction.mdx" before its "i18n/introduction").
    sidebars = any(node.part for node in top)
    categories = all(node.category for node in top)
    pages = [(n if categories else 0, p) for n, node in enumerate(top) for p in node.pages()]
    shallowest = min((_depth(p) for _, p in pages), default=0)
    home = _home([p for _, p in pages])
    # A top-level category labelled as the way in ("Introduction": DocSearch's, whose first page is
    # "what-is-docsearch") names its first page so; an "Overview" or "Installation" category may
    # be any part of a book.
    labelled = {id(node.pages()[0]): _name(node.label) for node in top
                if node.category and node.pages() and _name(node.label) in LABELLED_WAYS_IN}
    def rank(entry: tuple[int, OutlineEntry]) -> tuple[bool, int, bool, int, int, int]:
        n, page = entry
        names = [START_NAMES.index(name) for name in {*_page_names(page, shallowest), labelled.get(id(page), "")}
                 if name in START_NAMES]
        named = not names, _depth(page) if names else 0, min(names, default=0)
        # The docs' own home page comes first, whatever its file (Excalidraw's "get-started" at slug "../").
        first = route_path(page.url) != home
        return (first, n, *named, 0) if sidebars else (first, 0, named[0], n, *named[1:])
    return [p for _, p in sorted(pages, key=rank)][:START_PAGES]  # stable: the sidebar's order otherwise


def _home(pages: Sequence[OutlineEntry]) -> str | None:
    """The route every page is under, when a page is served there: the docs' home page."""
    urls = [p.url for p in pages if p.url]
    home = docs_root(urls)
    return home if len(urls) > 1 and any(route_path(u) == home for u in urls) else None


def _depth(page: OutlineEntry) -> int:
    """How many folders down a page's file is; a category's page is in its folder."""
    return page.file_path.count("/") + (1 if page.category and page.file_path else 0)


def _page_names(page: OutlineEntry, top: int) -> set[str]:
    """A page's file stem (not a category's folder) and last route segment, lower case without
    separators; a folder's way in (FOLDER_WAYS_IN) only for a page at the book's ``top`` depth."""
    stem = "" if page.category else page.file_path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    names = {_name(name) for name in (stem, page.url.rstrip("/").rsplit("/", 1)[-1])}
    return {name for name in names if name and (_depth(page) == top or name not in FOLDER_WAYS_IN)}


def _name(text: str) -> str:
    """A file stem, route segment or label as START_NAMES spell them: lower case, no separators."""
    return re.sub(r"[-_.\s]", "", text.lower())


def evidence(ask: Ask, top: Sequence[OutlineEntry]) -> list[Evidence]:
    """The outline entries that answer the ask, numbered for citation; [] when the part asked
    for does not exist (the question is then searched like any other)."""
    if ask.kind == "part":
        part = _part(ask, top)
        if part is None:
            return []
        entries = [_entry(part, "This part is ")] + [_entry(p) for p in part.pages() if p is not part]
    elif ask.kind == "start":
        pages = start_pages(top)
        entries = [_entry(p, "Start with " if i == 0 else "Then read ") for i, p in enumerate(pages)]
    else:
        entries = [_entry(node) for node in top]
    out: list[Evidence] = []
    seen: set[str] = set()
    for heading, page, text in entries:
        if page is None or page.url in seen:
            continue
        seen.add(page.url)
        out.append(Evidence(len(out) + 1, "", page.file_path, (heading,), page.url, 1.0, text, OUTLINE))
        if len(out) == MAX_ENTRIES:
            break
    return out


def compose(sources: Sequence[Evidence]) -> str:
    """The extractive answer from outline evidence: one cited line per entry."""
    # Every sentence keeps its citation (a description may hold several).
    lines = []
    for s in sources:
        # The entry's label ("Prettier vs. Linters") is a name, not sentences.
        text = s.content.strip()
        label = s.heading_path[0] if s.heading_path else ""
        cut = text.find(label) + len(label) if label and label in text else 0
        parts = SENTENCE_END.split(text[cut:].strip())
        parts[0] = f"{text[:cut]}{parts[0]}"
        lines.append("- " + " ".join(cite(part.strip(), s.n) for part in parts if part.strip()))
    return "From the book's outline:\n\n" + "\n".join(lines) if lines else ""
