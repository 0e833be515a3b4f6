"""The book's outline: built in Docusaurus's sidebar order at ingest, kept by retrieval, read by
the gateway (llms.txt) and by chat, which answers questions about the book itself from it."""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import replace
from pathlib import Path

import grpc
import httpx
import pytest
from lectern.retrieval.v1 import retrieval_service_pb2 as rpb
from lectern.retrieval.v1 import retrieval_service_pb2_grpc as rpb_grpc

from records.edition import SOLE_EDITION, Edition
from records.outline import EditionOutline, OutlineEntry
from runtime.errors import InvalidArgument
from services.chat.citations import verify_citations
from services.chat.evidence import OUTLINE, Evidence
from services.chat.overview import compose, detect, evidence, fallback, start_pages
from services.chat.research import Findings, OutlineFirst, Request
from services.ingest.book.outline import PageFacts, build_outline
from services.retrieval.outlines import MAX_DEPTH, OutlineStore
from tests.conftest import Stack, ingest

# A book whose sidebar order differs from its file names' order at every level: positions from
# _category_.json, _category_.yml and sidebar_position, labels from the category files and
# sidebar_label, an index page that becomes its category's link, and unpositioned items last.
FILES = {
    "welcome.md": "---\ntitle: Welcome\nsidebar_position: 1\n---\n\nThis course teaches you to fly drones.\n",
    "zz-glossary.md": "---\ntitle: Glossary\nsidebar_position: 9\n---\n\nWords used in the course.\n",
    "another.md": "---\ntitle: Another page\n---\n\nAn unpositioned page at the root.\n",
    "advanced/_category_.json": json.dumps({"label": "Flying well", "position": 3,
                                            "description": "Wind, batteries and cameras."}),
    "advanced/wind.md": "---\ntitle: Flying in wind\nsidebar_position: 2\n---\n\nWind pushes small drones around.\n",
    "advanced/batteries.md": "---\ntitle: Batteries\nsidebar_label: Battery care\nsidebar_position: 1\n"
                             "description: Charging and storing LiPo packs.\n---\n\nLiPo packs need care.\n",
    "advanced/camera.md": "---\ntitle: Cameras\n---\n\nA gimbal steadies the picture.\n",
    "basics/_category_.yml": "label: First flights\nposition: 2\n",
    "basics/index.md": "---\ntitle: The basics\n---\n\nEverything for a first flight.\n",
    "basics/02-takeoff.md": "---\ntitle: Take-off\n---\n\nArm the motors, then raise the throttle slowly.\n",
    "basics/01-controls.md": "---\ntitle: The controls\n---\n\nThe left stick sets the throttle and the yaw.\n",
}
ORDER = [("Welcome", False), ("First flights", True), ("The controls", False), ("Take-off", False),
         ("Flying well", True), ("Battery care", False), ("Flying in wind", False), ("Cameras", False),
         ("Glossary", False), ("Another page", False)]


def write_book(root: Path) -> Path:
    for rel, text in FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def flatten(items: object) -> list[tuple[str, bool]]:
    out: list[tuple[str, bool]] = []
    for item in items:  # type: ignore[attr-defined]
        out.append((item.label, item.category))
        out += flatten(item.items)
    return out


