"""Routes and heading anchors exactly as Docusaurus 3 builds them, so citations land on the
right section of the deployed site.

Each rule below names the Docusaurus (or github-slugger) source file it follows; paths such
as ``docusaurus-utils/src/urlUtils.ts`` are under
https://github.com/facebook/docusaurus/blob/main/packages/ . The behaviour was read from the
3.x sources published on npm (3.10.2), checked against those functions on 8,000 generated
inputs, and against a real ``docusaurus build`` of tests/fixtures/routes (see tests/test_book.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from services.ingest.book.slugger_table import REMOVED


class RouteError(ValueError):
    """Docusaurus refuses to build this page (its build fails); the message says why."""


# --- Number prefixes --------------------------------------------------------------------
# packages/docusaurus-plugin-content-docs/src/numberPrefix.ts: "01-intro", "1 - intro",
# "01___intro" and "1.intro" lose their prefix; names that start like a date or a version
# ("2021-01-31 notes", "4.3-motion-control", "8.0") keep it; a name that is only a number
# and separators ("01-", "01") is left alone too, as the suffix must start with a character
# other than a separator or space.
_IGNORED_PREFIX = re.compile(r"\d+[-_.]\d+")
_NUMBER_PREFIX = re.compile(r"(?P<number>\d+)\s*[-_.]+\s*(?P<suffix>[^-_.\s].*)\Z", re.DOTALL)


def parse_number_prefix(name: str) -> tuple[str, int | None]:
    """``(name without its ordering prefix, the prefix)``, by DefaultNumberPrefixParser
    (``numberPrefix.ts``); the prefix is None when there is none to strip."""
    if _IGNORED_PREFIX.match(name):
        return name, None
    match = _NUMBER_PREFIX.match(name)
    if not match:
        return name, None
    return match["suffix"], int(match["number"])


def strip_number_prefix(segment: str) -> str:
    """``01-intro`` -> ``intro``; date- and version-like names are kept (``numberPrefix.ts``)."""
    return parse_number_prefix(segment)[0]


# --- URL helpers ported from @docusaurus/utils and @docusaurus/utils-common ---------------

def normalize_url(parts: list[str]) -> str:
    """Join URL parts with single slashes, as ``normalizeUrl`` does
    (``docusaurus-utils/src/urlUtils.ts``): inner slashes between parts collapse, a
    trailing slash on the last non-empty part is kept."""
    urls = list(parts)
    if not urls:
        return ""
    if re.match(r"^[^/:]+:/*$", urls[0]) and len(urls) > 1:
        first = urls.pop(0)
        urls[0] = f"{first}//{urls[0]}" if first.startswith("file:") and urls[0].startswith("/") \
            else first + urls[0]
    replacement = r"\g<protocol>:///" if re.match(r"^file:///", urls[0]) else r"\g<protocol>://"
    urls[0] = re.sub(r"^(?P<protocol>[^/:]+):/*", replacement, urls[0], count=1)
    result: list[str] = []
    has_starting_slash = has_ending_slash = False
    for i, component in enumerate(urls):
        if component == "":
            if i == len(urls) - 1 and has_ending_slash:
                result.append("/")
            continue
        if component != "/":
            if i > 0:
                keep = "/" if component.startswith("/") and not has_starting_slash else ""
                component = re.sub(r"^/+", keep, component, count=1)
            has_ending_slash = component.endswith("/")
            component = re.sub(r"/+$", "" if i < len(urls) - 1 else "/", component, count=1)
        has_starting_slash = True
        result.append(component)
    joined = "/".join(result)
    joined = re.sub(r"/(\?|&|#[^!/])", r"\1", joined)
    head, *rest = joined.split("?")
    joined = head + ("?" if rest else "") + "&".join(rest)
    joined = re.sub(r"([^:/]/)/+", r"\1", joined)
    return re.sub(r"^/+", "/", joined)


def apply_trailing_slash(path: str, trailing_slash: bool | None, base_url: str) -> str:
    """The site's ``trailingSlash`` applied to a route (``docusaurus-utils-common/src/
    applyTrailingSlash.ts``): None leaves routes as the docs plugin made them; ``/`` and the
    base URL itself are never changed."""
    if path.startswith("#") or trailing_slash is None:
        return path
    pathname = re.split(r"[#?]", path, maxsplit=1)[0]
    if pathname in {"/", base_url}:
        return path
    changed = pathname if pathname.endswith("/") else pathname + "/"
    if not trailing_slash:
        changed = pathname[:-1] if pathname.endswith("/") else pathname
    return path.replace(pathname, changed, 1)


def resolve_pathname(to: str, base: str) -> str:
    """``to`` resolved against the folder URL ``base`` like the resolve-pathname package that
    ``resolvePathname`` wraps (``docusaurus-utils/src/urlUtils.ts``): ``./``, ``../`` and a
    trailing slash behave as in a browser; ``..`` never climbs above ``/``."""
    to_parts = to.split("/") if to else []
    from_parts = base.split("/") if base else []
    must_end_abs = to.startswith("/") or base.startswith("/")
    if to.startswith("/"):
        from_parts = to_parts
    elif to_parts:
        from_parts = from_parts[:-1] + to_parts
    if not from_parts:
        return "/"
    trailing = from_parts[-1] in {".", "..", ""}
    kept: list[str] = []
    up = 0
    for part in reversed(from_parts):
        if part == ".":
            continue
        if part == "..":
            up += 1
        elif up:
            up -= 1
        else:
            kept.append(part)
    kept.reverse()
    if not must_end_abs:
        kept = [".."] * up + kept
    if must_end_abs and (not kept or kept[0] != ""):
        kept.insert(0, "")
    result = "/".join(kept)
    return result + "/" if trailing and not result.endswith("/") else result


def is_valid_pathname(path: str) -> bool:
    """Docusaurus accepts a slug only if a URL parser gives it back unchanged
    (``isValidPathname``, ``docusaurus-utils/src/urlUtils.ts``): absolute, no host, no query
    or hash, no dot segments or backslashes for the parser to rewrite."""
    if not path.startswith("/") or path.startswith("//"):
        return False
    if any(c in path for c in "?#\\"):
        return False
    return not any(seg in {".", ".."} for seg in path.split("/"))


# --- Doc slugs ----------------------------------------------------------------------------

def is_category_index(file_name: str, folder: str) -> bool:
    """A doc is its folder's index when its file name (extension off, number prefix kept) is
    ``index``, ``readme`` or the folder's own name, compared case-insensitively
    (``isCategoryIndex`` in ``docusaurus-plugin-content-docs/src/docs.ts``)."""
    names = {"index", "readme", PurePosixPath(folder).name.lower() if folder not in {"", "."} else "."}
    return file_name.lower() in names


def doc_id(source: str, front_matter_id: str | None, parse_number_prefixes: bool = True) -> str:
    """The doc id Docusaurus gives ``source`` (path under the docs folder): front matter ``id``
    or the file name without its number prefix, after the folders with theirs stripped
    (``processDocMetadata`` in ``docusaurus-plugin-content-docs/src/docs.ts``)."""
    path = PurePosixPath(source)
    base_id = _base_id(path, front_matter_id, parse_number_prefixes)
    folder = path.parent.as_posix()
    return base_id if folder == "." else "/".join([_strip_dirs(folder, parse_number_prefixes), base_id])


def _base_id(path: PurePosixPath, front_matter_id: str | None, parse_number_prefixes: bool) -> str:
    base_id = front_matter_id if front_matter_id is not None else (
        strip_number_prefix(path.stem) if parse_number_prefixes else path.stem)
    if "/" in base_id:
        raise RouteError(f'Document id "{base_id}" cannot include slash.')
    return base_id


def _strip_dirs(folder: str, parse_number_prefixes: bool) -> str:
    """``stripPathNumberPrefixes``: each folder of the path loses its own prefix."""
    return "/".join(strip_number_prefix(p) if parse_number_prefixes else p for p in folder.split("/"))


def doc_slug(source: str, front_matter_id: str | None = None, front_matter_slug: str | None = None,
             parse_number_prefixes: bool = True) -> str:
    """The slug of a doc under its version's route, with a leading slash (``getSlug`` in
    ``docusaurus-plugin-content-docs/src/slug.ts``):

    - front matter ``slug`` starting with ``/`` is used as written (``/`` is the docs root);
    - an index doc (``index``, ``README``, a doc named like its folder) without ``slug`` is
      its folder, with a trailing slash, whatever its ``id``;
    - otherwise ``slug``, or else the id (front matter ``id`` or the file name without its
      number prefix), is resolved against the folder, number prefixes stripped from every
      folder; ``./`` and ``../`` work as in URLs.
    """
    path = PurePosixPath(source)
    folder = path.parent.as_posix()
    base_id = _base_id(path, front_matter_id, parse_number_prefixes)
    if front_matter_slug is not None and front_matter_slug.startswith("/"):
        slug = front_matter_slug
    else:
        dir_slug = "/" if folder == "." else "/" + _strip_dirs(folder, parse_number_prefixes) + "/"
        if not front_matter_slug and is_category_index(path.stem, folder):
            slug = dir_slug
        else:
            slug = resolve_pathname(front_matter_slug if front_matter_slug is not None else base_id, dir_slug)
    if not is_valid_pathname(slug):
        raise RouteError(f'cannot compute a valid slug for document "{base_id}" in "{folder}": {slug!r} '
                         "(Docusaurus refuses it; set a slug such as /my/doc-path in front matter)")
    return slug


@dataclass(frozen=True)
class RouteOptions:
    """How a doc's slug becomes its URL on the deployed site. The defaults reproduce what
    ingest did before site configs were read (``/docs/`` prefix, routes untouched); a reader
    of ``docusaurus.config.*`` fills them from the site.

    - ``base_url``: the site's ``baseUrl``;
    - ``route_base_path``: the docs plugin's ``routeBasePath`` (``""`` or ``/`` for docs-only
      sites);
    - ``trailing_slash``: the site's ``trailingSlash`` (None = as the docs plugin made them);
    - ``number_prefixes``: False when the plugin's ``numberPrefixParser`` is disabled.

    The docs version's route is ``normalizeUrl([baseUrl, routeBasePath, versionPath])`` and a
    doc's permalink ``normalizeUrl([versionRoute, slug])`` (``versions/version.ts`` and
    ``docs.ts`` in docusaurus-plugin-content-docs); ``trailingSlash`` is applied to every
    route by @docusaurus/core.
    """

    base_url: str = "/"
    route_base_path: str = "docs"
    trailing_slash: bool | None = None
    number_prefixes: bool = True
    version_path: str = ""  # "" for the only or last version, "next" for an unreleased one, …

    @classmethod
    def under(cls, docs_url: str) -> RouteOptions:
        """Options for callers that give the docs' URL whole (``/docs/``, ``https://…/docs/``)."""
        return cls(base_url=docs_url, route_base_path="")

    def docs_root(self) -> str:
        return normalize_url([self.base_url, "/" + self.route_base_path.lstrip("/"), self.version_path])

    def permalink(self, slug: str) -> str:
        url = normalize_url([self.docs_root(), slug])
        return apply_trailing_slash(url, self.trailing_slash, self.base_url)


