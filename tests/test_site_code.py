"""Code as a Docusaurus site shows it: magic-comment lines dropped by the rules of theme-common's
codeBlockUtils (the built-site comparison is in test_docusaurus_build)."""

from __future__ import annotations

import pytest

from services.chat.answerers.passages import blocks
from services.ingest.book.parser import parse_page
from services.ingest.book.site_code import read_info, shown_lines

JS = ["// highlight-next-line", "const a = 1", "  /* highlight-start */", "b()", "//highlight-end",
      "c() // highlight-next-line"]


def test_magic_comment_lines_are_dropped_in_the_languages_comment_styles() -> None:
    # A directive alone on its line goes, in either js style; one after code stays (it is code).
    assert shown_lines("js", JS) == ["const a = 1", "b()", "c() // highlight-next-line"]
    assert shown_lines("tsx", ["{/* highlight-next-line */}", "<App />"]) == ["<App />"]
    assert shown_lines("python", ["# highlight-next-line", "x = 1", "// highlight-next-line"]) == \
        ["x = 1", "// highlight-next-line"]  # a python block knows only "#" comments
    assert shown_lines("js", ["# highlight-next-line"]) == ["# highlight-next-line"]
    assert shown_lines("md", ["<!-- highlight-start -->", "text", "<!-- highlight-end -->"]) == ["text"]
    assert shown_lines("unknownlang", ["# highlight-start", "<!-- highlight-end -->", "x"]) == ["x"]  # popular styles
    assert shown_lines("SQL", ["-- highlight-next-line", "SELECT 1;"]) == ["SELECT 1;"]  # lowercased, as the site does


def test_blocks_without_a_language_or_with_a_line_range_are_shown_as_written() -> None:
    assert shown_lines("", JS) == JS
    assert shown_lines('js title="a.js" {1,3}', JS) == JS
    assert shown_lines('js title="a.js"', JS) != JS


def test_a_quoted_block_keeps_its_info_string_and_drops_the_directives() -> None:
    block = blocks('```js title="store.js"\n// highlight-start\nconfigureStore()\n// highlight-end\n```')[0]
    assert block.text == "configureStore()"
    assert block.quoted(1) == '```js title="store.js"\nconfigureStore()\n```'


def test_a_quote_drops_a_line_range_that_would_mark_other_lines() -> None:
    """A range keeps the directives shown (as on the site), but the quote cuts lines, so the range
    itself is not repeated; the title is."""
    block = blocks('```js title="store.js" {2}\n// highlight-next-line\nconfigureStore()\n```')[0]
    assert block.text == "// highlight-next-line\nconfigureStore()"
    assert block.quoted(1) == '```js title="store.js"\n// highlight-next-line\nconfigureStore()\n```'


@pytest.mark.parametrize(("info", "read"), [
    ('js title="a b.js" {1,3} showLineNumbers', 'js title="a b.js" {1,3}'),
    ("py title='x.py'", "py title='x.py'"),
    ("bash npm2yarn", "bash"),  # a plugin's flag shows no text
    ('js name="Custom navigator" snack static2dynamic', "js"),
    ("", ""),
])
def test_an_info_string_keeps_what_docusaurus_reads(info: str, read: str) -> None:
    assert read_info(info) == read
    assert [b.info for b in parse_page(f"```{info}\nx\n```\n").blocks] == [read]


def test_a_sites_magic_comments_replace_the_default_ones() -> None:
    # Docusaurus's own site adds "This will error"; a site's list replaces theme-classic's default.
    lines = ["// This will error", "a()", "// highlight-next-line", "b()"]
    assert shown_lines("js", lines, ("highlight-next-line", "This will error")) == ["a()", "b()"]
    assert shown_lines("js", lines, ("This will error",)) == lines[1:]
    # Read as text, not as a pattern: a config's "(a+)+$" must not backtrack for minutes.
    assert shown_lines("js", ["// a(b", "x"], ("a(b",)) == ["x"]
    assert shown_lines("js", ["// " + "a" * 40 + "!"], ("(a+)+$",)) == ["// " + "a" * 40 + "!"]