async def test_ingest_stores_the_sidebar_and_retrieval_reads_it_back_in_order(stack: Stack, home: Path) -> None:
    book = f"drones-{uuid.uuid4().hex[:6]}"
    await ingest(stack, write_book(home / "books" / book), book)
    async with grpc.aio.insecure_channel(stack.retrieval.address) as ch:
        stub = rpb_grpc.RetrievalServiceStub(ch)
        reply = await stub.GetOutline(rpb.GetOutlineRequest(book=book))
        assert reply.found
        assert flatten(reply.outline.items) == ORDER
        basics = reply.outline.items[1]
        # The index page is the category's link, not one of its items.
        assert basics.url.rstrip("/").endswith("/basics") and basics.title == "The basics"
        flying = reply.outline.items[2]
        assert flying.description == "Wind, batteries and cameras." and flying.url == ""
        battery = flying.items[0]
        assert battery.description == "Charging and storing LiPo packs."  # front matter first
        assert flying.items[1].description == "Wind pushes small drones around."  # else the first paragraph
        assert not (await stub.GetOutline(rpb.GetOutlineRequest(book=book, version="9.9"))).found

        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await stub.PutOutline(rpb.PutOutlineRequest(book=book, editions=[
                rpb.EditionOutline(items=[rpb.OutlineEntry(label="a\x00b")])]))
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT

        await stub.DeleteBook(rpb.DeleteBookRequest(book=book))
        assert not (await stub.GetOutline(rpb.GetOutlineRequest(book=book))).found


async def test_llms_txt_follows_the_sidebar(stack: Stack, gateway: str, home: Path) -> None:
    book = f"drones-{uuid.uuid4().hex[:6]}"
    await ingest(stack, write_book(home / "books" / book), book)
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        reply = await client.get(f"/books/{book}/llms.txt")
    assert reply.status_code == 200, reply.text
    titles = [line.split("](")[0].lstrip("- [") for line in reply.text.splitlines() if line.startswith("- [")]
    assert titles == ["Welcome", "The basics", "The controls", "Take-off", "Batteries", "Flying in wind", "Cameras",
                      "Glossary", "Another page"]
    assert "## Flying well" in reply.text and "## First flights" in reply.text
    assert "Charging and storing LiPo packs." in reply.text


def test_build_outline_uses_docusaurus_positions_and_labels(tmp_path: Path) -> None:
    from services.ingest.book.chunker import Budget
    from services.ingest.book.discovery import discover
    from services.ingest.book.pages import read_page

    root = write_book(tmp_path / "docs")
    budget = Budget(len, 512, len, 512)
    facts = []
    for f in discover(root):
        result = read_page(f, "b", "/docs/", budget, False)
        facts.append(PageFacts(f.rel, result.frontmatter, result.chunks))
    outline = build_outline(facts, SOLE_EDITION, root)
    assert flatten(outline.items) == ORDER
    assert all(isinstance(i, OutlineEntry) for i in outline.items)


async def test_the_store_keeps_one_outline_per_edition_and_refuses_what_is_out_of_bounds(tmp_path: Path) -> None:
    store = OutlineStore(tmp_path / "outlines")
    page = OutlineEntry(False, "Intro", "Intro", "/docs/intro", "intro.md")
    await store.put("b", [EditionOutline(Edition("2.0", "en"), (page,)),
                          EditionOutline(Edition("1.0", "en", other_version=True), (OutlineEntry(False, "Old"),)),
                          EditionOutline(Edition("2.0", "fr", other_locale=True), (OutlineEntry(False, "Intro fr"),))])
    assert (await store.get("b")) is not None and (await store.get("b")).items == (page,)  # type: ignore[union-attr]
    assert (await store.get("b", "1.0")).items[0].label == "Old"  # type: ignore[union-attr]
    assert (await store.get("b", "", "fr")).items[0].label == "Intro fr"  # type: ignore[union-attr]
    assert await store.get("other") is None
    deep = OutlineEntry(False, "leaf")
    for _ in range(MAX_DEPTH + 1):
        deep = OutlineEntry(True, "c", items=(deep,))
    with pytest.raises(InvalidArgument):
        await store.put("b", [EditionOutline(items=(deep,))])
    assert (await store.get("b")) is not None  # a refused put leaves the stored outlines


@pytest.mark.parametrize(("question", "kind"), [
    ("What does this book cover?", "book"), ("What will I learn?", "book"), ("How is the guide organised?", "book"),
    ("What is in module 2?", "part"), ("What is in the sensors chapter?", "part"), ("Where should I start?", "start"),
    ("How do I calibrate the gyroscope?", None), ("What does store.subscribe() return?", None),
    ("What is Redux?", None), ("Where do I start the motors?", None),
])
def test_questions_about_the_book_are_told_from_questions_about_a_topic(question: str, kind: str | None) -> None:
    ask = detect(question)
    assert (ask.kind if ask is not None and not ask.names_a_topic(ROVER) else None) == kind


