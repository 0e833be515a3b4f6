"""A Docusaurus site root through the real services: its baseUrl, routes, versions and locales
read from the site, one book holding them all, searches filtered by version and locale, and
chat answering from the reader's version and locale or falling back."""

from __future__ import annotations

import json
from typing import Any

import grpc
import httpx
import pytest
from lectern.chat.v1 import chat_service_pb2 as cpb
from lectern.chat.v1 import chat_service_pb2_grpc as cpb_grpc
from lectern.common.v1 import common_pb2
from lectern.ingest.v1 import ingest_service_pb2 as ipb
from lectern.ingest.v1 import ingest_service_pb2_grpc as ipb_grpc
from lectern.retrieval.v1 import retrieval_service_pb2 as rpb
from lectern.retrieval.v1 import retrieval_service_pb2_grpc as rpb_grpc

from runtime import errors
from runtime.status import from_rpc_error
from tests.conftest import ADMIN, FIXTURES, Stack

pytestmark = pytest.mark.asyncio(loop_scope="session")

SITE = FIXTURES / "sites" / "esm-versions"
EDIT = "https://github.com/example/robotics/edit/main/"
QUESTION = "How do I calibrate the gyroscope?"


async def ingest_events(stack: Stack, **fields: object) -> list[ipb.IngestResponse]:
    async with grpc.aio.insecure_channel(stack.ingest.address) as ch:
        try:
            return [e async for e in ipb_grpc.IngestServiceStub(ch).Ingest(
                ipb.IngestRequest(**fields))]  # type: ignore[arg-type]
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None


async def search(stack: Stack, **flt: object) -> list[common_pb2.Chunk]:
    async with grpc.aio.insecure_channel(stack.retrieval.address) as ch:
        reply = await rpb_grpc.RetrievalServiceStub(ch).Search(rpb.SearchRequest(
            query="gyroscope calibration drift", top_k=20, mode=rpb.SEARCH_MODE_DENSE,
            filter=common_pb2.SearchFilter(**flt)))  # type: ignore[arg-type]
    return [r.chunk for r in reply.results]


async def chat_sources(stack: Stack, book: str, version: str = "", locale: str = "") -> list[str]:
    async with grpc.aio.insecure_channel(stack.chat.address) as ch:
        events = [e async for e in cpb_grpc.ChatServiceStub(ch).Chat(
            cpb.ChatRequest(message=QUESTION, book=book, version=version, locale=locale))]
    assert events[-1].WhichOneof("event") == "done"
    return [s.url for e in events if e.WhichOneof("event") == "sources" for s in e.sources.sources]


@pytest.fixture(scope="module")
def site_events() -> list[ipb.IngestResponse]:
    return []


async def ingested_site(stack: Stack, site_events: list[ipb.IngestResponse]) -> list[ipb.IngestResponse]:
    if not site_events:
        site_events += await ingest_events(stack, source_dir=str(SITE), book="robotics")
    return site_events


