"""Parsing and chunking: the sample book and tricky fixtures, golden facts and properties."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedding.local import LocalEmbedder
from embedding.tokens import count_tokens
from services.ingest.book.chunker import Budget, Chunk, chunk_id
from services.ingest.book.discovery import category_labels, discover
from services.ingest.book.pages import PageResult, read_page
from services.ingest.book.parser import parse_page
from services.ingest.book.slugs import Slugger, github_slug, page_route
from tests.conftest import BOOK, FIXTURES

EMBEDDER = LocalEmbedder()
BUDGET = Budget(count_tokens, 512, EMBEDDER.count_tokens, 256)


def read_all(root: Path, include_drafts: bool = False) -> dict[str, PageResult]:
    return {f.rel: read_page(f, "book", "/docs/", BUDGET, include_drafts) for f in discover(root)}


@pytest.fixture(scope="module")
def book() -> dict[str, PageResult]:
    return read_all(BOOK)


def chunks_of(book: dict[str, PageResult], rel: str) -> list[Chunk]:
    return book[rel].chunks


def test_discovery_follows_docusaurus_rules(book: dict[str, PageResult]) -> None:
    assert "getting-started/_snippet.mdx" not in book  # partials are not pages
    assert len(book) == 13
    assert book["getting-started/04-wifi-setup.md"].skipped == "draft"
    assert category_labels(BOOK)["getting-started"] == "Getting started"
    assert {f.module for f in discover(BOOK)} == {"", "getting-started", "sensors", "motion"}


def test_drafts_are_ingested_only_when_asked() -> None:
    drafts = read_all(BOOK, include_drafts=True)
    assert drafts["getting-started/04-wifi-setup.md"].chunks


def test_routes_and_anchors_match_docusaurus(book: dict[str, PageResult]) -> None:
    urls = {c.url for r in book.values() for c in r.chunks}
    assert "/docs/sensors/fusion#kalman" in urls  # slug + explicit {#kalman}
    assert "/docs/getting-started/parts-list#core-electronics" in urls  # id, number prefix dropped
    assert "/docs/#who-this-book-is-for" in urls  # slug: /
    assert "/docs/sensors/imu#calibrating-the-gyroscope" in urls


def test_heading_paths_depths_and_h4_nesting(book: dict[str, PageResult]) -> None:
    chunks = chunks_of(book, "getting-started/02-assembly.mdx")
    power = next(c for c in chunks if c.heading_path[-1] == "Power wiring")
    assert power.heading_path == ("Assembling the chassis", "Wire the motor driver", "Power wiring")
    assert power.section_depth == 3
    assert "#### Wire gauge" in power.content  # H4 stays inside its H3
    assert power.embed_text.startswith("Assembling the chassis > Wire the motor driver > Power wiring\n\n")
    assert not power.content.startswith("Assembling the chassis >")  # stored content is clean


def test_mdx_admonitions_code_and_tables_survive(book: dict[str, PageResult]) -> None:
    assembly = " ".join(c.content for c in chunks_of(book, "getting-started/02-assembly.mdx"))
    assert "import " not in assembly
    assert "Tip: Label your wires" in assembly
    assert "<Figure" not in assembly
    fusion = chunks_of(book, "sensors/sensor-fusion.mdx")
    code = next(c for c in fusion if "def fuse" in c.content)
    assert "```python\nALPHA = 0.98" in code.content  # fence kept whole, with its language
    assert "(1 - ALPHA) * encoder_heading\n```" in code.content
    assert "TODO" not in " ".join(c.content for c in fusion)  # {/* */} removed
    parts = " ".join(c.content for c in chunks_of(book, "getting-started/01-parts-list.md"))
    assert "| DRV8833 motor driver | 1 | Drives both wheels, up to 1.5 A per channel |" in parts


def test_tricky_fixture_duplicates_and_anchors() -> None:
    results = read_all(FIXTURES / "tricky")
    page = results["guide/duplicates.mdx"]
    urls = [c.url for c in page.chunks]
    assert "/docs/guide/duplicates#setup" in urls and "/docs/guide/duplicates#setup-1" in urls
    assert "/docs/guide/duplicates#my-anchor" in urls
    assert "/docs/guide/duplicates#nested-code-heading" in urls
    text = " ".join(c.content for c in page.chunks)
    assert "inline JSX text" in text and "<Thing" not in text
    assert "Caution: Mind the gap" in text and "Admonition body text." in text
    assert "html comment" not in text and "MDX comment" not in text
    assert "## Not a heading inside a fence" in text
    assert page.chunks[0].tags == ("Advanced", "anchors")


def test_bad_files_fail_alone() -> None:
    results = read_all(FIXTURES / "tricky")
    assert "broken YAML" in results["broken-yaml.md"].failed
    assert "UTF-8" in results["invalid-utf8.md"].failed
    assert "binary" in results["binary.md"].failed
    assert "never closed" in results["unclosed-fence.md"].failed
    assert results["guide/duplicates.mdx"].chunks  # the rest still ingests


def test_a_ten_megabyte_line_fails_cleanly(tmp_path: Path) -> None:
    (tmp_path / "huge.md").write_text("# Huge\n\n" + "x" * (10 * 1024 * 1024))
    (tmp_path / "fine.md").write_text("# Fine\n\nA normal page.\n")
    results = read_all(tmp_path)
    assert results["huge.md"].failed and results["fine.md"].chunks


def test_slugger_rules() -> None:
    s = Slugger()
    assert [s.slug("Setup"), s.slug("Setup"), s.slug("Setup")] == ["setup", "setup-1", "setup-2"]
    assert github_slug("subscribe(listener)") == "subscribelistener"
    assert github_slug("`legacy_createStore` Export") == "legacy_createstore-export"
    assert page_route("01-intro/02-basics.md", None, None) == "intro/basics"
    assert page_route("a/index.md", None, None) == "a"
    assert page_route("a/b.md", None, "/custom") == "custom"
    assert page_route("a/b.md", None, "rel") == "a/rel"
    assert page_route("a/b.md", "my-id", None) == "a/my-id"


def test_chunk_ids_are_stable() -> None:
    first = read_all(BOOK)
    second = read_all(BOOK)
    ids = [c.chunk_id for r in first.values() for c in r.chunks]
    assert ids == [c.chunk_id for r in second.values() for c in r.chunks]
    assert len(ids) == len(set(ids))
    assert chunk_id("b", "f.md", ["T", "H"], 0) == chunk_id("b", "f.md", ("T", "H"), 0)


words = st.text(alphabet=st.characters(whitelist_categories=("L", "N")), min_size=1, max_size=12)
sentence = st.lists(words, min_size=3, max_size=40).map(lambda ws: " ".join(ws) + ".")
paragraph = st.lists(sentence, min_size=1, max_size=30).map(" ".join)
code = st.lists(st.lists(words, min_size=1, max_size=12).map(" ".join), min_size=1, max_size=120).map(
    lambda lines: "```text\n" + "\n".join(lines) + "\n```")
section = st.tuples(words, st.lists(st.one_of(paragraph, code), min_size=1, max_size=6))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(section, min_size=1, max_size=5))
def test_every_chunk_fits_and_no_prose_is_lost(sections: list[tuple[str, list[str]]]) -> None:
    body = "# Page\n\n" + "\n\n".join(f"## {title}\n\n" + "\n\n".join(blocks) for title, blocks in sections)
    from services.ingest.book.chunker import PageInfo, chunk_page

    info = PageInfo("b", "p.md", "", "Page", (), "/docs/p")
    chunks = chunk_page(parse_page(body), info, BUDGET)
    for c in chunks:
        assert count_tokens(c.embed_text) <= 512
        assert EMBEDDER.count_tokens(c.embed_text) <= 256
    covered = "".join("".join(c.content.split()) for c in chunks).replace("```text", "").replace("```", "")
    for _, blocks in sections:
        for block in blocks:
            for word in block.replace("```text", "").replace("```", "").split():
                assert word in covered
