"""Routes and heading anchors exactly as Docusaurus builds them, so citations land on the
right section of the deployed site."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

# github-slugger keeps letters, marks, numbers, connector punctuation, spaces and hyphens.
_NOT_SLUG = re.compile(r"[^\w\- ]", re.UNICODE)
_NUMBER_PREFIX = re.compile(r"^\d+[-_.]")


def github_slug(text: str) -> str:
    return _NOT_SLUG.sub("", text.strip().lower()).replace(" ", "-")


class Slugger:
    """Per-page slugger: repeated headings get -1, -2, … like github-slugger."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def slug(self, text: str) -> str:
        base = github_slug(text)
        slug = base
        while slug in self.seen:
            self.seen[base] += 1
            slug = f"{base}-{self.seen[base]}"
        self.seen[slug] = 0
        return slug

    def reserve(self, explicit_id: str) -> str:
        """An explicit {#id} is used as written and counts as seen."""
        self.seen.setdefault(explicit_id, 0)
        return explicit_id


def strip_number_prefix(segment: str) -> str:
    """Docusaurus drops ordering prefixes such as ``01-`` from routes."""
    stripped = _NUMBER_PREFIX.sub("", segment)
    return stripped or segment


def page_route(file_path: str, doc_id: str | None, slug: str | None) -> str:
    """Route of a page relative to the docs base URL, without leading slash.

    frontmatter ``slug`` wins (absolute when it starts with "/", else relative to the
    file's folder); then ``id`` (replaces the file name); then the path with number
    prefixes removed, ``index``/``README`` standing for their folder.
    """
    path = PurePosixPath(file_path)
    folders = [strip_number_prefix(p) for p in path.parent.parts]
    if slug:
        if slug.startswith("/"):
            return slug.strip("/")
        return "/".join([*folders, slug.strip("/")]).strip("/")
    if doc_id:
        return "/".join([*folders, doc_id]).strip("/")
    stem = strip_number_prefix(path.stem)
    # index.md, README.md and folder/folder.md are the folder's own page.
    if stem.lower() in {"index", "readme"} or (folders and stem.lower() == folders[-1].lower()):
        return "/".join(folders)
    return "/".join([*folders, stem]).strip("/")


def join_url(base_url: str, route: str, anchor: str = "") -> str:
    base = base_url if base_url.endswith("/") else base_url + "/"
    url = base + route
    return f"{url}#{anchor}" if anchor else url