async def test_a_site_root_is_one_book_of_its_versions_and_locales(
        stack: Stack, site_events: list[ipb.IngestResponse]) -> None:
    events = await ingested_site(stack, site_events)
    summary = events[-1].summary
    shown = {e.progress.file_path for e in events if e.WhichOneof("event") == "progress"}
    assert shown == {
        "docs/intro.md", "docs/calibration.md", "docs/guides/motion.md",
        "versioned_docs/version-1.0/intro.md", "versioned_docs/version-1.0/calibration.md",
        "i18n/fr/docusaurus-plugin-content-docs/current/intro.md",
        "i18n/fr/docusaurus-plugin-content-docs/current/calibration.md",
    }
    assert summary.files_seen == 7 and not summary.failed
    # A translation without an original page is never built by Docusaurus: said, not ingested.
    assert any("orphan.md" in w and "i18n/fr/docusaurus-plugin-content-docs/current" in w
               for w in summary.warnings), summary.warnings

    # The site's own baseUrl (/robotics/), routeBasePath (manual), trailingSlash (false) and
    # version paths (1.0 is the last version, served at its `path: 'v1'`; the docs folder is
    # "next"); French under /robotics/fr/. No flag was given.
    by_edition = {(c.version, c.locale): c for c in await search(stack, book="robotics", file_path="calibration.md")}
    assert set(by_edition) == {("current", "en"), ("1.0", "en"), ("current", "fr")}
    current, last, french = by_edition["current", "en"], by_edition["1.0", "en"], by_edition["current", "fr"]
    assert current.url == "/robotics/manual/next/calibration#gyroscope"
    assert last.url == "/robotics/manual/v1/calibration#gyroscope"
    assert french.url == "/robotics/fr/manual/next/calibration#gyroscope"
    assert (current.other_version, current.other_locale) == (True, False)
    assert (last.other_version, last.other_locale) == (False, False)
    assert (french.other_version, french.other_locale) == (True, True)
    assert current.edit_url == EDIT + "docs/calibration.md"
    assert last.edit_url == EDIT + "versioned_docs/version-1.0/calibration.md"
    assert french.edit_url == "https://translate.example.org/robotics/fr/calibration"  # custom_edit_url
    assert len({current.chunk_id, last.chunk_id, french.chunk_id}) == 3  # one file, three chunks

    again = (await ingest_events(stack, source_dir=str(SITE), book="robotics"))[-1].summary
    assert (again.chunks_new, again.chunks_changed, again.chunks_deleted) == (0, 0, 0)
    assert again.chunks_unchanged == summary.chunks_new


async def test_searches_filter_by_version_and_locale(stack: Stack, site_events: list[ipb.IngestResponse]) -> None:
    await ingested_site(stack, site_events)
    urls = {c.url.split("#")[0] for c in await search(stack, book="robotics", version="1.0")}
    assert urls == {"/robotics/manual/v1/calibration", "/robotics/manual/v1/intro"}
    french = await search(stack, book="robotics", locale="fr")
    assert french and all(c.url.startswith("/robotics/fr/manual/next/") for c in french)
    latest = await search(stack, book="robotics", default_version=True, default_locale=True)
    assert {(c.version, c.locale) for c in latest} == {("1.0", "en")}
    assert await search(stack, book="robotics", version="9.9") == []


async def test_chat_answers_from_the_readers_version_and_locale_or_falls_back(
        stack: Stack, site_events: list[ipb.IngestResponse]) -> None:
    await ingested_site(stack, site_events)
    next_url, last_url = "/robotics/manual/next/calibration#gyroscope", "/robotics/manual/v1/calibration#gyroscope"
    assert (await chat_sources(stack, "robotics", version="current"))[0] == next_url
    assert (await chat_sources(stack, "robotics", version="1.0"))[0] == last_url
    french = await chat_sources(stack, "robotics", version="current", locale="fr")
    assert french[0] == "/robotics/fr/manual/next/calibration#gyroscope"
    # Version 1.0 has no French translation: its English pages answer.
    assert (await chat_sources(stack, "robotics", version="1.0", locale="fr"))[0] == last_url
    # A version or locale the book does not hold, or none given: the latest version, default locale.
    for version, locale in (("9.9", ""), ("", "de"), ("", "")):
        assert (await chat_sources(stack, "robotics", version, locale))[0] == last_url


async def test_a_book_from_a_docs_folder_still_answers_a_reader_who_names_a_version(stack: Stack) -> None:
    # Chunks with no version or locale (a docs folder, or a book ingested before they existed)
    # are the book's only version and locale.
    summary = (await ingest_events(stack, source_dir=str(SITE / "docs"), book="plain"))[-1].summary
    assert summary.chunks_new and not summary.warnings
    chunks = await search(stack, book="plain", file_path="calibration.md")
    assert [(c.url, c.version, c.locale, c.edit_url) for c in chunks] == [("/docs/calibration#gyroscope", "", "", "")]
    sources = await chat_sources(stack, "plain", version="current", locale="en")
    assert sources[0] == "/docs/calibration#gyroscope"


