"""Parsing and chunking: the sample book and tricky fixtures, golden facts and properties."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedding.local import LocalEmbedder
from embedding.tokens import count_tokens
from records.chunk import Chunk
from services.ingest.book.chunker import Budget, chunk_id
from services.ingest.book.discovery import discover
from services.ingest.book.outline import describe, read_category
from services.ingest.book.pages import PageResult, read_page
from services.ingest.book.parser import SiteMarkdown, parse_page
from services.ingest.book.slugs import (
    RouteError,
    RouteOptions,
    Slugger,
    doc_id,
    doc_slug,
    github_slug,
    normalize_url,
    page_route,
    parse_number_prefix,
    strip_number_prefix,
)
from tests.conftest import BOOK, FIXTURES

EMBEDDER = LocalEmbedder(query_encoder="torch")  # for its tokenizer: no model is loaded
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
    assert len(book) == 25
    assert book["getting-started/04-wifi-setup.md"].skipped == "draft"
    assert book["community/roadmap.md"].skipped == "unlisted"
    assert read_category(BOOK / "getting-started")["label"] == "Getting started"
    assert {f.module for f in discover(BOOK)} == {"", "getting-started", "sensors", "motion", "05-maintenance",
                                                  "2.1-firmware", "community", "status-lights"}


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


def test_ordered_lists_keep_the_numbers_the_built_list_shows() -> None:
    """An <ol> counts from its first item's number whatever the later ones say (CommonMark's
    start); nested items are indented under their item's marker, bullets stay "- "."""
    page = parse_page("3. Install it.\n1. Configure it:\n\n   - nested\n\n   More of step four.\n"
                      "9. Run:\n   1. first\n   1. second\n")
    assert [b.text for b in page.blocks] == ["3. Install it.", "4. Configure it:", "   - nested",
                                             "   More of step four.", "5. Run:", "   1. first", "   2. second"]
    assert describe(["1. Install it.\n\nRover drives itself."]) == "Rover drives itself."


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
    assert results["guide/duplicates.mdx"].chunks  # the rest still ingests


def test_an_unclosed_fence_runs_to_the_end_of_the_page_as_docusaurus_builds_it() -> None:
    """CommonMark and MDX end an unclosed fence with the page, and Docusaurus builds such a page
    (a real book's page ended inside its last code block); refusing it dropped a served page."""
    results = read_all(FIXTURES / "tricky")
    fenced = results["unclosed-fence.md"]
    assert not fenced.failed and "const a = 1;" in fenced.chunks[-1].content
    page = parse_page("# Top\n\n## Before\n\nProse.\n\n```ts title=\"a.ts\"\nconst b = 2\n## Swallowed\n")
    assert [(b.kind, b.text) for b in page.blocks if b.kind != "text"] == [
        ("heading", "Top"), ("heading", "Before"), ("code", "const b = 2\n## Swallowed")]


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
    assert page_route("a/index.md", None, None) == "a/"  # Docusaurus links index docs with a slash
    assert page_route("a/b.md", None, "/custom") == "custom"
    assert page_route("a/b.md", None, "rel") == "a/rel"
    assert page_route("a/b.md", "my-id", None) == "a/my-id"


def test_github_slugger_fixtures() -> None:
    """github-slugger's own test/fixtures.json (tests/fixtures/github-slugger), run in order
    through one slugger as its test/index.js does: Unicode letters and marks kept, emoji and
    punctuation gone, spaces never trimmed or collapsed, ``-1``/``-2`` for repeats."""
    cases = json.loads((FIXTURES / "github-slugger" / "fixtures.json").read_text(encoding="utf-8"))
    slugger = Slugger()
    wrong = [(c["name"], c["expected"], got) for c in cases if (got := slugger.slug(c["input"])) != c["expected"]]
    assert len(cases) == 78 and wrong == []
    assert github_slug("हिन्दी शीर्षक") == "हिन्दी-शीर्षक"  # a \w-based slugger drops the vowel signs


# Docusaurus's packages/docusaurus-plugin-content-docs/src/__tests__/numberPrefix.test.ts
IGNORED_NUMBER_PREFIXES = [
    "MyDoc", "a1-My Doc", "My Doc-000", "My Doc - 1", "My Doc - 02", "Hey - 03 - My Doc", "00abc01-My Doc",
    "My 001- Doc", "My -001 Doc", "2021-01-31 - Doc", "31-01-2021 - Doc", "2021_01_31 - Doc", "31_01_2021 - Doc",
    "2021.01.31 - Doc", "31.01.2021 - Doc", "2021-01 - Doc", "2021_01 - Doc", "2021.01 - Doc", "01-2021 - Doc",
    "01_2021 - Doc", "01.2021 - Doc", "2021-01-31", "2021-01", "21-01-31", "21-01", "2021_01_31", "2021_01",
    "21_01_31", "21_01", "01_31", "01", "2021", "8.0", "8.0.0", "14.2.16", "18.2", "8.0 - Doc", "8.0.0 - Doc",
    "8_0", "8_0_0", "14_2_16", "18_2", "4.3-motion-control",  # the last one: a folder in tests/fixtures/routes
]
STRIPPED_NUMBER_PREFIXES = [
    "1-My Doc", "01-My Doc", "001-My Doc", "001 - My Doc", "001      -    My Doc", "999      -        My Doc",
    "1---My Doc", "01---My Doc", "001---My Doc", "001 --- My Doc", "001      ---    My Doc",
    "999      ---        My Doc", "1___My Doc", "01___My Doc", "001___My Doc", "001 ___ My Doc",
    "001      ___    My Doc", "999      ___        My Doc", "1.My Doc", "01.My Doc", "001.My Doc",
    "001 . My Doc", "001      .    My Doc", "999      .       My Doc",
]


def test_number_prefixes_follow_docusaurus() -> None:
    assert [strip_number_prefix(n) for n in STRIPPED_NUMBER_PREFIXES] == ["My Doc"] * len(STRIPPED_NUMBER_PREFIXES)
    assert [parse_number_prefix(n) for n in IGNORED_NUMBER_PREFIXES] == [(n, None) for n in IGNORED_NUMBER_PREFIXES]
    assert parse_number_prefix("0046036 - My Doc") == ("My Doc", 46036)
    assert parse_number_prefix("0-My Doc") == ("My Doc", 0)
    assert doc_id("0-MyRootFolder0/1 - MySubFolder1/2.  MyDeepFolder2/3 _MyDoc3.md", None) \
        == "MyRootFolder0/MySubFolder1/MyDeepFolder2/MyDoc3"
    assert doc_id("0-MyRootFolder0/3 _MyDoc3.md", None, parse_number_prefixes=False) == "0-MyRootFolder0/3 _MyDoc3"


# Docusaurus's packages/docusaurus-plugin-content-docs/src/__tests__/slug.test.ts (getSlug)
@pytest.mark.parametrize(("source", "fm_slug", "expected"), [
    ("dir/doc.md", None, "/dir/doc"),
    ("dir/subdir/doc.md", None, "/dir/subdir/doc"),
    ("dir/subdir/index.md", None, "/dir/subdir/"),
    ("dir/subdir/inDEx.mdx", None, "/dir/subdir/"),
    ("dir/subdir/readme.md", None, "/dir/subdir/"),
    ("dir/subdir/reADMe.mdx", None, "/dir/subdir/"),
    ("dir/subdir/subdir.md", None, "/dir/subdir/"),
    ("dir/subdir/suBDir.mdx", None, "/dir/subdir/"),
    ("dir/subdir/index.md", "/my/frontMatterSlug", "/my/frontMatterSlug"),
    ("001-dir1/002-dir2/doc.md", None, "/dir1/dir2/doc"),
    ("dir with spâce/hey $hello/my dôc.md", None, "/dir with spâce/hey $hello/my dôc"),
    ("doc.md", None, "/doc"),
    ("doc.md", "/abc/def", "/abc/def"),
    ("any/any/doc.md", "/abc/def", "/abc/def"),
    ("doc.md", "abc/def", "/abc/def"),
    ("dir/doc.md", "abc/def", "/dir/abc/def"),
    ("dir/subdir/doc.md", "abc/def", "/dir/subdir/abc/def"),
    ("dir/doc.md", "./abc/def", "/dir/abc/def"),
    ("dir/doc.md", "./abc/../def", "/dir/def"),
    ("dir/subdir/doc.md", "../abc/def", "/dir/abc/def"),
    ("dir/subdir/doc.md", "../../../../../abc/../def", "/def"),
    # Beyond Docusaurus's cases: the doc's own rules as its source applies them.
    ("index.md", None, "/"),
    ("intro.md", "/", "/"),
    ("01-guide/01-guide.md", None, "/guide/"),  # named like its folder, prefixes compared as written
    ("01-guide/guide.md", None, "/guide/guide"),
    ("2021-01-31-notes/01-intro.md", None, "/2021-01-31-notes/intro"),
    ("style-guide/style-guide.md", None, "/style-guide/"),  # as in the Redux docs
    ("usage/index.md", None, "/usage/"),
    ("slugs/doc.md", "trailing/", "/slugs/trailing/"),
])
def test_doc_slugs_follow_docusaurus(source: str, fm_slug: str | None, expected: str) -> None:
    assert doc_slug(source, None, fm_slug) == expected


