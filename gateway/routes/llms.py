"""GET /llms.txt and /llms-full.txt (the default book), /books/{book}/llms.txt and
/books/{book}/llms-full.txt: a book for language models, in the llmstxt.org format.

``llms.txt`` is an H1 with the book's title, a blockquote with its summary, then one H2 per
top-level folder (root pages under "Docs") listing the pages in outline order as
``- [Title](url): one-line description``. ``llms-full.txt`` has the same head, then every page's
text under its title (H2) and its sections' headings (H3, H4…). Both come from the index through
``gateway.outline`` (cached until an ingest changes the book) and carry an ETag of the book's
revision, so a client's revalidation costs no rendering. ``?version=`` and ``?locale=`` pick an
edition of a versioned or translated book; by default the one the site serves at its docs root.
"""

from __future__ import annotations

import hashlib
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urljoin

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute

from gateway import errors
from gateway.outline import Outline, OutlineCache, Page
from gateway.routes.deps import upstream
from gateway.schemas import Text
from runtime import limits
from services.ingest.book.slugs import is_category_index, strip_number_prefix

router = APIRouter(tags=["llms"])
DEFAULT_BOOK = "default"
ROOT_SECTION = "Docs"
MEDIA_TYPE = "text/plain; charset=utf-8"

BookParam = Path(..., min_length=1, max_length=limits.BOOK_CHARS, description="Book name, as ingested.")
VersionParam = Query(None, max_length=limits.VERSION_CHARS,
                     description="Docs version ('current', '1.0'); default: the served one.")
LocaleParam = Query(None, max_length=limits.LOCALE_CHARS,
                    description="Locale ('en', 'fr'); default: the site's default locale.")


def _link_url(base: str, url: str) -> str:
    # Paths (a book previewed by this gateway) become absolute; characters that end a Markdown
    # link target are escaped.
    return urljoin(base, url).replace(" ", "%20").replace("(", "%28").replace(")", "%29")


def _text(value: str) -> str:
    return value.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")


def _humanize(folder: str) -> str:
    name = strip_number_prefix(folder).replace("-", " ").replace("_", " ").strip()
    return name[:1].upper() + name[1:] if name else folder


def sections(outline: Outline) -> list[tuple[str, list[Page]]]:
    """Pages grouped by top-level folder, in outline order (which keeps each folder together);
    a folder is named by its index page's title when it has one, else by its own name."""
    groups: list[tuple[str, list[Page]]] = []
    folder = None
    for page in outline.pages:
        parts = page.file_path.split("/")
        here = parts[0] if len(parts) > 1 else ""
        if here != folder:
            folder = here
            index = len(parts) == 2 and is_category_index(PurePosixPath(parts[1]).stem, here)
            name = (ROOT_SECTION if not here else page.category or (page.title if index and page.title
                                                                     else _humanize(here)))
            taken = {n for n, _ in groups}
            groups.append((name if name not in taken else f"{name} ({here})", []))
        groups[-1][1].append(page)
    return groups


def _head(outline: Outline, full: bool) -> list[str]:
    lines = [f"# {outline.title}", ""]
    if outline.summary:
        lines += [f"> {outline.summary}", ""]
    other = "llms.txt" if full else "llms-full.txt"
    lines += [f"The pages of the book \"{outline.book}\" in outline order, read from its Lectern index "
              f"({'their full text' if full else 'one line each'}; see also {other}).", ""]
    return lines


def render_index(outline: Outline, base: str) -> str:
    lines = _head(outline, full=False)
    for name, pages in sections(outline):
        lines += [f"## {name}", ""]
        for page in pages:
            note = f": {page.description}" if page.description else ""
            lines.append(f"- [{_text(page.title)}]({_link_url(base, page.url)}){note}")
        lines.append("")
    return "\n".join(lines)


def render_full(outline: Outline, base: str) -> str:
    lines = _head(outline, full=True)
    for page in outline.pages:
        lines += [f"## {page.title}", "", f"Source: {_link_url(base, page.url)}", ""]
        shown: tuple[str, ...] = ()
        for section in page.sections:
            # Parent headings a section sits under are written once, as the page shows them.
            for level, heading in enumerate(section.path):
                if shown[:level + 1] != section.path[:level + 1]:
                    lines += [f"{'#' * min(level + 3, 6)} {heading}", ""]
            shown = section.path
            lines += [section.text.strip(), ""]
    return "\n".join(lines)


async def _serve(request: Request, book: str, version: str | None, locale: str | None, full: bool) -> Response:
    cache: OutlineCache = request.app.state.outlines
    retrieval = (await upstream(request)).retrieval
    outline = await cache.get(retrieval, book, version or "", locale or "")
    if outline is None:
        return JSONResponse(errors.error_body("NOT_FOUND", f"book {book!r} has no indexed pages in that edition"), 404)
    base = str(request.base_url)
    tag = hashlib.sha256(f"{outline.revision}|{full}|{base}|{version}|{locale}".encode()).hexdigest()[:32]
    etag = f'"{tag}"'
    # no-cache: clients may keep it but must revalidate, so an ingest shows at once; a match costs a 304.
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    text = render_full(outline, base) if full else render_index(outline, base)
    return PlainTextResponse(text, media_type=MEDIA_TYPE, headers=headers)


_ROUTE: dict[str, Any] = {
    "methods": ["GET"], "response_class": PlainTextResponse,
    "responses": {200: {"content": {"text/plain": {}}, "description": "The book in the llmstxt.org format."},
                  404: {"description": "The book holds no page in that edition."}},
}


@router.api_route("/llms.txt", summary="The default book's pages for language models (llmstxt.org)", **_ROUTE)
async def llms_txt(request: Request, version: Text | None = VersionParam,
                   locale: Text | None = LocaleParam) -> Response:
    return await _serve(request, DEFAULT_BOOK, version, locale, full=False)


@router.api_route("/llms-full.txt", summary="The default book's full text for language models", **_ROUTE)
async def llms_full_txt(request: Request, version: Text | None = VersionParam,
                        locale: Text | None = LocaleParam) -> Response:
    return await _serve(request, DEFAULT_BOOK, version, locale, full=True)


@router.api_route("/books/{book}/llms.txt", summary="A book's pages for language models (llmstxt.org)", **_ROUTE)
async def book_llms_txt(request: Request, book: Text = BookParam, version: Text | None = VersionParam,
                        locale: Text | None = LocaleParam) -> Response:
    return await _serve(request, book, version, locale, full=False)


@router.api_route("/books/{book}/llms-full.txt", summary="A book's full text for language models", **_ROUTE)
async def book_llms_full_txt(request: Request, book: Text = BookParam, version: Text | None = VersionParam,
                             locale: Text | None = LocaleParam) -> Response:
    return await _serve(request, book, version, locale, full=True)


# HEAD too (crawlers check for the file before fetching it), outside the schema: one operation each.
for _get in [r for r in router.routes if isinstance(r, APIRoute)]:
    router.add_api_route(_get.path, _get.endpoint, methods=["HEAD"], include_in_schema=False)
