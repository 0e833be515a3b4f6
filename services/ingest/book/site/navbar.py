"""The navbar items that lead into the docs: what a reader sees the book's parts called, and in
which order.

Read from ``themeConfig.navbar.items`` as theme-classic renders them
(``docusaurus-theme-classic/src/theme/NavbarItem/``): an item without a type is a ``dropdown``
when it has ``items`` (whose items are read in turn), else a link; a ``docSidebar`` item opens
a sidebar (``sidebarId``), a ``doc`` item a doc (``docId``), both of the docs plugin
``docsPluginId`` (default "default"); a link's ``to`` is a site path that gains the base URL
unless it starts with it (``addBaseUrl``, ``docusaurus/src/client/exports/useBaseUrl.ts``).
Without a ``label`` theme-classic shows the doc's id or the sidebar's first doc: such an item
places its part but leaves it named after its key. Items only running the config would give are
skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.ingest.book.site.literal import JsArray, JsObject, JsValue

DEFAULT_PLUGIN_ID = "default"
_MAX_DEPTH = 4  # dropdowns hold links, not dropdowns; a little slack for themes that nest them
MAX_LINKS = 200  # a navbar shows a handful; a config that lists more is read no further
_PROTOCOL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)


@dataclass(frozen=True)
class NavbarLink:
    """A labelled navbar item that opens a sidebar, a doc, or a path of the site."""

    label: str  # "" for a sidebar or doc item without one
    sidebar_id: str = ""
    doc_id: str = ""
    to: str = ""  # a link's `to`, as written: `site_path` resolves it against an edition's base URL
    plugin_id: str = DEFAULT_PLUGIN_ID  # the docs plugin of a sidebar or doc item


def read_navbar(theme_config: JsValue) -> tuple[NavbarLink, ...]:
    """The navbar's links into the site, in the order shown (left, then right)."""
    navbar = theme_config.get("navbar") if isinstance(theme_config, JsObject) else None
    items = navbar.get("items") if isinstance(navbar, JsObject) else None
    found = _links(items, 0)[:MAX_LINKS]
    # theme-classic puts `position: 'right'` items after the left ones, each side in written order.
    return tuple(link for link, right in found if not right) + tuple(link for link, right in found if right)


def _links(items: JsValue, depth: int) -> list[tuple[NavbarLink, bool]]:
    out: list[tuple[NavbarLink, bool]] = []
    if not isinstance(items, JsArray) or depth > _MAX_DEPTH:
        return out
    for item in items.items:
        if len(out) >= MAX_LINKS:
            break
        if not isinstance(item, JsObject):
            continue
        right = _string(item.get("position")) == "right"
        kind = _string(item.get("type")) or "default"
        if kind in ("default", "dropdown") and isinstance(item.get("items"), JsArray):
            out += [(link, right) for link, _ in _links(item.get("items"), depth + 1)]
            continue
        link = _link(item, kind)
        if link is not None:
            out.append((link, right))
    return out


def _link(item: JsObject, kind: str) -> NavbarLink | None:
    label = _string(item.get("label")).strip()
    plugin = _string(item.get("docsPluginId")) or DEFAULT_PLUGIN_ID
    if kind == "docSidebar" and (sidebar := _string(item.get("sidebarId"))):
        return NavbarLink(label, sidebar_id=sidebar, plugin_id=plugin)
    if kind == "doc" and (doc := _string(item.get("docId"))):
        return NavbarLink(label, doc_id=doc, plugin_id=plugin)
    to = _string(item.get("to"))
    if kind == "default" and label and to and not to.startswith("#") and not _PROTOCOL.match(to):
        return NavbarLink(label, to=to)
    return None


def site_path(to: str, base_url: str) -> str:
    """Where a `to` link leads: ``addBaseUrl``'s path, without query, anchor or trailing slash."""
    path = re.split(r"[?#]", to, maxsplit=1)[0]
    if path != base_url.rstrip("/") and not path.startswith(base_url):
        path = base_url + path.lstrip("/")
    return path.rstrip("/") or "/"


def _string(value: JsValue) -> str:
    return value if isinstance(value, str) else ""
