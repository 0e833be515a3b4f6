"""One file -> its chunks, or the reason it was skipped or failed."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from records.chunk import Chunk
from records.edition import SOLE_EDITION, Edition
from services.ingest.book.chunker import Budget, PageInfo, chunk_page, page_title
from services.ingest.book.discovery import SourceFile
from services.ingest.book.parser import DEFAULT_MARKDOWN, PageError, SiteMarkdown, decode
from services.ingest.book.partials import parse_with_partials
from services.ingest.book.slugs import RouteError, RouteOptions, doc_slug, normalize_url, strip_number_prefix

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_LINE_CHARS = 100_000
# Tags are labels for a tag page and a chunk filter; a real page has a handful of short ones.
MAX_TAGS = 100
MAX_TAG_CHARS = 200


@dataclass(frozen=True)
class PageResult:
    file: SourceFile
    chunks: list[Chunk] = field(default_factory=list)
    skipped: str = ""  # reason, when left out on purpose
    failed: str = ""  # reason, when it could not be read
    frontmatter: dict[str, object] = field(default_factory=dict)  # for the book's outline
    notes: tuple[str, ...] = ()  # what was read without (a partial that could not be shown)


def _tags(value: object) -> tuple[str, ...]:
    """Front matter ``tags``: strings or ``{label, permalink}`` objects, as Docusaurus's
    FrontMatterTagsSchema accepts (numbers and dates such as ``2024`` are read as text, as its
    JoiFrontMatter does; booleans are not); anything else fails the page, as it fails a
    Docusaurus build.
    https://github.com/facebook/docusaurus/blob/main/packages/docusaurus-utils-validation/src/validationSchemas.ts
    """
    if value is None:
        return ()
    if not isinstance(value, list):
        raise PageError("frontmatter tags must be a list")
    if len(value) > MAX_TAGS:
        raise PageError(f"frontmatter has {len(value)} tags; the limit is {MAX_TAGS}")
    tags: list[str] = []
    for i, tag in enumerate(value):
        label = tag.get("label") if isinstance(tag, dict) else tag
        if isinstance(label, int | float | datetime.date) and not isinstance(label, bool):
            label = str(int(label)) if isinstance(label, float) and label.is_integer() else str(label)
        if not isinstance(label, str):
            raise PageError(f"frontmatter tags[{i}] is not a tag (a string or {{label, permalink}})")
        if len(label) > MAX_TAG_CHARS:
            raise PageError(f"frontmatter tags[{i}] is {len(label)} characters; the limit is {MAX_TAG_CHARS}")
        tags.append(label)
    return tuple(tags)


def _string(fm: dict[str, object], key: str) -> str | None:
    """``id`` and ``slug`` are plain ``Joi.string()`` in Docusaurus's doc front matter schema
    (docusaurus-plugin-content-docs/src/frontMatter.ts): no numbers, no empty string."""
    value = fm.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise PageError(f"frontmatter {key} must be a non-empty string")
    return value


def _flag(fm: dict[str, object], key: str, default: bool = False) -> bool:
    """A Joi boolean: true/false, or the strings "true"/"false" in any case."""
    value = fm.get(key, default)
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise PageError(f"frontmatter {key} must be true or false")
    return value


def visibility(fm: dict[str, object]) -> str:
    """"draft", "unlisted" or "" — what a production build does with the page
    (docusaurus-utils/src/contentVisibilityUtils.ts, validationSchemas.ts): a draft is not
    built at all, so a link to it would 404; an unlisted page is built but hidden (noindex,
    out of sidebars and sitemap, "only users having the link can find it"), so a chatbot
    that cites it would make it findable. Both are left out unless drafts are asked for."""
    draft, unlisted = _flag(fm, "draft"), _flag(fm, "unlisted")
    if draft and unlisted:
        raise PageError("frontmatter cannot be draft and unlisted at the same time")
    return "draft" if draft else "unlisted" if unlisted else ""


def _edit_url(fm: dict[str, object], edit_base: str, rel: str) -> str:
    """Front matter ``custom_edit_url`` (null: none), else the folder's edit link and the file's
    path (``getDocEditUrl`` in docusaurus-plugin-content-docs/src/docs.ts, ``getEditUrl`` in
    docusaurus-utils/src/urlUtils.ts)."""
    if "custom_edit_url" in fm:
        custom = fm["custom_edit_url"]
        if custom is not None and not isinstance(custom, str):
            raise PageError("frontmatter custom_edit_url must be a URL or null")
        return custom or ""
    return normalize_url([edit_base, rel]) if edit_base else ""


def read_page(file: SourceFile, book: str, base_url: str, budget: Budget, include_drafts: bool,
              routes: RouteOptions | None = None, edition: Edition = SOLE_EDITION, edit_base: str = "",
              markdown: SiteMarkdown = DEFAULT_MARKDOWN) -> PageResult:
    """``routes`` carries the site's URL rules; without it ``base_url`` is the docs' own URL.
    ``edition`` is the page's version and locale; ``edit_base`` the edit link of its folder;
    ``markdown`` how the site compiles pages (MDX unless its config says otherwise)."""
    routes = routes or RouteOptions.under(base_url)
    try:
        size = file.path.stat().st_size
        if size > MAX_FILE_BYTES:
            return PageResult(file, failed=f"file is {size} bytes; the limit is {MAX_FILE_BYTES}")
        text = decode(Path(file.path).read_bytes())
        if any(len(line) > MAX_LINE_CHARS for line in text.split("\n")):
            return PageResult(file, failed=f"a line is longer than {MAX_LINE_CHARS} characters")
        page, notes = parse_with_partials(text, file.path, _docs_root(file), markdown)
        fm = page.frontmatter
        tags = _tags(fm.get("tags"))
        hidden = visibility(fm)
        prefixes = routes.number_prefixes and _flag(fm, "parse_number_prefixes", True)
        doc_id = _string(fm, "id")
        slug = doc_slug(file.rel, doc_id, _string(fm, "slug"), prefixes)
        edit_url = _edit_url(fm, edit_base, file.rel)
    except (PageError, RouteError) as exc:
        return PageResult(file, failed=str(exc))
    except OSError as exc:
        return PageResult(file, failed=f"cannot read: {exc.strerror or exc}")
    if hidden and not include_drafts:
        return PageResult(file, skipped=hidden)
    info = PageInfo(
        book=book, file_path=file.rel, module=file.module,
        title=page_title(page, doc_id or strip_number_prefix(PurePosixPath(file.rel).stem)),
        tags=tags, page_url=routes.permalink(slug), edition=edition, edit_url=edit_url,
    )
    try:
        chunks = chunk_page(page, info, budget)
    except PageError as exc:  # headings longer than a chunk can hold
        return PageResult(file, failed=str(exc))
    return PageResult(file, chunks, frontmatter=fm, notes=tuple(notes))


def _docs_root(file: SourceFile) -> Path:
    """The folder the page was found in: partials are read from inside it only."""
    root = file.path
    for _ in PurePosixPath(file.rel).parts:
        root = root.parent
    return root
