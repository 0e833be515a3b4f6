"""The versions of a package that a site's lock file pins, where the build's output depends on
the exact release (npm2yarn's tabs show what its npm-to-yarn converts, and 1.0.x converts less
than 1.3.0, though both satisfy the plugin's ^1.0.1).

Lock files are read a line at a time, as their package managers write them: npm's
``package-lock.json`` (``"node_modules/<name>": {`` or, in lockfile version 1, ``"<name>": {``,
then its ``"version"``), Yarn's ``yarn.lock`` (``<name>@<range>:`` then ``version``) and pnpm's
``pnpm-lock.yaml`` (``/<name>@<version>:`` or ``/<name>/<version>:``)."""

from __future__ import annotations

import re
from pathlib import Path

LOCK_FILES = ("package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml")
MAX_LOCK_BYTES = 64 * 1024 * 1024  # a large monorepo's lock is a few MB; past this it is not read
_VERSION_LINE = re.compile(r'^\s*"?version"?:?\s*"?(\d+)\.(\d+)\.\d+')
_LOOKAHEAD = 4  # an entry's version is among the first lines under its header


def locked_versions(root: Path, package: str) -> list[tuple[int, int]]:
    """(major, minor) of every copy of ``package`` the lock files at the site root pin, in file
    order; empty when there is no lock file or it names no copy."""
    name = re.escape(package)
    header = re.compile(rf'^\s*"(?:[^"]*node_modules/)?{name}":\s*\{{\s*$'  # npm
                        rf'|^"?{name}@[^\n]*:\s*$'  # yarn: the entry's ranges, led by the name (no nested repeats)
                        rf"|^\s*'?/?{name}[@/](\d+)\.(\d+)\.\d+")  # pnpm: the version is in the key
    found: list[tuple[int, int]] = []
    folder = root.resolve()
    for file_name in LOCK_FILES:
        path = root / file_name
        try:
            # A lock file linked from outside the folder is not read: ingest reads only its roots.
            if not path.is_file() or not path.resolve().is_relative_to(folder) \
                    or path.stat().st_size > MAX_LOCK_BYTES:
                continue
            with path.open(encoding="utf-8", errors="replace") as lines:
                wanted = 0  # lines left in which the entry's version may appear
                for line in lines:
                    if wanted and (version := _VERSION_LINE.match(line)):
                        found.append((int(version.group(1)), int(version.group(2))))
                        wanted = 0
                    elif entry := header.match(line):
                        if entry.group(1):
                            found.append((int(entry.group(1)), int(entry.group(2))))
                        else:
                            wanted = _LOOKAHEAD
                    elif wanted:
                        wanted -= 1
        except OSError:
            continue
    return found