# The sample book's top level, as its sidebar gives it.
ROVER = (OutlineEntry(False, "Getting started", "Getting started", "/docs/intro", "intro.md"),
         OutlineEntry(True, "Motion", description="Driving the motors", items=(
             OutlineEntry(False, "Motors", "Motors and drivers", "/docs/motion/motors", "motion/motors.md"),)),
         OutlineEntry(True, "Sensors", items=(
             OutlineEntry(False, "Selectors", "Selectors of sensor data", "/docs/sensors/sel", "sensors/sel.md"),)))


@pytest.mark.parametrize(("question", "kind"), [
    # Words besides the cue are allowed when they name nothing in the book...
    ("I'm completely new to this. Where should I start reading?", "start"),
    ("Give me an overview of the topics these docs have pages on.", "book"),
    ("Which tutorials are available here?", "book"),
    # ...and make it a question about a topic when they do (a label or a page title).
    ("Where should I start with the motors?", None), ("Where do I start with selectors?", None),
    ("What does this guide cover about drivers?", None),
    # A how-to with such words asks how to do something ("pages" and "show" are no cue there).
    ("How do I show the same snippet on several pages?", None), ("How should I read this book?", "book"),
    ("How do I start?", "start"),
])
def test_a_question_about_the_book_may_hold_words_that_name_nothing_in_it(question: str, kind: str | None) -> None:
    ask = detect(question)
    assert (ask.kind if ask is not None and not ask.names_a_topic(ROVER) else None) == kind


class _Refusing:
    """Research that finds nothing close: what search gives a question about the book itself."""

    async def gather(self, request: Request) -> Findings:
        return Findings(request.message, [], True)


class _RoverOutline:
    async def outline(self, book: str, version: str, locale: str) -> tuple[OutlineEntry, ...] | None:
        return ROVER


@pytest.mark.parametrize(("question", "kind", "first"), [
    # Words no cue covers ("background") keep these from overview.detect; search finds nothing close.
    ("What will the first part of these docs teach me, and what background should I have?", "part",
     "/docs/motion/motors"),  # the sample's first part is Motion (Getting started is a page)
    ("What background should I have before I begin with this manual, coming from Arduino?", "start", "/docs/intro"),
    ("Is the documentation any good for someone who never soldered?", "book", "/docs/intro"),
])
async def test_a_question_addressing_the_book_is_answered_from_its_outline_not_refused(
        question: str, kind: str, first: str) -> None:
    assert detect(question) is None
    ask = fallback(question)
    assert ask is not None and ask.kind == kind
    found = await OutlineFirst(_Refusing(), _RoverOutline()).gather(Request(question, "b"))
    assert not found.out_of_scope and found.evidence[0].url == first
    # No address to the book itself: refused, as search found.
    for other in ("How do I wire the moon to the rover?", "What does the site's robots.txt say?",
                  "Which library does the site use for search?"):
        assert fallback(other) is None
        assert (await OutlineFirst(_Refusing(), _RoverOutline()).gather(Request(other, "b"))).out_of_scope


@pytest.mark.parametrize("question", ["What does this book cover?", "What will I learn?", "What is in module 2?",
                                      "Where should I start?", "How is the book organised?"])
