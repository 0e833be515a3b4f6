"""Routes and anchors from docusaurus-plugin-lectern's build manifest (services/ingest/book/manifest.py).
A real build's manifest is read in tests/test_docusaurus_build.py; these use hand-made ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from embedding.tokens import count_tokens
from runtime.errors import InvalidArgument
from services.ingest.book.chunker import Budget
from services.ingest.book.discovery import discover
from services.ingest.book.manifest import (
    MANIFEST_FILE,
    ChunkRef,
    ManifestError,
    anchor_of,
    apply_manifest,
    chunk_ref,
    load_manifest,
    missing_anchors,
    parse_manifest,
    resolve,
)
from services.ingest.book.pages import read_page
from tests.conftest import FIXTURES


def entry(file: str, permalink: str, ids: list[str] | None, version: str = "current", locale: str = "en",
          **extra: Any) -> dict[str, Any]:
    return {"plugin": "default", "version": version, "locale": locale, "id": file.split(".")[0], "file": file,
            "source": f"docs/{file}", "permalink": permalink, "unlisted": False, "ids": ids, **extra}


def manifest_json(locale: str, docs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"lectern_manifest": 1, "locale": locale, "defaultLocale": "en", "locales": ["en", "fr"],
            "baseUrl": "/robot/" if locale == "en" else f"/robot/{locale}/", "trailingSlash": False,
            "versions": [], "docs": docs, "book": "default"}


EN = manifest_json("en", [
    entry("intro.md", "/robot/docs", ["who-this-book-is-for"]),
    entry("01-guide/02-setup.md", "/robot/docs/guide/setup", ["setup", "setup-1", "हिन्दी-शीर्षक"]),
    entry("intro.md", "/robot/docs/1.0", ["what-changed"], version="1.0"),
    entry("roadmap.md", "/robot/docs/roadmap", None),  # its HTML was not found: no ids
    entry("api.md", "/api/calls", ["calls"], plugin="api"),  # another docs plugin
])
FR = manifest_json("fr", [entry("intro.md", "/robot/fr/docs", ["à-qui-sadresse-ce-livre"], locale="fr")])


def test_resolve_gives_the_built_permalink_and_anchor() -> None:
    manifest = parse_manifest(EN)
    assert resolve(manifest, ChunkRef("01-guide/02-setup.md", "current", "en", "setup-1")) == \
        "/robot/docs/guide/setup#setup-1"
    assert resolve(manifest, ChunkRef("intro.md", "current", "en", "")) == "/robot/docs"
    # "" is the current version and the site's default locale (a docs folder's chunks).
    assert resolve(manifest, ChunkRef("intro.md", "", "", "who-this-book-is-for")) == \
        "/robot/docs#who-this-book-is-for"
    assert resolve(manifest, ChunkRef("intro.md", "1.0", "en", "what-changed")) == "/robot/docs/1.0#what-changed"
    # Not in the manifest: a draft, a page added since the build, another plugin's doc, a locale not built.
    assert resolve(manifest, ChunkRef("draft.md", "current", "en", "")) is None
    assert resolve(manifest, ChunkRef("api.md", "current", "en", "calls")) is None
    assert resolve(manifest, ChunkRef("intro.md", "current", "fr", "")) is None
    assert resolve(parse_manifest(EN, plugin="api"), ChunkRef("api.md", "current", "en", "calls")) == \
        "/api/calls#calls"


def test_missing_anchors_lists_the_chunks_whose_anchor_the_built_page_lacks() -> None:
    manifest = parse_manifest(EN)
    chunks = [
        ChunkRef("01-guide/02-setup.md", "current", "en", "setup"),
        ChunkRef("01-guide/02-setup.md", "current", "en", "हनद-शरषक"),  # combining marks dropped
        ChunkRef("01-guide/02-setup.md", "current", "en", ""),  # the intro chunk has no anchor
        ChunkRef("roadmap.md", "current", "en", "next-year"),  # the page has no ids at all
        ChunkRef("intro.md", "1.0", "en", "who-this-book-is-for"),  # the current version's id, not 1.0's
        ChunkRef("unknown.md", "current", "en", "x"),  # not built: resolve's None, not listed here
    ]
    assert missing_anchors(manifest, chunks) == [chunks[1], chunks[3], chunks[4]]
    assert missing_anchors(manifest, []) == []


def test_load_manifest_merges_every_locale_of_a_build(tmp_path: Path) -> None:
    (tmp_path / "fr").mkdir()
    (tmp_path / MANIFEST_FILE).write_text(json.dumps(EN), encoding="utf-8")
    (tmp_path / "fr" / MANIFEST_FILE).write_text(json.dumps(FR), encoding="utf-8")
    manifest = load_manifest(tmp_path)
    assert manifest.default_locale == "en"
    assert resolve(manifest, ChunkRef("intro.md", "current", "fr", "à-qui-sadresse-ce-livre")) == \
        "/robot/fr/docs#à-qui-sadresse-ce-livre"
    assert resolve(load_manifest(tmp_path / MANIFEST_FILE), ChunkRef("intro.md", "", "", "")) == "/robot/docs"
    # A locale built on its own (no manifest beside the default one) is left out, not an error.
    (tmp_path / "fr" / MANIFEST_FILE).unlink()
    assert resolve(load_manifest(tmp_path), ChunkRef("intro.md", "current", "fr", "")) is None


@pytest.mark.parametrize(("data", "message"), [
    ([], "not a JSON object"),
    ({**EN, "lectern_manifest": 2}, "this Lectern reads version 1"),
    ({**EN, "defaultLocale": 3}, "defaultLocale must be a string"),
    ({**EN, "docs": {}}, "docs must be a list"),
    ({**EN, "docs": ["x"]}, "docs[0] must be an object"),
    ({**EN, "docs": [{**entry("a.md", "/a", []), "ids": ["x", 1]}]}, "docs[0].ids must be a list of strings"),
    ({**EN, "docs": [entry("a.md", "a", [])]}, "docs[0].permalink must be a path"),
    ({**EN, "docs": [entry("a.md", "/a#b", [])]}, "docs[0].permalink must be a path"),
    ({**EN, "docs": [{**entry("a.md", "/a", []), "file": None}]}, "docs[0].file must be a string"),
])
def test_a_bad_manifest_is_a_clear_invalid_argument(data: object, message: str) -> None:
    with pytest.raises(ManifestError, match=message.replace("[", r"\[").replace("]", r"\]")) as caught:
        parse_manifest(data)
    assert isinstance(caught.value, InvalidArgument)
    assert caught.value.violations[0].field == "manifest"


def test_unreadable_manifest_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="cannot read"):
        load_manifest(tmp_path)
    (tmp_path / MANIFEST_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(ManifestError, match="is not JSON"):
        load_manifest(tmp_path)
    (tmp_path / MANIFEST_FILE).write_text(json.dumps({**EN, "locales": "fr"}), encoding="utf-8")
    with pytest.raises(ManifestError, match="locales must be a list"):
        load_manifest(tmp_path)


def test_anchor_of() -> None:
    assert anchor_of("/robot/docs/a#b") == "b"
    assert anchor_of("/robot/docs/a") == ""
    assert anchor_of("https://x.example/docs/a#é") == "é"


def test_apply_manifest_takes_urls_from_the_build_and_reports_lost_anchors() -> None:
    # tests/fixtures/routes as ingested from its docs folder at /docs/, then published at /robot/docs
    # by a build whose headings page lost its "setup-1" heading.
    root = FIXTURES / "routes" / "docs"
    files = [f for f in discover(root) if f.rel in {"headings.mdx", "01-guide/02-setup.md"}]
    chunks = [c for f in files for c in read_page(f, "book", "/docs/", Budget(count_tokens, 512), False).chunks]
    headings = next(c for c in chunks if c.file_path == "headings.mdx" and c.url.endswith("#setup-1"))
    ids = {anchor_of(c.url) for c in chunks if c.file_path == "headings.mdx"} - {"", "setup-1"}
    built = parse_manifest(manifest_json("en", [entry("headings.mdx", "/robot/docs/headings", sorted(ids))]))
    moved, lacking = apply_manifest(built, chunks)
    assert [chunk_ref(c) for c in lacking] == [chunk_ref(headings)]
    for before, after in zip(chunks, moved, strict=True):
        if before.file_path == "headings.mdx":
            assert after.url == before.url.replace("/docs/headings", "/robot/docs/headings", 1)
            assert after.content_hash != before.content_hash  # the new URL is written to the index
        else:  # not in the manifest: the computed URL stays, and so does the stored chunk
            assert after == before
        assert after.chunk_id == before.chunk_id
    # The hash is chunker.content_hash's own: re-applying the URL the chunk had gives it back.
    same = parse_manifest(manifest_json("en", [entry("headings.mdx", "/docs/headings", sorted(ids))]))
    assert apply_manifest(same, chunks)[0] == chunks
    absolute, _ = apply_manifest(built, chunks, origin="https://robot.example.com/")
    assert {c.url.split("#")[0] for c in absolute if c.file_path == "headings.mdx"} == {
        "https://robot.example.com/robot/docs/headings"}
