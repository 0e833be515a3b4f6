"""/llms.txt and /llms-full.txt: the llmstxt.org format (an H1, a blockquote summary, then H2
sections of "- [title](url): description" links), every page once in outline order, the full
text, and a cache that an ingest invalidates."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path

import grpc
import httpx
from lectern.retrieval.v1 import retrieval_service_pb2 as rpb
from lectern.retrieval.v1 import retrieval_service_pb2_grpc as rpb_grpc

from gateway.outline import REVALIDATE_SECONDS, assemble, describe, order_key
from records.chunk import Chunk
from records.edition import SOLE_EDITION, Edition
from tests.conftest import Stack, ingest

# Async tests run on the session loop (pyproject: asyncio_default_test_loop_scope); the pure ones are plain.

LINK = re.compile(r"^- \[(?P<title>(?:[^\]\\]|\\.)+)\]\((?P<url>[^)\s]+)\)(?:: (?P<note>.+))?$")


def parse_llms_txt(text: str) -> tuple[str, str, list[tuple[str, list[tuple[str, str, str]]]]]:
    """(title, summary, [(section, [(title, url, note)])]), failing on anything the llmstxt.org
    format does not allow: no H1 first, a heading other than H2 after it, a section line that is
    not a link item."""
    lines = text.split("\n")
    assert lines[0].startswith("# ") and not lines[0].startswith("## "), lines[0]
    title = lines[0][2:]
    i = 1
    while i < len(lines) and not lines[i].strip():
        i += 1
    summary = ""
    if i < len(lines) and lines[i].startswith("> "):
        summary = lines[i][2:]
        i += 1
    sections: list[tuple[str, list[tuple[str, str, str]]]] = []
    for line in lines[i:]:
        if not line.strip():
            continue
        if line.startswith("#"):
            assert line.startswith("## ") and not line.startswith("### "), line
            sections.append((line[3:], []))
        elif sections:
            match = LINK.match(line)
            assert match, f"not a link item: {line!r}"
            sections[-1][1].append((match["title"], match["url"], match["note"] or ""))
        else:
            assert not line.startswith(("-", "*", ">")), line  # free text only before the first section
    return title, summary, sections


async def default_edition_files(stack: Stack, book: str) -> set[str]:
    async with grpc.aio.insecure_channel(stack.retrieval.address) as channel:
        retrieval = rpb_grpc.RetrievalServiceStub(channel)
        ids = [d.chunk_id for d in (await retrieval.ListChunks(rpb.ListChunksRequest(book=book))).chunks]
        chunks = (await retrieval.ReadChunks(rpb.ReadChunksRequest(book=book, chunk_ids=ids))).chunks
    return {c.file_path for c in chunks if not c.other_version and not c.other_locale}


async def test_llms_txt_format_every_page_once_in_order(gateway: str, ingested: dict[str, object],
                                                        stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        reply = await client.get("/llms.txt")
        same = await client.get("/books/default/llms.txt")
        assert reply.status_code == 200, reply.text
        assert reply.headers["content-type"].startswith("text/plain")
        assert same.text == reply.text
        title, summary, sections = parse_llms_txt(reply.text)
        links = [link for _, items in sections for link in items]
        # Each link opens its page (the gateway previews the sample book at /docs/).
        for _, url, _ in links:
            assert url.startswith(f"{gateway}/docs/"), url
            assert (await client.get(url)).status_code == 200, url
    assert title == "Welcome to Build a Home Robot"
    assert summary.startswith("This book walks you through building Rover")
    urls = [url.removeprefix(gateway) for _, url, _ in links]
    assert len(urls) == len(set(urls)) == len(await default_edition_files(stack, "default"))
    assert all(note and "\n" not in note for _, _, note in links)
    names = [name for name, _ in sections]
    assert names[0] == "Docs" and len(names) == len(set(names))
    assert urls[0] == "/docs/"  # the docs root page leads
    # Number prefixes order a folder; a folder's own page leads it and names its section.
    assert urls.index("/docs/getting-started/parts-list") < urls.index("/docs/getting-started/assembly") \
        < urls.index("/docs/getting-started/first-boot")
    lights = dict(sections)["Status lights"]
    assert [u.removeprefix(gateway) for _, u, _ in lights] == ["/docs/status-lights/", "/docs/sounds"]
    assert "Getting started" in names and "Firmware 2.1" in names
    # Every section's pages are contiguous: the folder order holds across the whole file.
    pid = next(n for t, _, n in links if t == "PID speed control")
    assert pid.startswith("Two motors given the same PWM duty never turn at exactly the same speed")


async def test_llms_full_txt_has_every_page_text(gateway: str, ingested: dict[str, object]) -> None:
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        index = (await client.get("/llms.txt")).text
        full = await client.get("/llms-full.txt")
        assert (await client.get("/books/default/llms-full.txt")).text == full.text
    assert full.status_code == 200 and full.headers["content-type"].startswith("text/plain")
    text = full.text
    assert text.startswith("# Welcome to Build a Home Robot\n\n> This book walks you through")
    titles = [t for _, items in parse_llms_txt(index)[2] for t, _, _ in items]
    page_titles = re.findall(r"^## (.+)$", text, flags=re.M)
    assert page_titles == [t.replace("\\[", "[").replace("\\]", "]") for t in titles]
    assert text.count("\nSource: ") == len(titles)
    # Page text and section headings, in the page's order.
    pid = text[text.index("## PID speed control"):]
    pid = pid[:pid.index("\n## ")]
    assert "Kp = 0.8" in pid
    assert pid.index("### The three terms") < pid.index("### Tuning procedure") < pid.index("### Integral windup")
    assert "Rover sees obstacles with three VL53L0X time-of-flight sensors" in text


async def test_unknown_book_and_bad_names(gateway: str, ingested: dict[str, object]) -> None:
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        missing = await client.get("/books/no-such-book/llms.txt")
        long_name = await client.get(f"/books/{'b' * 201}/llms-full.txt")
        no_edition = await client.get("/llms.txt", params={"version": "9.9"})
        nul = await client.get("/llms.txt", params={"locale": "e\x00n"})
        head = await client.head("/llms.txt")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
    assert long_name.status_code == 400 and long_name.json()["error"]["code"] == "INVALID_ARGUMENT"
    assert no_edition.status_code == 404
    assert nul.status_code == 400
    assert head.status_code == 200 and head.headers["content-type"].startswith("text/plain") and head.headers["etag"]


PAGES = {
    "intro.md": "---\nslug: /\ntitle: Kite Book\n---\n\nA book about building {kite} kites in a weekend.\n\n"
                "## Safety\n\nFly away from power lines.\n",
    "build/01-frame.md": "---\ntitle: The frame\n---\n\nCut two spars of {wood}. Glue them crosswise.\n",
    "build/02-sail.md": "---\ntitle: The sail\n---\n\nStretch ripstop nylon over the frame.\n",
}


def write_book(root: Path, kite: str, wood: str, extra: bool = False) -> None:
    for rel, text in PAGES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.format(kite=kite, wood=wood), encoding="utf-8")
    if extra:
        (root / "build" / "03-tail.md").write_text("---\ntitle: The tail\n---\n\nA long tail steadies it.\n")


async def test_an_ingest_invalidates_the_cache(gateway: str, stack: Stack, home: Path) -> None:
    book = f"kites-{uuid.uuid4().hex[:6]}"
    root = home / "books" / book
    write_book(root, "diamond", "bamboo")
    await ingest(stack, root, book)
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        first = await client.get(f"/books/{book}/llms.txt")
        assert first.status_code == 200, first.text
        title, summary, sections = parse_llms_txt(first.text)
        assert title == "Kite Book" and summary == "A book about building diamond kites in a weekend."
        # Sidebar order: neither "build" nor intro.md has a position, so Docusaurus sorts them by name.
        assert [t for _, items in sections for t, _, _ in items] == ["The frame", "The sail", "Kite Book"]
        etag = first.headers["etag"]
        unchanged = await client.get(f"/books/{book}/llms.txt", headers={"If-None-Match": etag})
        assert unchanged.status_code == 304
        assert "bamboo" in (await client.get(f"/books/{book}/llms-full.txt")).text

        # A changed page and a new one: the next read after the revision check shows both.
        write_book(root, "box", "carbon", extra=True)
        await ingest(stack, root, book)
        await asyncio.sleep(REVALIDATE_SECONDS + 0.1)
        second = await client.get(f"/books/{book}/llms.txt", headers={"If-None-Match": etag})
        full = (await client.get(f"/books/{book}/llms-full.txt")).text
    assert second.status_code == 200 and second.headers["etag"] != etag
    title, summary, sections = parse_llms_txt(second.text)
    assert summary == "A book about building box kites in a weekend."
    assert [t for _, items in sections for t, _, _ in items] == ["The frame", "The sail", "The tail", "Kite Book"]
    assert "carbon" in full and "bamboo" not in full and "A long tail steadies it." in full


def chunk(path: str, url: str, title: str, content: str, position: int = 0,
          edition: Edition = SOLE_EDITION) -> Chunk:
    return Chunk(chunk_id="", book="b", file_path=path, module="", heading_path=(title,), section_depth=1,
                 content=content, token_count=0, content_hash="", title=title, tags=(), position=position, url=url,
                 edition=edition)


def test_order_follows_an_autogenerated_sidebar() -> None:
    files = ["zeta.md", "b/sub/deep.md", "b/02-two.md", "b/10-ten.md", "b/index.md", "b/alpha.md", "a.md",
             "01-first/x.md", "intro.md"]
    ordered = sorted(files, key=lambda f: order_key(f, f == "intro.md"))
    assert ordered == ["intro.md", "a.md", "zeta.md", "01-first/x.md", "b/index.md", "b/02-two.md", "b/10-ten.md",
                       "b/alpha.md", "b/sub/deep.md"]


def test_outline_of_one_edition_and_descriptions() -> None:
    chunks = [chunk("intro.md", "https://x.example/docs/", "Home", "| a | b |\n\nThe **first** [real](x) sentence. "
                    "Second one."),
              chunk("guide.md", "https://x.example/docs/guide", "Guide", "Plain words here."),
              chunk("guide.md", "https://x.example/docs/1.0/guide", "Old guide", "Old words.",
                    edition=Edition("1.0", other_version=True))]
    outline = assemble("b", "r", [c for c in chunks if not c.edition.other_version])
    assert outline.title == "Home" and [p.title for p in outline.pages] == ["Home", "Guide"]
    assert outline.pages[0].description == "The first real sentence."
    assert outline.summary == "The first real sentence. Second one."
    assert describe(["x" * 50 + " " + "y" * 300]).endswith("…")
