"""The files of a site that ingest reads, found the way ingest finds them: for a site root its
config, versions.json, the package.json that says which Docusaurus builds it, every version's and
locale's pages and the partials they show, what the outline reads (sidebars files, ``_category_``
files), and the docs plugin's manifests when the build left them; for a docs folder its pages,
their partials and its ``_category_`` files. ``lectern push`` sends these and no others."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import InvalidArgument
from services.ingest.book.discovery import discover
from services.ingest.book.editions import plan_source
from services.ingest.book.manifest import MANIFEST_FILE
from services.ingest.book.outline import category_files
from services.ingest.book.partials import partial_files
from services.ingest.book.site import SiteOverrides, find_config, read_site
from services.ingest.push.paths import ALLOWED_SUFFIXES

HASH_BLOCK = 1024 * 1024


@dataclass(frozen=True)
class LocalFile:
    path: str  # relative to the pushed folder, "/"-separated: where the server's copy keeps it
    source: Path  # the file read (a symlink inside the folder resolved)


def site_files(root: Path, base_url: str | None = None, overrides: SiteOverrides | None = None) -> list[LocalFile]:
    """Every file of ``root`` that an ingest of it reads, sorted by path. Reads the config:
    call it off an event loop. A docs folder outside the site root cannot be pushed."""
    root = root.resolve()
    plan = plan_source(root, base_url, overrides)  # refuses what ingest would refuse, with the same words
    found: dict[str, Path] = {}

    def add(path: Path, name: str | None = None) -> None:
        try:
            rel = (name or path.relative_to(root).as_posix())
        except ValueError:
            raise InvalidArgument.of("source_dir", f"{path} is outside {root}; a push sends the site's own "
                                     "folder only") from None
        found[rel] = path.resolve()

    config = find_config(root)
    if config is not None:
        add(config)
        for name in ("versions.json", "package.json"):
            if (root / name).is_file():
                add(root / name)
        site = read_site(root)
        build = root / "build"
        for manifest in [build / MANIFEST_FILE, *(build / loc / MANIFEST_FILE for loc in site.i18n.locales)]:
            if manifest.is_file():
                add(manifest)
    for source in plan.sources:
        if source.sidebar is not None and source.sidebar.is_file():
            add(source.sidebar)
        for category in category_files(source.docs_dir):
            add(category)
        for folder in (source.docs_dir, source.translated_dir):
            if folder is None:
                continue
            for page in discover(folder, source.include, source.exclude):
                add(page.path, _relative(root, folder, page.rel))
                for partial in partial_files(page.path, folder, source.markdown):  # shown in the page
                    if not partial.name.lower().endswith(ALLOWED_SUFFIXES):
                        continue  # a server takes no such file; the page is read without it
                    if partial.is_relative_to(folder.resolve()):
                        add(partial, _relative(root, folder, partial.relative_to(folder.resolve()).as_posix()))
                    else:  # a module of the site the page takes tab labels from (tab_labels)
                        add(partial)
    return [LocalFile(p, found[p]) for p in sorted(found)]


def _relative(root: Path, folder: Path, rel: str) -> str:
    try:
        return (folder.resolve().relative_to(root) / rel).as_posix() if folder.resolve() != root else rel
    except ValueError:
        raise InvalidArgument.of("source_dir", f"the docs folder {folder} is outside {root}; a push sends the "
                                 "site's own folder only") from None


def file_digest(path: Path) -> tuple[str, int]:
    """(SHA-256 hex, size) of a file's bytes."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while block := handle.read(HASH_BLOCK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size