def test_doc_id_and_invalid_slugs() -> None:
    assert doc_slug("ids/with-id.md", "custom-id", None) == "/ids/custom-id"
    assert doc_slug("ids/index.md", "home", None) == "/ids/"  # an index doc stays its folder
    assert doc_slug("01-raw/02-doc.md", None, None, parse_number_prefixes=False) == "/01-raw/02-doc"
    with pytest.raises(RouteError, match="cannot include slash"):
        doc_slug("a/b.md", "x/y", None)
    with pytest.raises(RouteError, match="valid slug"):  # slug.test.ts: '//' is refused
        doc_slug("dir/doc.md", None, "//")
    with pytest.raises(RouteError, match="valid slug"):
        doc_slug("dir/doc.md", None, "/a?b")


def test_permalinks_with_site_options() -> None:
    default = RouteOptions()
    assert default.permalink("/") == "/docs/" and default.permalink("/usage/") == "/docs/usage/"
    assert RouteOptions.under("/docs/").permalink("/a/b") == "/docs/a/b"
    assert RouteOptions.under("https://robots.example/docs/").permalink("/a") == "https://robots.example/docs/a"
    docs_only = RouteOptions(base_url="/book/", route_base_path="/", trailing_slash=False)
    assert docs_only.permalink("/") == "/book/"  # the base URL keeps its slash
    assert docs_only.permalink("/usage/") == "/book/usage"
    slashed = RouteOptions(base_url="/", route_base_path="docs", trailing_slash=True)
    assert slashed.permalink("/intro") == "/docs/intro/"
    assert RouteOptions(version_path="next").permalink("/intro") == "/docs/next/intro"
    # docusaurus-utils/src/__tests__/urlUtils.test.ts (normalizeUrl)
    assert normalize_url(["/", "/docs", ""]) == "/docs"
    assert normalize_url(["http://foobar.com", "test"]) == "http://foobar.com/test"
    assert normalize_url(["/", "docs", "/"]) == "/docs/"
    assert normalize_url(["/hello/", "/world/"]) == "/hello/world/"


ROUTES = FIXTURES / "routes" / "docs"
# What `docusaurus build` (3.10.2, trailingSlash unset) made of tests/fixtures/routes/docs.
BUILT_ROUTES = {
    "intro.md": "/docs/", "2021-01-31-notes.md": "/docs/2021-01-31-notes", "headings.mdx": "/docs/headings",
    "01-guide/01-guide.md": "/docs/guide/", "01-guide/02-setup.md": "/docs/guide/setup",
    "01-guide/03-raw.md": "/docs/01-guide/03-raw", "01-guide/3 - Spaced Doc.md": "/docs/guide/Spaced Doc",
    "02-basics/basics.md": "/docs/basics/basics",
    "4.3-motion-control/01-overview.md": "/docs/4.3-motion-control/overview", "api/README.md": "/docs/api/",
    "ids/index.md": "/docs/ids/", "ids/with-id.md": "/docs/ids/custom-id", "slugs/absolute.md": "/docs/abs/path",
    "slugs/dotdot.md": "/docs/up", "slugs/relative.md": "/docs/slugs/rel/path",
    "slugs/trailing.md": "/docs/slugs/trailing/", "style-guide/style-guide.md": "/docs/style-guide/",
    "usage/index.md": "/docs/usage/",
}
# The ids of headings.mdx's headings in that build, in order (the H1 takes "headings").
BUILT_ANCHORS = [
    "setup", "setup-1", "setup-1-1", "हिन्दी-शीर्षक", "-launch-the-robot", "the-createstore-api",
    "read-the-redux-docs-first", "über-straße--c--c", "my-anchor", "comment-anchor", "my-anchor",
    "spaces--twice-and-bold-text", "nested-emphasis-heading", "headings-1",
]


def test_routes_fixture_matches_a_real_docusaurus_build() -> None:
    results = read_all(ROUTES)
    pages = {rel: r.chunks[0].url.split("#")[0] for rel, r in results.items() if r.chunks}
    assert pages == BUILT_ROUTES
    assert results["draft.md"].skipped == "draft"  # not built in production
    assert results["unlisted.md"].skipped == "unlisted"  # built, but hidden from search
    assert read_all(ROUTES, include_drafts=True)["unlisted.md"].chunks


def test_heading_anchors_match_a_real_docusaurus_build() -> None:
    page = parse_page((ROUTES / "headings.mdx").read_text(encoding="utf-8"))
    slugger = Slugger()
    anchors = [b.anchor or slugger.slug(b.slug_text) for b in page.blocks if b.kind == "heading"]
    assert anchors == ["headings", *BUILT_ANCHORS]
    titles = [b.text for b in page.blocks if b.kind == "heading"]
    assert "Explicit place" in titles and "Comment place" in titles  # ids are not part of the title
    assert "The `createStore` API" in titles
    urls = {c.url for c in read_all(ROUTES)["headings.mdx"].chunks}
    assert "/docs/headings#हिन्दी-शीर्षक" in urls and "/docs/headings#comment-anchor" in urls


def test_html_comment_heading_ids() -> None:
    # CommonMark (format: md) pages may give the id as an HTML comment (headings/index.ts).
    page = parse_page("## Title <!-- #html-id -->\n\n## Other <!-- not an id -->\n")
    assert [(b.text, b.anchor, b.slug_text) for b in page.blocks] == [
        ("Title", "html-id", "Title"), ("Other", "", "Other ")]


@pytest.mark.parametrize(("front_matter", "reason"), [
    ("id: 12", "id must be a non-empty string"),
    ("slug: ''", "slug must be a non-empty string"),
    ("id: a/b", "cannot include slash"),
    ("slug: //", "valid slug"),
    ("draft: maybe", "draft must be true or false"),
    ("draft: true\nunlisted: true", "cannot be draft and unlisted"),
])
def test_front_matter_docusaurus_refuses_fails_the_page(tmp_path: Path, front_matter: str, reason: str) -> None:
    (tmp_path / "bad.md").write_text(f"---\n{front_matter}\n---\n# Bad\n\nText.\n")
    assert reason in read_all(tmp_path)["bad.md"].failed


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


