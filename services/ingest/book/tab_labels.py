"""Tab labels a page takes from a module it imports.

React Native's site keeps its tab sets in one module and names them on each page::

    import constants from '@site/core/TabsConstants';

    <Tabs groupId="language" values={constants.androidLanguages}>
      <TabItem value="kotlin">…

The built page's buttons read "Java" and "Kotlin", the labels the module gives those values
(theme-common's useTabValues takes the ``values`` prop before the items' own props). The module
is read as the site config is, without running it (``site.literal``): a member that is an array of
``{value, label}`` literals gives its labels; anything else gives none, and the buttons then show
the values, as before. Only modules inside the site (``@site/…``, or a path relative to the page
that stays inside it) are read, each at most MAX_MODULE_BYTES.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from services.ingest.book.site.imports import imported_file
from services.ingest.book.site.literal import (
    TYPESCRIPT_SUFFIXES,
    JsArray,
    JsObject,
    JsValue,
    SourceError,
    read_module,
)

MAX_MODULE_BYTES = 1024 * 1024
_VALUES_MEMBER = re.compile(r"\bvalues=\{\s*([A-Za-z_$][\w$]*)\.([A-Za-z_$][\w$]*)\s*\}")


def imported_labels(text: str, imports: Mapping[str, str], page: Path,
                    site_dir: str) -> tuple[dict[str, str], list[Path]]:
    """value -> label from the ``values={module.member}`` props of ``text``, whose default
    ``imports`` (name -> module) say where each module is; and the module files read (a push
    sends them beside the page). ``site_dir`` is the site root ("" when only a docs folder is
    read: then no module is read)."""
    labels: dict[str, str] = {}
    read: list[Path] = []
    if not site_dir:
        return labels, read
    site = Path(site_dir)
    for name, member in dict.fromkeys(_VALUES_MEMBER.findall(text)):
        spec = imports.get(name)
        path = imported_file(spec, page, site, site, MAX_MODULE_BYTES) if spec else None
        if path is None:
            continue
        exported = _exported(str(path), *_stamp(path))
        if path not in read and exported is not None:
            read.append(path)
        values = exported.entries.get(member) if isinstance(exported, JsObject) else None
        for item in values.items if isinstance(values, JsArray) else ():
            if isinstance(item, JsObject):
                value, label = item.entries.get("value"), item.entries.get("label")
                if isinstance(value, str) and isinstance(label, str) and value and label:
                    labels.setdefault(value, label)
    return labels, read


def _stamp(path: Path) -> tuple[int, int]:
    status = path.stat()
    return status.st_mtime_ns, status.st_size


@lru_cache(maxsize=64)
def _exported(path: str, mtime_ns: int, size: int) -> JsValue | None:
    """A module's default export, read once per version of the file (an ingest reads the same
    constants for every page)."""
    try:
        source = Path(path).read_bytes()[:MAX_MODULE_BYTES]
        return read_module(source, path.endswith(TYPESCRIPT_SUFFIXES)).exported
    except (OSError, SourceError, ValueError):  # unreadable, or not JavaScript: no labels
        return None
