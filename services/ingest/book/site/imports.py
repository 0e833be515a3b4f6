"""Where a page's import points, as Docusaurus's webpack resolves it, kept inside the site.

Pages import site modules (tab labels, services.ingest.book.tab_labels) and files shown as code
(services.ingest.book.raw_code). Both are read only when the import names a file inside the site
(``@site/…``, or a path relative to the page that stays inside it) of at most a given size.
"""

from __future__ import annotations

from pathlib import Path

from services.ingest.book.site.literal import resolved_module

# What Docusaurus's webpack resolves an import without an extension to, in its order
# (@docusaurus/core 3.10's lib/webpack/base.js, resolve.extensions, less .wasm).
WEBPACK_EXTENSIONS = (".mjs", ".js", ".jsx", ".ts", ".tsx", ".json")
SITE_ALIAS = "@site/"


def imported_file(spec: str, page: Path, within: Path, site: Path | None, max_bytes: int) -> Path | None:
    """The file ``spec`` names from ``page``: ``@site/…`` under ``site`` (None when only a docs
    folder is read), ``./`` and ``../`` from the page's folder. None when it is a package or an
    alias Lectern does not know, missing, unreadable, over ``max_bytes``, or outside ``within``."""
    if spec.startswith(SITE_ALIAS):
        if site is None:
            return None
        base = site / spec[len(SITE_ALIAS):]
    elif spec.startswith(("./", "../")):
        base = page.parent / spec
    else:
        return None
    try:
        named = resolved_module(base, WEBPACK_EXTENSIONS)
        found = named.resolve(strict=True) if named is not None else None
        small = found is not None and found.stat().st_size <= max_bytes
    except (OSError, RuntimeError):  # unreadable, or a symlink loop
        return None
    return found if found is not None and small and found.is_relative_to(within.resolve()) else None