async def test_overview_questions_are_answered_from_the_outline_with_citations(
        gateway: str, ingested: dict[str, object], question: str) -> None:
    async with httpx.AsyncClient(base_url=gateway, timeout=60) as client:
        reply = await client.post("/v1/chat", json={"message": question}, headers={"Accept": "application/json"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert not body["out_of_scope"] and body["grounded"], body["answer"]
    urls = [s["url"] for s in body["sources"]]
    assert urls and len(urls) == len(set(urls))
    assert "[1]" in body["answer"]
    if question == "What is in module 2?":  # the second part of the sample book is Sensors
        assert any(u.endswith("/sensors/imu") for u in urls) and "Distance sensors" in body["answer"]
    if question == "What does this book cover?":
        for part in ("Getting started", "Sensors", "Motion"):
            assert part in body["answer"]


def test_an_entry_label_is_a_name_not_sentences() -> None:
    entry = Evidence(1, "", "comparison.md", ("Prettier vs. Linters",), "/docs/comparison", 1.0,
                     "Prettier vs. Linters: Linters have two kinds of rules. Prettier takes the first kind.", OUTLINE)
    answer = compose([entry])
    assert answer.endswith("- Prettier vs. Linters: Linters have two kinds of rules [1]. "
                           "Prettier takes the first kind [1].")
    assert verify_citations(answer, [entry]) == (answer, True)  # "vs." ends no sentence there either
    # A description that ends on "!" keeps its citation inside the sentence (Docusaurus's "Guides").
    guides = Evidence(2, "", "guides.md", ("Guides",), "/docs/guides", 1.0,
                      "Guides: Let's learn about the most important concepts! (pages: Pages, Docs).", OUTLINE)
    told = compose([guides])
    assert told.endswith("- Guides: Let's learn about the most important concepts [2]! (pages: Pages, Docs) [2].")
    assert verify_citations(told, [guides]) == (told, True)


def test_a_newcomer_starts_at_the_introduction_even_in_an_alphabetical_sidebar() -> None:
    pages = tuple(OutlineEntry(False, name.title(), url=f"/docs/{name}", file_path=f"{name}.md")
                  for name in ("api", "browser", "cli", "index", "install", "options"))
    assert [p.file_path for p in start_pages(pages)] == ["index.md", "install.md"]
    assert [p.file_path for p in start_pages(pages[:3])] == ["api.md", "browser.md"]  # else the sidebar's order


def page(file_path: str, url: str = "") -> OutlineEntry:
    stem = file_path.rsplit(".", 1)[0]
    return OutlineEntry(False, stem, url=url or f"/docs/{stem}", file_path=file_path)


def test_a_way_in_is_named_by_its_file_or_its_route_and_a_folders_own_is_not_the_books() -> None:
    # Jest's "GettingStarted.md"; Redux Toolkit's "i18n-introduction.mdx" served at ".../introduction".
    assert start_pages((page("api.md"), page("GettingStarted.md"))) == [page("GettingStarted.md"), page("api.md")]
    assert start_pages((page("api.md"), page("i18n/i18n-introduction.mdx", "/docs/i18n/introduction")))[0].url == \
        "/docs/i18n/introduction"
    # Capacitor's "cordova/index.md" is its Cordova section's overview, not the book's way in.
    book = (page("index.md", "/docs/"), page("cordova/index.md", "/docs/cordova"), page("main/installation.md"))
    assert [p.file_path for p in start_pages(book)] == ["index.md", "main/installation.md"]
    # A way in at the top of the docs before one in a folder (Docusaurus's two introductions).
    both = (page("i18n/introduction.md"), page("introduction.md", "/docs/"), page("installation.md"))
    assert [p.file_path for p in start_pages(both)] == ["introduction.md", "installation.md"]
    # A category linked to its folder's overview is that folder's way in, not the book's.
    cordova = OutlineEntry(True, "Cordova", url="/docs/cordova/overview", file_path="cordova",
                           items=(page("cordova/migrating.md"),))
    assert [p.label for p in start_pages((page("welcome.md"), cordova, page("getting-started.md")))] == [
        "getting-started", "welcome"]
    # The page served at the docs' own route is their home (Excalidraw's introduction/get-started.mdx,
    # slug "../"), whatever its file is called.
    intro = (page("introduction/get-started.mdx", "/docs/"), page("introduction/development.mdx"),
             page("excalidraw/installation.mdx"))
    assert [p.file_path for p in start_pages(intro)] == ["introduction/get-started.mdx", "excalidraw/installation.mdx"]
    # …before a way in named so at a shallower level, or in an earlier category.
    assert start_pages((page("intro.md"), page("guide/welcome.md", "/docs/")))[0].file_path == "guide/welcome.md"
    named_first = (OutlineEntry(True, "A", items=(page("a/installation.md"),)),
                   OutlineEntry(True, "B", items=(page("b/welcome.md", "/docs/"),)))
    assert start_pages(named_first)[0].file_path == "b/welcome.md"
    # In a book whose pages all sit in folders, the top level is the shallowest they go.
    folders = (page("introduction/overview.md"), page("reference/api.md"), page("deploy/installation.md"))
    assert [p.file_path for p in start_pages(folders)] == ["introduction/overview.md", "deploy/installation.md"]


def test_a_description_that_repeats_the_label_is_left_out() -> None:
    ask = detect("Where should I start?", ())
    assert ask is not None
    install = replace(page("installation.md"), label="Installing Capacitor", description="Installing Capacitor.")
    assert [e.content for e in evidence(ask, (install,))] == ["Start with Installing Capacitor."]


def test_a_book_of_parts_is_entered_by_its_first_part() -> None:
    """Home Assistant's first part in its navbar, "Overview", names no page as a way in; a later
    part's introduction ("Modbus in Home Assistant") is no place to start the book."""
    overview = OutlineEntry(True, "Overview", items=(page("architecture_index.md"), page("setup_devcontainer.md")),
                            part=True)
    core = OutlineEntry(True, "Core", items=(page("development_index.md"), page("modbus/introduction.md")), part=True)
    assert [p.file_path for p in start_pages((overview, core))] == ["architecture_index.md", "setup_devcontainer.md"]
    # Categories, which may be in alphabetical order, are not parts: their ways in come first.
    as_categories = tuple(replace(e, part=False) for e in (overview, core))
    assert start_pages(as_categories)[0].file_path == "modbus/introduction.md"


def test_a_page_without_a_description_is_described_by_its_first_statement() -> None:
    from services.ingest.book.outline import describe
    from services.ingest.book.parser import admonition_label

    # Jest's pages open on an admonition or on a line that introduces a list: the outline that
    # answers "What does this book cover?" showed "ECMAScript Modules: Caution:" before.
    assert describe([f"{admonition_label('caution')}\n\nJest ships with **experimental** ESM support. More."]) \
        == "Jest ships with experimental ESM support."
    assert describe([f"{admonition_label('tip', 'Mind the gap')}\n\nBody text here."]) == "Body text here."
    assert describe(["Jest sets the following environment variables:\n\n### `NODE_ENV`"]) \
        == "Jest sets the following environment variables."
    assert describe(["Note: this page is a statement that starts like a label. It is kept."]) \
        == "Note: this page is a statement that starts like a label."


def test_a_category_labelled_as_the_way_in_opens_the_book() -> None:
    """DocSearch's sidebar opens with a category labelled "Introduction" whose first page is
    "what-is-docsearch"; its packages' "getting-started" pages sit two folders down. The newcomer
    starts with the introduction, then the first getting-started page."""
    intro = OutlineEntry(True, "Introduction", items=(page("what-is-docsearch.md"), page("who-can-apply.md")))
    packages = OutlineEntry(True, "Packages", items=(page("packages/overview.md"),
                                                      page("packages/js/getting-started.mdx"),
                                                      page("packages/react/getting-started.mdx")))
    assert [p.file_path for p in start_pages((intro, packages))] == [
        "what-is-docsearch.md", "packages/js/getting-started.mdx"]
    other = dataclasses.replace(intro, label="Concepts")
    assert start_pages((other, packages))[0].file_path == "packages/js/getting-started.mdx"