def alias_bomb(levels: int) -> str:
    """A "billion laughs" front matter: each level lists the previous anchor nine times, ``tags: [*h]``."""
    names = "abcdefghij"
    lines = ["---", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in itertools.pairwise(names[:levels]):
        lines.append(f"{name}: &{name} [{','.join(['*' + prev] * 9)}]")
    lines += [f"tags: [*{names[levels - 1]}]", "---", "# Bomb", "", "Body."]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("levels", [7, 8])
def test_a_yaml_alias_bomb_fails_fast_and_alone(tmp_path: Path, levels: int) -> None:
    import time
    import tracemalloc

    bomb = alias_bomb(levels)
    assert len(bomb.encode()) < 450  # a few hundred bytes that expand to millions of nodes
    (tmp_path / "bomb.md").write_text(bomb)
    (tmp_path / "fine.md").write_text("---\ntags: [robots]\n---\n# Fine\n\nA normal page.\n")
    tracemalloc.start()
    started = time.perf_counter()
    try:
        results = read_all(tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 2.0
    assert peak < 20 * 1024 * 1024  # unguarded, 8 levels took 700 MB more
    assert "expands to more than" in results["bomb.md"].failed and not results["bomb.md"].chunks
    assert results["fine.md"].chunks and results["fine.md"].chunks[0].tags == ("robots",)


def test_front_matter_aliases_within_bounds_still_work() -> None:
    page = parse_page("---\nbase: &b {label: Robots, permalink: /robots}\ntags: [*b, motors]\n---\n# T\n")
    assert page.frontmatter["tags"][0]["label"] == "Robots"


@pytest.mark.parametrize(("front_matter", "reason"), [
    ("description: " + "x" * (70 * 1024), "frontmatter is 71693 bytes; the limit is 65536"),
    ("tags: [" + ", ".join(f"t{i}" for i in range(101)) + "]", "101 tags; the limit is 100"),
    ("tags: [" + "y" * 201 + "]", "tags[0] is 201 characters; the limit is 200"),
    ("tags: [[nested, list]]", "tags[0] is not a tag"),
    ("tags: robots", "tags must be a list"),
    ("a: &a [*a]", "refers to itself"),
    ("x: " + "[" * 40 + "]" * 40, "nested deeper than 32 levels"),
])
def test_front_matter_limits_fail_the_page_with_the_reason(tmp_path: Path, front_matter: str,
                                                            reason: str) -> None:
    (tmp_path / "bad.md").write_text(f"---\n{front_matter}\n---\n# Bad\n\nText.\n")
    (tmp_path / "fine.md").write_text("# Fine\n\nA normal page.\n")
    results = read_all(tmp_path)
    assert reason in results["bad.md"].failed
    assert results["fine.md"].chunks


def test_front_matter_tags_as_docusaurus_reads_them(tmp_path: Path) -> None:
    (tmp_path / "p.md").write_text("---\ntags: [2024, {label: Motors, permalink: /m}]\n---\n# P\n\nText.\n")
    (tmp_path / "q.md").write_text("---\ntags: [true]\n---\n# Q\n\nText.\n")
    results = read_all(tmp_path)
    assert results["p.md"].chunks[0].tags == ("2024", "Motors")
    assert "tags[0] is not a tag" in results["q.md"].failed  # JoiFrontMatter turns numbers, not booleans, into text


def test_code_that_shows_fences_keeps_a_longer_fence_in_every_piece() -> None:
    """A ````md example holding ``` lines (Docusaurus's own docs are full of them) is stored with
    a fence longer than any inside, also when it is split, so every reader of the chunk (the
    answerer, the widget, the grounding check) sees one code block, not two and prose between."""
    from services.chat.answerers.passages import Kind, blocks
    from services.ingest.book.chunker import PageInfo, chunk_page

    inner = "\n".join(f"const line{i} = {i};" for i in range(120))
    page = parse_page(f"# Fences\n\n## Example\n\n````md\nWrite:\n\n```js\n{inner}\n```\n````\n")
    info = PageInfo("b", "f.md", "", "Fences", (), "/docs/f")
    chunks = chunk_page(page, info, Budget(count_tokens, 256))
    assert len(chunks) > 1
    for chunk in chunks:
        read = blocks(chunk.content)
        assert read and all(b.kind is Kind.CODE and b.lines[0] == "````md" for b in read)
    assert "```js" in chunks[0].content and chunks[-1].content.rstrip().endswith("```\n````")


def test_a_fence_keeps_its_whole_info_string() -> None:
    """Docusaurus reads a title and a line range after the language (a range keeps magic comments
    shown), so the stored fence keeps them; a tilde fence's backticks are dropped from it, since a
    backtick fence may not carry them."""
    from services.chat.answerers.passages import Kind, blocks
    from services.ingest.book.chunker import PageInfo, chunk_page

    page = parse_page('# F\n\n## A\n\n```js title="a.js"  {2}\nx()\n// highlight-next-line\ny()\n```\n\n'
                      '## B\n\n~~~sh title="`b`"\nrun\n~~~\n')
    chunks = chunk_page(page, PageInfo("b", "f.md", "", "F", (), "/docs/f"), Budget(count_tokens))
    code = [b for c in chunks for b in blocks(c.content) if b.kind is Kind.CODE]
    assert [b.opening[1] for b in code] == ['js title="a.js" {2}', 'sh title="b"']
    assert code[0].text == "x()\n// highlight-next-line\ny()" and code[1].text == "run"


def test_a_long_table_is_split_at_rows_under_its_header() -> None:
    """Like a long fence re-opened in every piece: each piece of a long table is a table with the
    header row again, so a row's cells keep their column names wherever the row is read."""
    from services.chat.answerers.passages import Kind, blocks
    from services.ingest.book.chunker import PageInfo, chunk_page

    rows = "\n".join(f"| opt{i} | `{i}` | Sets option number {i} for the build. |" for i in range(80))
    page = parse_page(f"# T\n\n## Options\n\n| Name | Default | Description |\n| --- | --- | --- |\n{rows}\n")
    chunks = chunk_page(page, PageInfo("b", "f.md", "", "T", (), "/docs/f"), Budget(count_tokens, 256))
    assert len(chunks) > 2
    read = [r for c in chunks for b in blocks(c.content) if b.kind is Kind.TABLE for r in b.pieces()]
    assert read == [f"Name: opt{i}; Default: `{i}`; Description: Sets option number {i} for the build."
                    for i in range(80)]
    assert all(c.content.startswith("| Name | Default | Description |\n") for c in chunks)


def test_a_piece_of_a_long_section_links_to_the_sub_heading_it_starts_under() -> None:
    """An API page's H3 holds an H4 per option; a reader following a citation of a piece from
    the middle of it lands on the option that piece starts under, not at the top of the H3."""
    from services.ingest.book.chunker import PageInfo, chunk_page, sections

    options = "\n\n".join(f"#### `option{i}`\n\nType: `int`. "
                          + " ".join(f"Option {i} sets part {j}." for j in range(40 if i == 5 else 12))
                          for i in range(12))
    page = parse_page(f"# Config\n\n## Options\n\n### General\n\nEvery project has these.\n\n{options}\n\n"
                      "#### `option3`\n\nA second heading of the same text.\n")
    chunks = chunk_page(page, PageInfo("b", "c.md", "", "Config", (), "/docs/c"), Budget(count_tokens, 256))
    general = [c for c in chunks if c.heading_path[-1] == "General"]
    assert len(general) > 3 and general[0].url == "/docs/c#general"  # it starts with the H3's own text
    starts = [c.content.split("\n")[0].startswith("#### ") for c in general[1:]]
    assert any(starts) and not all(starts)  # (option5 is longer than a piece)
    for chunk in general:
        assert not chunk.content.rstrip().split("\n")[-1].startswith("#### ")  # no heading ends a piece
    for chunk in general[1:]:
        first = chunk.content.split("\n")[0]
        if first.startswith("#### `option"):  # starts with a sub-heading: links to it
            assert chunk.url == f"/docs/c#{first[6:-1].lower()}" or chunk.url == "/docs/c#option3-1"
        else:  # starts inside one: links to the last sub-heading before it
            before = "\n\n".join(c.content for c in general[:general.index(chunk)])
            last = re.findall(r"^#### `(option\d+)`", before, re.M)[-1]
            assert chunk.url == f"/docs/c#{last}"
    # github-slugger counts the repeated heading, as the built page's ids do.
    assert sections(page, "Config")[-1].sub_anchors[-1] == ("#### `option3`", "option3-1")


def test_a_piece_never_ends_in_a_sub_headings_opening_lines() -> None:
    """Metro's options are an H4, a "Type:" line and a description. A piece that ended after an
    option's "Type:" line left its description to a piece that never names the option; the
    sub-heading and its opening lines now open the next piece with the rest."""
    from services.ingest.book.chunker import PageInfo, chunk_page

    options = "\n\n".join(f"#### `option{i}`\n\nType: `Array<string>`\n\n"
                          + " ".join(f"Option {i} sets part {j} of the bundle." for j in range(6 + i % 5))
                          for i in range(16))
    page = parse_page(f"# Config\n\n## Options\n\nEvery project has these.\n\n{options}\n")
    chunks = chunk_page(page, PageInfo("b", "c.md", "", "Config", (), "/docs/c"), Budget(count_tokens, 256))
    assert len(chunks) > 3
    for chunk in chunks[1:]:
        first = chunk.content.split("\n")[0]
        assert first.startswith("#### `option") and chunk.url == f"/docs/c#{first[6:-1].lower()}"
    for chunk in chunks:
        assert not re.search(r"(####[^\n]*|Type: [^\n]*)\s*$", chunk.content)


def test_stacked_sub_headings_and_a_description_longer_than_a_piece_open_the_next_piece() -> None:
    """"#### Resolver" right over "##### `blockList`" goes with it; and an option whose description
    needs pieces of its own still starts the first of them with its heading and "Type:" line."""
    from services.ingest.book.chunker import PageInfo, chunk_page

    filler = " ".join(f"Filler sentence number {i} about the bundler." for i in range(20))
    described = " ".join(f"Sentence {i} says what the blocked paths do." for i in range(12))
    long = " ".join(f"Part {i} of a description longer than any piece." for i in range(60))
    page = parse_page(f"# Config\n\n## Options\n\n{filler}\n\n#### Resolver\n\n##### `blockList`\n\n"
                      f"Type: `RegExp`\n\n{described}\n\n#### `assetExts`\n\nType: `Array<string>`\n\n{long}\n")
    chunks = chunk_page(page, PageInfo("b", "c.md", "", "Config", (), "/docs/c"), Budget(count_tokens, 256))
    firsts = [c.content.split("\n")[0] for c in chunks]
    assert firsts[1] == "#### Resolver" and chunks[1].url == "/docs/c#resolver"
    assert firsts[2] == "#### `assetExts`" and chunks[2].url == "/docs/c#assetexts"
    assert len(chunks) > 3 and all(c.url == "/docs/c#assetexts" for c in chunks[3:])
    for chunk in chunks:
        assert not re.search(r"(#{4,5}[^\n]*|Type: [^\n]*)\s*$", chunk.content)


def test_text_that_leaves_a_chunk_no_room_never_crashes_ingest(tmp_path: Path) -> None:
    """Headings longer than a chunk fail their page with the reason; a table header, a fence title
    or a run of sub-headings that fill a chunk are split without them instead of recursing."""
    from services.ingest.book.chunker import PageInfo, chunk_page

    (tmp_path / "giant.md").write_text("# T\n\n## " + " ".join(f"word{i}" for i in range(400)) + "\n\nBody.\n")
    assert "longer than a chunk" in read_all(tmp_path)["giant.md"].failed
    info = PageInfo("b", "f.md", "", "T", (), "/docs/f")
    budget = Budget(count_tokens, 256)
    row = "| " + " | ".join("{}" for _ in range(110)) + " |\n"
    wide = row.format(*(f"Column {i} name" for i in range(110))) + row.format(*["---"] * 110) + row.format(*"x" * 110)
    headings = "\n\n".join(f"#### Option number {i} heading" for i in range(36))
    titled = '```js title="' + " ".join(f"part{i}" for i in range(300)) + '"\n' \
        + "\n".join(f"const v{i} = {i};" for i in range(120)) + "\n```\n"
    for body in (wide, headings + "\n\n" + "A long paragraph sentence. " * 200, titled):
        chunks = chunk_page(parse_page(f"# T\n\n## S\n\n{body}"), info, budget)
        assert chunks and all(budget.fits(c.embed_text) for c in chunks)
    code = chunk_page(parse_page(f"# T\n\n## S\n\n{titled}"), info, budget)
    assert all(c.content.startswith("```js\n") for c in code[1:]) and "const v119 = 119;" in code[-1].content


def test_a_heading_shown_inside_a_code_example_is_not_taken_for_the_sub_heading() -> None:
    from services.ingest.book.chunker import PageInfo, chunk_page

    filler = " ".join(f"Filler sentence {i} about the API." for i in range(30))
    example = "````md\n#### `alpha`\n````"
    page = parse_page(f"# P\n\n## API\n\n{filler}\n\n{example}\n\n{filler}\n\n#### `alpha`\n\nThe real one.\n")
    chunks = chunk_page(page, PageInfo("b", "p.md", "", "P", (), "/p"), Budget(count_tokens, 256))
    for chunk in chunks:
        real = "#### `alpha`\n\nThe real one." in chunk.content
        assert chunk.url == ("/p#alpha" if chunk.content.startswith("#### `alpha`") else "/p#api") or real


def test_a_colon_that_introduces_sub_sections_lists_their_headings() -> None:
    """"Redux can be described in three fundamental principles:" and an H3 per principle: each
    principle is its own chunk, so the colon's chunk lists their headings as the page shows them
    next. Nothing is listed for a colon before a sibling or for an index of many sections."""
    from services.ingest.book.chunker import MAX_INTRODUCED_SECTIONS, PageInfo, chunk_page

    info = PageInfo("b", "p.md", "", "P", (), "/docs/p")
    page = ("# Principles\n\nIt follows three principles:\n\n### One `store`\n\nA.\n\n### Read-only\n\nB.\n\n"
            "#### Detail\n\nC.\n\n### Pure\n\nD.\n\n## Next part\n\nSee below:\n\n## Last\n\nE.\n")
    chunks = chunk_page(parse_page(page), info, BUDGET)
    assert chunks[0].content == "It follows three principles:\n\n- One `store`\n- Read-only\n- Pure"
    assert chunks[-2].content == "See below:"  # a sibling section is not what the colon introduces
    many = "".join(f"## Part {i}\n\nText.\n\n" for i in range(MAX_INTRODUCED_SECTIONS + 1))
    assert chunk_page(parse_page(f"# P\n\nAll parts:\n\n{many}"), info, BUDGET)[0].content == "All parts:"
    # A tab's button ("Expo:") names the tab and introduces nothing: the sub-sections after it
    # belong to both tabs (react-navigation's deep-linking page).
    tabs = ("# Linking\n\n## Setup\n\n<Tabs>\n<TabItem value=\"expo\" label=\"Expo\">\n\n### Scheme\n\nA.\n\n"
            "</TabItem>\n<TabItem value=\"cli\" label=\"Community CLI\">\n\n### Setup on iOS\n\nB.\n\n"
            "</TabItem>\n</Tabs>\n")
    assert [c.content for c in chunk_page(parse_page(tabs), info, BUDGET)][:1] == ["Expo:"]


def test_mdx_code_blocks_are_read_as_mdx_and_directive_titles_as_titles() -> None:
    """Docusaurus unwraps ```mdx-code-block fences (3 or 4 backticks) before compiling, reads
    ":::note[Title]" and the legacy ":::note Title" alike, and shows a string-literal expression's
    text (tests/test_docusaurus_build.py checks the sample appendix's against the built page)."""
    page = parse_page("# T\n\n````mdx-code-block\nimport Tabs from '@theme/Tabs';\n\n<Tabs>\n\n```js\nconst a = 1;\n```"
                      "\n\n</Tabs>\n````\n\n```mdx-code-block\nShown as **text**.\n```\n\n"
                      ":::note[Read *this* first]\n\nBody.\n\n:::\n\n:::tip Legacy title\n\nTip.\n\n:::\n\n"
                      ":::warning{#careful}\n\nWarn.\n\n:::\n\nThe {'versions.json'} file, not {a + 'b'}.\n\n"
                      "<CodeBlock language=\"jsx\">{MyComponentSource}</CodeBlock>\n\n"
                      "Hello {props.name}, `{'x'}` `{y}`.\n\n"
                      "```md\n{'code stays'}\n```\n")
    assert [(b.kind, b.text) for b in page.blocks] == [
        ("heading", "T"), ("code", "const a = 1;"), ("text", "Shown as text."),
        ("text", "Note: Read this first"), ("text", "Body."), ("text", "Tip: Legacy title"), ("text", "Tip."),
        ("text", "Warning:"), ("text", "Warn."), ("text", "The versions.json file, not {a + 'b'}."),
        ("text", "Hello , `{'x'}` `{y}`."), ("code", "{'code stays'}")]



def test_a_heading_in_a_tab_a_url_can_choose_links_with_that_choice() -> None:
    """<Tabs queryString> hides every tab but the chosen one; ?<key>=<value> chooses it
    (tabsUtils' getQueryStringKey: the prop's text, else the groupId). Checked in Chromium on
    react-navigation's build: without the query the heading stays hidden, with it the tab shows."""
    from services.ingest.book.chunker import PageInfo, chunk_page

    page = ("# T\n\n## Before\n\nA.\n\n<Tabs groupId=\"config\" queryString=\"config\">\n"
            "<TabItem value=\"static\" label=\"Static\" default>\n\n## Static way\n\nB.\n\n</TabItem>\n"
            "<TabItem value=\"dynamic api\" label=\"Dynamic\">\n\n## Dynamic way\n\nC.\n\n#### Detail\n\nD.\n\n"
            "</TabItem>\n</Tabs>\n\n<Tabs groupId=\"os\" queryString>\n<TabItem value=\"mac\">\n\n## On a Mac\n\nE.\n\n"
            "</TabItem>\n</Tabs>\n\n<Tabs groupId=\"pm\">\n<TabItem value=\"npm\">\n\n## With npm\n\nF.\n\n"
            "</TabItem>\n</Tabs>\n\n```mdx\n<Tabs queryString=\"x\">\n<TabItem value=\"y\">\n```\n\n## After\n\nG.\n")
    chunks = chunk_page(parse_page(page), PageInfo("b", "p.md", "", "T", (), "/docs/p"), Budget(count_tokens, 512))
    assert [c.url for c in chunks] == [
        "/docs/p#before", "/docs/p?config=static#static-way", "/docs/p?config=dynamic%20api#dynamic-way",
        "/docs/p?os=mac#on-a-mac", "/docs/p#with-npm", "/docs/p#after"]


def test_jsx_tags_with_expression_attributes_show_no_source() -> None:
    """markdown-it takes a tag whose attributes hold an expression for text (HTML has no
    style={{…}}); MDX renders the element, so neither its source nor its braces are stored."""
    page = parse_page("# T\n\n<img src=\"/a.png\" alt=\"Side\" style={{ width: '100%' }} />\n\n"
                      "<video playsInline muted style={{ width: \"585px\" }}>\n  <source src=\"/a.mp4\" />\n"
                      "</video>\n\nClick <Button onClick={() => go(1 > 0)}>the button</Button>, "
                      "or type Array\\<string> if a < b.\n")
    assert [b.text for b in page.blocks] == ["T", "Click the button, or type Array<string> if a < b."]


def test_a_jsx_tag_over_several_lines_shows_no_source() -> None:
    """socket.io's pages write <ThemedImage> over several lines, with sources={{…}}: the built
    page shows an image, and the tag's lines are no text."""
    page = parse_page("# T\n\nBefore.\n\n<ThemedImage\n  alt=\"Diagram\"\n  sources={{\n"
                      "    light: useBaseUrl('/a.png'),\n  }}\n/>\n\nInline <Img src=\"x\"\n"
                      "  style={{width: 1}} /> text goes on.\n")
    assert [b.text for b in page.blocks] == ["T", "Before.", "Inline text goes on."]


def test_jsx_lines_keep_no_space_their_tags_left() -> None:
    """Capacitor's VS Code page puts a button in a link on each of two lines: the text is
    "Install" and "Docs", not " Docs"."""
    page = parse_page("# T\n\n<a href=\"vscode:x\"><button style={{color: 'red'}}>Install</button></a>\n"
                      "<a href=\"https://x.dev/\"><button style={{padding: 16}}>Docs</button></a>\n")
    assert [b.text for b in page.blocks] == ["T", "Install\nDocs"]


@pytest.mark.parametrize(("major", "shown"), [
    # Checked against remark-emoji 2.2.0 (node-emoji 1.11.0) and 4.0.1 (node-emoji 2.2.0) themselves.
    # Docusaurus 3 parses text directives first: "a:b:c" holds the directive ":c" and shows no 🅱.
    (2, "At 10:30:tada: and \U0001f447 `:lock:` a\U0001f171\ufe0fc \U0001f44d :nope:"),
    (3, "At 10:30\U0001f389 and \U0001f447 `:lock:` a:b:c \U0001f44d :nope:"),
])
def test_emoji_shortcodes_show_as_remark_emoji_shows_them(major: int, shown: str) -> None:
    """Every Docusaurus runs remark-emoji over text, never code; an unknown name stays. Version 3
    looks again one character after a shortcode it does not know, 2 after its end."""

    site = SiteMarkdown(docusaurus_major=major)
    page = parse_page("## :lock: Locks\n\nAt 10:30:tada: and :point_down: `:lock:` a:b:c :+1: :nope:\n\n"
                      "```\n:tada:\n```\n", site=site)
    assert [b.text for b in page.blocks] == ["\U0001f512 Locks", shown, ":tada:"]
    # Docusaurus 2 makes heading ids after remark-emoji (github-slugger drops the emoji), 3 before.
    assert page.blocks[0].slug_text == ("\U0001f512 Locks" if major == 2 else ":lock: Locks")


@pytest.mark.parametrize(("major", "ids", "text"), [
    # Each as built by Docusaurus 2.2's and 3.5's own pipelines: the shortcode in code, in an
    # image's alt, an expression, an admonition's title and raw HTML on MDX 1 stay as written.
    (2, ["use-1-reactions", "tada-image-heading", "-locks"],
     ["Run `a`:x:` now, ` then \U0001f389 :tada:", "Note: :tada: Title", "x", ":tada:"]),
    (3, ["use-1-reactions", "tada-image-heading", "lock-locks"],
     ["Run `a`:x:` now, ` then \U0001f389 :tada:", "Note: :tada: Title", "x", "\U0001f389"]),
])
def test_emoji_shortcodes_reach_only_what_remark_emoji_reaches(major: int, ids: list[str], text: list[str]) -> None:
    from services.ingest.book.slugs import Slugger

    site = SiteMarkdown(docusaurus_major=major)
    headings = parse_page("## Use `:+1:` reactions\n\n## ![:tada:](x.png) Image heading\n\n## :lock: Locks\n",
                          site=site).blocks
    assert [Slugger().slug(b.slug_text) for b in headings] == ids
    page = parse_page('Run `` a`:x: `` now, \\` then :tada: {":tada:"}\n\n:::note[:tada: Title]\n\nx\n\n:::\n\n'
                      "<div>:tada:</div>\n", site=site)
    assert [b.text for b in page.blocks] == text


def test_raw_html_on_a_commonmark_page_shows_its_character_references_decoded() -> None:
    """A .md page under markdown.format 'md' or 'detect' passes its HTML to the browser, which
    shows "=&gt;" as "=>" (Excalidraw's signatures, written as MDX, read as CommonMark)."""
    page = parse_page("<pre>(x) =&gt; void &amp; y</pre>\n\n<div>a &lt; b &#124; c</div>\n", mdx=False)
    assert [b.text for b in page.blocks] == ["(x) => void & y", "a < b | c"]


def test_docusaurus_2_shows_a_code_blocks_tabs_as_spaces() -> None:
    """Excalidraw's developer docs (Docusaurus 2.2, built) show a tab-indented JSON block with
    four spaces a tab, to the next multiple of four columns; Docusaurus 3 keeps the tabs."""

    source = "```js\n{\n\t\"id\": 1,\n\t\t\"a\":\t2\n}\n```\n"
    [two] = parse_page(source, site=SiteMarkdown(docusaurus_major=2)).blocks
    [three] = parse_page(source, site=SiteMarkdown(docusaurus_major=3)).blocks
    assert two.text == '{\n    "id": 1,\n        "a":    2\n}' and "\t" in three.text


def test_a_pre_block_on_docusaurus_2_is_code_on_one_line_as_jsx_shows_it() -> None:
    """Excalidraw's developer docs (Docusaurus 2.2, built) write type signatures as a <pre> of
    text and links over lines: MDX 1 compiles the block as JSX, whose whitespace rule puts it on
    one line, with {" "} and character references as shown."""

    source = ('<pre>\n  (activeTool:{" "}\n  <a href="https://x.dev/types.ts#L115">\n    {" "}\n'
              '    AppState["activeTool"]\n  </a>\n  , event: ClipboardEvent &#124; null) =&gt; void\n</pre>\n')
    [two] = parse_page(source, site=SiteMarkdown(docusaurus_major=2)).blocks
    assert two.kind == "code"
    assert two.text == '(activeTool:  AppState["activeTool"], event: ClipboardEvent | null) => void'
    assert all(b.kind == "text" for b in parse_page(source).blocks)  # Docusaurus 3 reads it as before
    # <br /> breaks its line, a comment shows nothing, a ">" in an attribute ends no tag; two
    # elements, or text after one, are read as before.
    [broken] = parse_page('<pre title="a>b">\n  (opts: &#123; <br /> merge?: boolean;{/* note */}\n  &#125;)\n</pre>\n',
                          site=SiteMarkdown(docusaurus_major=2)).blocks
    assert broken.text == "(opts: { \n merge?: boolean;})"  # the line break after the comment goes, as JSX has it
    two_pres = parse_page("<pre>one</pre><pre>two</pre>\n", site=SiteMarkdown(docusaurus_major=2)).blocks
    assert [b.kind for b in two_pres] == ["text"]


def test_docusaurus_2_slugs_a_full_reference_by_its_text_only() -> None:
    """remark-parse 8 (Docusaurus 2) reads `[url][, options]` as a link reference even when no
    definition exists, and its id keeps only "url": socket.io's built "io([url][, options])" is
    #iourl. Docusaurus 3 (CommonMark) keeps the text whole. Code keeps its brackets in both."""
    from services.ingest.book.slugs import Slugger

    text = ("# T\n\n## io([url][, options])\n\nA.\n\n## `m[i][j]` and [a][b][c]\n\nB.\n\n"
            "## [new\\_url][x] here\n\nC.\n")  # an escape inside the reference's text
    for major, ids in ((2, ["iourl", "mij-and-ac", "new_url-here"]),
                       (3, ["iourl-options", "mij-and-abc", "new_urlx-here"])):
        slugger = Slugger()
        headings = [b for b in parse_page(text, site=SiteMarkdown(docusaurus_major=major)).blocks
                    if b.kind == "heading" and b.level == 2]
        assert [slugger.slug(b.slug_text) for b in headings] == ids
        assert headings[0].text == "io([url][, options])"  # as both show it


def test_a_tags_quoted_or_braced_greater_than_does_not_end_it() -> None:
    """React Native's javascript-environment page: `<TableRow … code="let number = x => x;" …/>`
    in an HTML block. The component renders its own text, which cannot be known; its source must
    not leak (`x;" url="…" />` was stored)."""
    page = parse_page('<table>\n<TableRow name="Arrow" code="let number = x => x;" url="https://babeljs.io/x" />\n'
                      "<TableRow name='B' code={`a > b`} style={{width: '1>0'}} />\n</table>\n\nAfter.\n")
    assert [b.text for b in page.blocks] == ["After."]


def test_escaped_braces_and_tags_show_as_written() -> None:
    """What an escape or a character reference writes is text in MDX, never an expression or a
    tag: Docusaurus's blog plugin page shows `${siteConfig.title} Blog` (written
    `<code>\\`$\\{siteConfig.title} Blog\\`</code>`); literal braces still make expressions."""
    page = parse_page("Use \\{name\\} and &#123;id&#125; but {hidden} and {'shown'}.\n\n"
                      "| a | b |\n| - | - |\n| x | <code>\\`$\\{siteConfig.title} Blog\\`</code> |\n\n"
                      "Mixed \\{a} {b} end, \\{/* kept */\\} too.\n")
    assert [b.text for b in page.blocks] == [
        "Use {name} and {id} but and shown.", "| a | b |\n| x | `${siteConfig.title} Blog` |",
        "Mixed {a} end, {/* kept */} too."]
    # A paragraph that itself holds the private-use stand-ins is read the old way: they stay as
    # they are, never turned into braces.
    assert [b.text for b in parse_page("Odd \ue000 char and \\{x\\}.\n").blocks] == ["Odd \ue000 char and ."]


def test_docusaurus_2_labels_legacy_admonitions_as_its_theme_does() -> None:
    """Docusaurus 2.4's theme shows :::warning as "danger" (socket.io's built pages) and its other
    legacy kinds under their aliases' labels; Docusaurus 3 has a warning of its own."""

    text = ":::warning\n\nCareful.\n\n:::\n\n:::important Read this\n\nA.\n\n:::\n"
    labels = {major: [b.text for b in parse_page(text, site=SiteMarkdown(docusaurus_major=major)).blocks if b.label]
              for major in (2, 3)}
    assert labels == {2: ["Danger:", "Info: Read this"], 3: ["Warning:", "Important: Read this"]}


def test_only_the_very_first_heading_is_the_title_and_a_later_h1_stays_in_the_text() -> None:
    """Docusaurus's contentTitle is the very first heading when it is an H1 (Babel's
    preset-env-standalone page: an admonition, then "# Installation", then "# Usage"); a later H1
    is shown as a heading of the text, without an id. A namespaced JSX tag (<f:image />) is JSX to
    MDX and shows nothing."""
    from services.ingest.book.chunker import PageInfo, chunk_page, page_title

    page = parse_page(":::danger\n\nDeprecated.\n\n:::\n\n# Installation\n\nInstall it.\n\n# Usage\n\n"
                      "Use it, for example:\n\n    <f:image />\n\ndone.\n")
    assert page_title(page, "file") == "Installation"
    [chunk] = chunk_page(page, PageInfo("b", "a.md", "", "X", (), "/docs/a"), Budget(count_tokens, 512))
    assert chunk.content == "Danger:\n\nDeprecated.\n\nInstall it.\n\n# Usage\n\nUse it, for example:\n\ndone."
    later = parse_page("## First\n\nA.\n\n# Later\n\nB.\n")
    assert page_title(later, "file") == "file"  # the first heading is no H1: no content title


def test_a_page_opening_on_an_h1_shows_it_above_its_sections_whatever_its_title() -> None:
    """Redux's API pages: front matter `title: createStore`, then `# createStore(reducer,
    preloadedState?, enhancer?)`. Docusaurus shows that H1 at the top of the page (the front
    matter's title names the page in the sidebar and the browser tab), so the signature heads
    the page's sections; the chunk's title stays the sidebar's."""
    from services.ingest.book.chunker import PageInfo, chunk_page, page_title

    page = parse_page("---\ntitle: createStore\n---\n\n# createStore(reducer, preloadedState?, enhancer?)\n\n"
                      "Creates a store.\n\n## Arguments\n\nA reducer.\n")
    assert page_title(page, "file") == "createStore"
    chunks = chunk_page(page, PageInfo("b", "api/createStore.md", "", page_title(page, "file"), (), "/docs/a"),
                        Budget(count_tokens, 512))
    assert [c.heading_path for c in chunks] == [
        ("createStore(reducer, preloadedState?, enhancer?)",),
        ("createStore(reducer, preloadedState?, enhancer?)", "Arguments")]
    assert {c.title for c in chunks} == {"createStore"}
    untitled = parse_page("---\ntitle: Plain\n---\n\nNo heading.\n")  # no H1: the title heads it
    [chunk] = chunk_page(untitled, PageInfo("b", "p.md", "", "Plain", (), "/docs/p"), Budget(count_tokens, 512))
    assert chunk.heading_path == ("Plain",)


def test_details_without_summary_and_empty_code_show_as_the_built_page_does() -> None:
    """Babel's v7-migration page: a <details> with no <summary> shows theme-common's "Details"
    button; an empty code fence shows no line and no title."""
    page = parse_page("<details>\n\n```js\nx()\n```\n\n</details>\n\n<details>\n<summary>Why</summary>\n\n"
                      "Because.\n\n</details>\n\n```js title=\"JavaScript\"\n```\n")
    assert [(b.kind, b.text) for b in page.blocks] == [
        ("text", "Details:"), ("code", "x()"), ("text", "Why"), ("text", "Because.")]


@pytest.mark.parametrize(("heading", "slug"), [
    # Each id as remark-parse + remark-directive + toString + github-slugger give it (Docusaurus
    # 3.10's own modules, run on these headings): a text directive keeps only its label.
    ("lexical:extension", "lexical"), ("Using node:test runner", "using-node-runner"), ("std::vector", "stdvector"),
    ("http://x.com", "httpxcom"), ("Note: hi", "note-hi"), ("10:30 am", "1030-am"), ("a:b:c", "ab"),
    ("The :root selector", "the--selector"), ('x:abbr[HTML]{title="y"} z', "xhtml-z"), ("a:b-", "ab-"),
    ("a:b_c", "a"), ("`code:x` and y:z", "codex-and-y"),
    # A colon written as an escape or a character reference starts no directive (pnpm's npmrc
    # page: "&lt;URL&gt;&#58;tokenHelper", "@jsr\:registry"), yet one may follow it, code or an
    # image: micromark looks at the source character before the colon.
    ("&lt;URL&gt;&#58;tokenHelper", "urltokenhelper"), ("@jsr\\:registry", "jsrregistry"),
    ("@jsr\\\\:registry", "jsr"), ("x\\::y\\:z w", "xz-w"), ("a&#58;:b c", "a-c"), ("&#58;&#58;x y", "x-y"),
    ("`a:`:b c", "a-c"), ("![i](x.png):dir y", "i-y"), ("a\\\\:b c", "a-c"),
])
def test_text_directives_in_headings_are_slugged_as_docusaurus_3_does(heading: str, slug: str) -> None:
    from services.ingest.book.slugs import Slugger

    [block] = [b for b in parse_page(f"## {heading}\n").blocks if b.kind == "heading"]
    assert Slugger().slug(block.slug_text) == slug
    assert ":" not in heading or ":" in block.text  # the page shows the text as written


def test_mdx_head_is_no_page_text_and_a_tabs_values_prop_labels_its_items() -> None:
    """Capacitor's docs: an MDX <head> goes into the document's head, so its <title> is no text;
    <Tabs values={[{value: 'angular', label: 'Angular'}]}> labels its items' buttons, one line or
    several (the built buttons say "Angular" and "Yarn")."""
    page = parse_page("<head>\n  <title>Support Policy - Capacitor</title>\n</head>\n\n## Code\n\nSee:\n\n"
                      "<Tabs values={[{ value: 'angular', label: 'Angular' }, { value: 'js', label: 'Javascript' }]}>\n"
                      "<TabItem value=\"angular\">\n\nA.\n\n</TabItem>\n<TabItem value=\"other\">\n\nB.\n\n</TabItem>\n"
                      "</Tabs>\n\n<Tabs\n  values={[\n    {label: 'Yarn', value: 'yarn'},\n  ]}>\n"
                      "<TabItem value=\"yarn\">\n\nC.\n\n</TabItem>\n</Tabs>\n")
    assert [b.text for b in page.blocks if b.kind != "heading"] == [
        "See:", "Angular:", "A.", "other:", "B.", "Yarn:", "C."]
    unclosed = parse_page("<head>\n\nStill the page.\n")  # MDX refuses it; nothing is blanked
    assert "Still the page." in [b.text for b in unclosed.blocks]


def test_a_tabs_values_prop_as_prettier_writes_it_labels_its_items() -> None:
    """Stencil's Angular page: Prettier puts the prop's "]" and "}>" on lines of their own, and a
    label holds the other quotes; the built buttons say 'outputType: "scam"'."""
    page = parse_page("## Output\n\n<Tabs\n  values={[\n"
                      "    { label: 'outputType: \"component\"', value: 'component' },\n"
                      "    { label: 'outputType: \"scam\"', value: 'scam' },\n  ]\n}>\n"
                      "<TabItem value=\"scam\">\n\nA.\n\n</TabItem>\n"
                      "<TabItem value=\"component\">\n\nB.\n\n</TabItem>\n</Tabs>\n")
    assert [b.text for b in page.blocks if b.kind != "heading"] == [
        'outputType: "scam":', "A.", 'outputType: "component":', "B."]


def test_footnotes_go_to_the_end_of_the_page_under_the_heading_each_docusaurus_gives_them() -> None:
    """Docusaurus 3 (remark-gfm) lists them under an added "Footnotes" h2 (#footnote-label, checked
    in tests/test_docusaurus_build.py); Docusaurus 2's MDX 1 lists them after an <hr>, under none."""

    text = "# T\n\nWheels slip.[^slip] Encoders drift.[^1]\n\n[^1]: By 1%.\n\n[^slip]: On dust.\n\n## Next\n\nHi.\n"
    three = [(b.kind, b.text, b.anchor) for b in parse_page(text).blocks]
    assert three == [("heading", "T", ""), ("text", "Wheels slip. Encoders drift.", ""), ("heading", "Next", ""),
                     ("text", "Hi.", ""), ("heading", "Footnotes", "footnote-label"),
                     ("text", "1. On dust.", ""), ("text", "2. By 1%.", "")]  # numbered as first cited
    two = [b.text for b in parse_page(text, site=SiteMarkdown(docusaurus_major=2)).blocks]
    assert two == ["T", "Wheels slip. Encoders drift.", "Next", "Hi.", "1. On dust.", "2. By 1%."]
    # Neither has pandoc's inline notes, nor a note for a marker nothing defines: both stay text.
    assert [b.text for b in parse_page("See ^[an inline note] and [^nope] here.\n").blocks] == [
        "See ^[an inline note] and [^nope] here."]


def test_what_home_assistants_developer_docs_show_in_place_of_their_source() -> None:
    """From the built site: a <br /> or list tag in a table cell breaks the line ("ID of the
    pipeline" and "`language`" are not one word), an empty expression shows nothing
    ("vol.Schema()"), a JSX fragment shows its children, and with `markdown.mermaid` a ```mermaid
    block is a diagram the browser draws (mdx-loader's remark/mermaid), not code."""

    text = ("| Event | Data |\n|---|---|\n| start | ID of the pipeline<br />`language` |\n\n"
            "Return vol.Schema({}) here.\n\n<>\nInside a fragment.\n</>\n\n```mermaid\ngraph TD\n  A --> B\n```\n")
    shown = [b.text for b in parse_page(text, site=SiteMarkdown(mermaid=True)).blocks]
    assert shown == ["| Event | Data |\n| start | ID of the pipeline `language` |", "Return vol.Schema() here.",
                     "Inside a fragment."]
    assert [b.text for b in parse_page(text).blocks if b.kind == "code"] == ["graph TD\n  A --> B"]  # no mermaid
    # An <img>'s alt text is kept, as a Markdown image's is (a section holding only a figure is not empty).
    figure = ("## Workflow\n\n<img class='invertDark' src='/img/mfa.png'\n"
              "  alt='Multi Factor Authentication Workflow' />\n")
    assert [b.text for b in parse_page(figure).blocks] == ["Workflow", "Multi Factor Authentication Workflow"]
    assert [b.text for b in parse_page('See <img src="a.png" alt="the flow" /> and <img src="b.png"/>.\n').blocks] \
        == ["See the flow and ."]


def test_an_export_spanning_lines_is_javascript_up_to_its_blank_line() -> None:
    """Home Assistant's "Set up development environment" exports a component whose body holds
    `return <div>`: MDX reads the whole statement, up to the blank line, as ESM. The <div> line had
    opened an HTML block, and its closing "}" became the page's description. A line opening on
    "export" inside a paragraph is text, as in MDX."""
    text = ("# T\n\nexport const Opener = () => {\n  const [v, setV] = useState('');\n  return <div>\n"
            "    <input onInput={(ev) => setV(ev.target.value)} />\n  </div>\n}\n\n"
            "export const Highlight = ({children}) => (\n  <span>{children}</span>\n);\n\n"
            "You'll need a development environment. Then\nexport the data.\n\n```js\nimport x from 'y';\n```\n")
    assert [b.text for b in parse_page(text).blocks] == [
        "T", "You'll need a development environment. Then\nexport the data.", "import x from 'y';"]
    # After a comment or a tag line an import still opens ESM (Redux's Fundamentals pages).
    assert [b.text for b in parse_page("<!-- prettier-ignore -->\nimport W from './_w.mdx';\n\nText.\n").blocks] \
        == ["Text."]


@pytest.mark.parametrize(("markdown", "mermaid"), [("", False), ("markdown: {mermaid: true},", True),
                                                    ("markdown: {mermaid: false, format: 'mdx'},", False)])
def test_markdown_mermaid_is_read_from_the_site_config(tmp_path: Path, markdown: str, mermaid: bool) -> None:
    from services.ingest.book.editions import plan_source
    from tests.test_site_config import write_site

    root = write_site(tmp_path, f"export default {{title: 'T', {markdown} presets: [['classic', {{}}]]}};")
    assert {s.markdown.mermaid for s in plan_source(root).sources} == {mermaid}


def test_tabs_values_props_are_read_in_linear_time() -> None:
    from services.ingest.book.parser import _values_labels

    assert _values_labels("values={[{value: 'a', label: 'A'}]}" + "values={[" * 50_000) == {"a": "A"}


def test_headings_with_no_text_before_a_sibling_open_it() -> None:
    """"### socket.once" and "### socket.off" over one description (socket.io's server API): the
    page shows them just above the section with text, and no chunk would hold them otherwise.
    The chunk links to its own heading."""
    from services.ingest.book.chunker import PageInfo, chunk_page

    page = parse_page("# API\n\n## Methods\n\n### socket.once(e, l)\n### socket.off(e, l)\n"
                      "### socket.eventNames()\n\nInherited from EventEmitter.\n\n### socket.join(room)\n\n"
                      "Joins a room.\n\n### socket.leave(room)\n\n## Events\n\nSome.\n")
    chunks = chunk_page(page, PageInfo("b", "api.md", "", "API", (), "/docs/api"), Budget(count_tokens, 512))
    assert [(c.url, c.content) for c in chunks] == [
        ("/docs/api#socketeventnames",
         "### socket.once(e, l)\n\n### socket.off(e, l)\n\nInherited from EventEmitter."),
        ("/docs/api#socketjoinroom", "Joins a room."),
        # socket.leave has no text before the next section either; it shows just above "Events"
        ("/docs/api#events", "### socket.leave(room)\n\nSome."),
    ]
    # An empty parent is in its child's heading path already; empty ones above a shallower
    # section (Lexical's "## Nodes", "### ListNode" just above "## Commands") open it.
    page = parse_page("# L\n\n## Nodes\n\n### ListNode\n\n## Commands\n\nText.\n\n## Parent\n\n### Child\n\nC.\n")
    chunks = chunk_page(page, PageInfo("b", "l.md", "", "L", (), "/docs/l"), Budget(count_tokens, 512))
    assert [(c.url, c.content) for c in chunks] == [
        ("/docs/l#commands", "## Nodes\n\n### ListNode\n\nText."), ("/docs/l#child", "C.")]



def test_the_tag_scan_is_bounded_by_the_text_it_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """"<a {" over and over opens a tag that never closes at every step: the scan gives up after
    TAG_SCAN_PER_CHAR characters per character of text, so a hostile page costs linear work."""
    from services.ingest.book import parser

    read: list[int] = []
    real = parser._tag_end

    def counted(text: str, start: int, limit: int) -> int | None:
        read.append(limit)
        return real(text, start, limit)

    monkeypatch.setattr(parser, "_tag_end", counted)
    text = "x <a {" * 20_000
    [_, block] = parse_page(f"# T\n\n{text}\n").blocks
    assert block.text.startswith("x <a {") and len(block.text) > len(text) // 2
    assert sum(read) <= parser.TAG_SCAN_PER_CHAR * len(text) + parser.MAX_TAG_CHARS


def test_markdown_inside_a_jsx_line_is_read_as_mdx_reads_it() -> None:
    """<summary>See [JSDoc](…) and **this**</summary> shows "See JSDoc and this" on the built page
    (Docusaurus's TypeScript page); as CommonMark the HTML block is shown as written."""
    text = ("# T\n\n<details>\n<summary>See [JSDoc](https://jsdoc.app) and **this** `{x}`</summary>\n\n"
            "Body.\n\n</details>\n")
    assert [b.text for b in parse_page(text).blocks][1] == "See JSDoc and this `{x}`"
    assert [b.text for b in parse_page(text, mdx=False).blocks][1] == \
        "See [JSDoc](https://jsdoc.app) and **this** `{x}`"


def test_a_line_that_is_one_tag_lets_markdown_follow_as_mdx_does() -> None:
    """MDX reads the lines after a <TabItem> line as Markdown; CommonMark would swallow them into an
    HTML block. A tab's label (or value) names its content, as its button does."""
    page = parse_page("# T\n\n<Tabs>\n<TabItem value=\"npm\" label=\"npm\">\n```bash\nnpm i x\n```\n</TabItem>\n"
                      "    <TabItem value=\"yarn\">\n```bash\nyarn add x\n```\n</TabItem>\n</Tabs>\n\n"
                      "```html\n<div>\n    <b>kept</b>\n</div>\n```\n")
    assert [(b.kind, b.text) for b in page.blocks] == [
        ("heading", "T"), ("text", "npm:"), ("code", "npm i x"), ("text", "yarn:"), ("code", "yarn add x"),
        ("code", "<div>\n    <b>kept</b>\n</div>")]


def test_a_row_of_badges_is_no_text_of_the_page() -> None:
    """Sequelize's introduction opens with eleven linked badges: the page shows pictures, so their
    alt texts are neither stored nor the page's description; a lone image keeps its alt, and images
    among words stay words."""
    badges = ("[![npm version](https://badgen.net/npm/v/sequelize)](https://www.npmjs.com/package/sequelize)\n"
              "[![Build Status](https://ci/badge.svg)](https://ci) <a href=\"https://x\"><img src=\"n.svg\" "
              "alt=\"node\" /></a>\n\nSequelize is a promise-based ORM.\n")
    for mdx in (True, False):
        assert [b.text for b in parse_page(badges, mdx=mdx).blocks] == ["Sequelize is a promise-based ORM."]
        assert [b.text for b in parse_page("![Rover from above](rover.png)\n\n![a](a.png) and ![b](b.png)\n",
                                           mdx=mdx).blocks] == ["Rover from above", "a and b"]
    assert describe([b.text for b in parse_page(badges).blocks]) == "Sequelize is a promise-based ORM."


MDX1_INDENTED = ("Run this:\n\n    npm run build\n    npm start\n\n<Tabs>\n  <TabItem value=\"a\">\n\n"
                 "    Inside a tab.\n\n  </TabItem>\n</Tabs>\n\n> Quoted:\n>\n>     quoted code\n\n"
                 "1. First step:\n\n       yarn install\n\n- Item:\n\n          eight deep\n\n"
                 "Text line\n    lazy line\n")


def test_docusaurus_2_keeps_indented_code_as_mdx_1_shows_it() -> None:
    """MDX 1 keeps CommonMark's indented code, MDX 2 dropped it (Hermes's build guide is written
    so). Each case here was built by Docusaurus 2.2: code at the top level, in a tab and in a
    quote; in a list item remark-parse 8 first takes off four columns after "1. " and two after
    "- ", so seven spaces there are a paragraph and ten are code with four kept."""
    d2 = [(b.kind, b.text) for b in parse_page(MDX1_INDENTED, site=SiteMarkdown(docusaurus_major=2)).blocks]
    assert d2 == [("text", "Run this:"), ("code", "npm run build\nnpm start"), ("text", "a:"),
                  ("code", "Inside a tab."), ("text", "> Quoted:"), ("code", "quoted code"), ("text", "1. First step:"),
                  ("text", "yarn install"), ("text", "- Item:"), ("code", "    eight deep"),
                  ("text", "Text line\nlazy line")]
    d3 = [b.kind for b in parse_page(MDX1_INDENTED).blocks]
    assert "code" not in d3  # MDX 2+: indented lines are text


def test_mdx_1_measures_a_list_items_indentation_as_remark_parse_8_does() -> None:
    """remark-parse 8 takes off the least indentation of an item's lines (at most the marker's
    width; none when a line is lazy), a nested item's after its parent's; checked against
    remark-parse 8 and a Docusaurus 2.2 build."""
    d2 = SiteMarkdown(docusaurus_major=2)
    cases = {"1. Step:\n\n   Then run:\n\n       yarn install\n": ("code", "yarn install"),
             "1. a\n   1. b\n\n           nestx\n": ("code", "nestx"),
             "- a\nb\n\n      lazyx\n": ("code", "  lazyx")}
    for text, last in cases.items():
        assert [(b.kind, b.text) for b in parse_page(text, site=d2).blocks][-1] == last, text