async def test_values_the_config_computes_are_refused_naming_the_flag(stack: Stack) -> None:
    computed = FIXTURES / "sites" / "computed"
    with pytest.raises(errors.InvalidArgument) as exc:
        await ingest_events(stack, source_dir=str(computed), book="computed", dry_run=True)
    assert "--base-url" in exc.value.message and "--trailing-slash" in exc.value.message
    assert {v.field for v in exc.value.violations} == {"base_url", "trailing_slash", "route_base_path"}
    # Given, they win over the config, and the rest is read from it.
    events = await ingest_events(stack, source_dir=str(computed), book="computed", base_url="/c/",
                                 trailing_slash="true", route_base_path="reference")
    chunks = await search(stack, book="computed")
    assert events[-1].summary.files_seen == 1 and [c.url for c in chunks] == ["/c/reference/page/"]


@pytest.mark.parametrize(("fields", "field"), [
    ({"source_dir": str(SITE), "trailing_slash": "maybe"}, "trailing_slash"),
    ({"source_dir": str(SITE / "docs"), "route_base_path": "docs"}, "route_base_path"),
    ({"source_dir": str(SITE), "base_url": "https://books.example.org/robotics/"}, "base_url"),
    ({"source_dir": str(SITE), "only_include_versions": ["current", " "]}, "only_include_versions[1]"),
    ({"source_dir": str(SITE), "only_include_versions": ["current", "2.0"]}, "only_include_versions"),
    ({"source_dir": str(SITE), "only_include_versions": ["current"] * 1001}, "only_include_versions"),
])
async def test_bad_route_options_are_field_violations(stack: Stack, fields: dict[str, Any], field: str) -> None:
    with pytest.raises(errors.InvalidArgument) as exc:
        await ingest_events(stack, book="bad", dry_run=True, **fields)
    assert [v.field for v in exc.value.violations] == [field]


async def test_http_ingest_of_the_versions_given(gateway: str) -> None:
    """only_include_versions publishes the versions named, as the docs plugin's option does; an
    empty name is a 400 naming the field."""
    admin = {"Authorization": f"Bearer {ADMIN}", "Accept": "application/json"}
    async with httpx.AsyncClient(base_url=gateway, timeout=120) as client:
        bad = await client.post("/v1/ingest", headers=admin, json={
            "source_dir": str(SITE), "book": "given", "only_include_versions": ["1.0", ""]})
        assert bad.status_code == 400 and "only_include_versions" in bad.text, bad.text
        reply = await client.post("/v1/ingest", headers=admin, json={
            "source_dir": str(SITE), "book": "given", "only_include_versions": ["1.0"]})
        assert reply.status_code == 200, reply.text
        found = await client.post("/v1/search", json={"query": "gyroscope calibration", "book": "given", "top_k": 40})
        urls = [h["url"] for h in found.json()["results"]]
        assert urls and all("/manual/v1/" in u for u in urls)


async def test_http_ingest_of_a_site_root_then_search_and_chat_by_version(gateway: str) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}", "Accept": "application/json"}
    async with httpx.AsyncClient(base_url=gateway, timeout=120) as client:
        reply = await client.post("/v1/ingest", json={"source_dir": str(SITE), "book": "http-site"}, headers=admin)
        assert reply.status_code == 200, reply.text
        assert any("orphan.md" in w for w in reply.json()["warnings"])
        found = await client.post("/v1/search", json={
            "query": "gyroscope calibration", "book": "http-site", "filters": {"version": "1.0", "locale": "en"}})
        assert found.status_code == 200, found.text
        hits = found.json()["results"]
        assert hits and all(h["url"].startswith("/robotics/manual/v1/") and (h["version"], h["locale"]) == ("1.0", "en")
                            for h in hits)
        answer = await client.post("/v1/chat", headers={"Accept": "application/json"}, json={
            "message": QUESTION, "book": "http-site", "version": "current", "locale": "fr"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["sources"][0]["url"] == "/robotics/fr/manual/next/calibration#gyroscope"
        computed = await client.post("/v1/ingest", headers=admin, json={
            "source_dir": str(FIXTURES / "sites" / "computed"), "book": "http-computed", "dry_run": True})
        assert computed.status_code == 400
        assert "--base-url" in json.dumps(computed.json()["error"])
        bad = await client.post("/v1/ingest", headers=admin, json={"source_dir": str(SITE), "trailing_slash": "yes"})
        assert bad.status_code == 400
