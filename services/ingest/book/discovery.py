"""Which files of a docs folder are pages, by Docusaurus's own rules.

Pages are the files the docs plugin's ``include`` globs match and its ``exclude`` globs do not
(see globs.py; the defaults take ``.md``/``.mdx`` and leave out partials, files and folders
whose names start with ``_``). Dot-folders are walked only when an include pattern names one
(``**`` never enters them); node_modules is never walked (Docusaurus would glob it, but it is
never content). Symlinks are followed only when they stay inside the root.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from services.ingest.book.globs import PageGlobs


@dataclass(frozen=True)
class SourceFile:
    path: Path  # absolute, resolved
    rel: str  # relative to the docs root, "/"-separated
    module: str  # top docs folder, "" at the root


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
    except (ValueError, OSError):
        return False
    return True


def discover(root: Path, include: Sequence[str] | None = None,
             exclude: Sequence[str] | None = None) -> list[SourceFile]:
    """The pages of ``root``; ``include``/``exclude`` None are Docusaurus's defaults."""
    root = root.resolve()
    globs = PageGlobs(root, include, exclude)
    found: list[SourceFile] = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        here = Path(folder)
        if not _inside(here, root):
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if (globs.walk_dot_dirs or not d.startswith("."))
                         and d != "node_modules" and _inside(here / d, root))
        for name in sorted(files):
            path = here / name
            rel = (here.relative_to(root) / name).as_posix()
            if not globs.matches(rel) or not _inside(path, root):
                continue
            parts = rel.split("/")
            found.append(SourceFile(path.resolve(), rel, parts[0] if len(parts) > 1 else ""))
    return found