def page_route(file_path: str, doc_id: str | None, slug: str | None) -> str:
    """Route of a page relative to the docs base URL, without leading slash (``doc_slug``
    without its leading ``/``; index docs keep their trailing slash, as Docusaurus links
    them)."""
    return doc_slug(file_path, doc_id, slug).lstrip("/")


def join_url(base_url: str, route: str, anchor: str = "") -> str:
    base = base_url if base_url.endswith("/") else base_url + "/"
    url = base + route
    return f"{url}#{anchor}" if anchor else url


# --- Heading ids --------------------------------------------------------------------------

def github_slug(text: str, maintain_case: bool = False) -> str:
    """github-slugger's ``slug``: lower-case, drop what ``REMOVED`` lists (punctuation,
    symbols and emoji, controls; letters, combining marks, numbers, ``_`` and ``-`` stay),
    then each ASCII space becomes ``-``. Nothing is trimmed or collapsed.
    https://github.com/Flet/github-slugger/blob/master/index.js
    Lower-casing is Python's (Unicode 14); Node's newer tables differ on what survives only
    for U+A7CB and U+A7DC, two capitals added in Unicode 16.
    """
    return REMOVED.sub("", text if maintain_case else text.lower()).replace(" ", "-")


class Slugger:
    """Per-page slugger, like github-slugger's ``BananaSlug``: a repeated slug gets ``-1``,
    ``-2``, … and the suffixed slug counts as seen too. Docusaurus runs one per document over
    every heading, H1 included (``docusaurus-mdx-loader/src/remark/headings/index.ts``);
    explicit ids (``{#id}``, ``{/* #id */}``) never pass through it, so they do not push later
    headings to ``-1``."""

    def __init__(self, maintain_case: bool = False) -> None:
        self.seen: dict[str, int] = {}
        self.maintain_case = maintain_case

    def slug(self, text: str) -> str:
        base = github_slug(text, self.maintain_case)
        slug = base
        while slug in self.seen:
            self.seen[base] += 1
            slug = f"{base}-{self.seen[base]}"
        self.seen[slug] = 0
        return slug
