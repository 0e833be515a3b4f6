"""Which paths and contents a pushed file may have; the client checks them before it sends,
ingest again as they arrive."""

from __future__ import annotations

import codecs
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from runtime.text import unstorable
from services.ingest.push.limits import MAX_PATH_CHARS

# What ingest reads of a site: pages, _category_ files, the config, versions.json, manifests, and
# the usual kinds of file a page shows as code (raw_code); a file of another kind is not sent, and
# its page is read without it.
ALLOWED_SUFFIXES = (".md", ".mdx", ".json", ".yml", ".yaml", ".js", ".mjs", ".cjs", ".ts", ".mts", ".cts",
                    ".jsx", ".tsx", ".txt", ".css", ".scss", ".html", ".sh", ".py", ".sql", ".toml", ".xml",
                    ".graphql", ".java", ".kt", ".swift", ".go", ".rs", ".rb", ".php", ".c", ".h", ".cpp", ".cs",
                    ".diff")
PAGE_SUFFIXES = (".md", ".mdx")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def path_problem(path: str) -> str | None:
    """Why ``path`` cannot name a file of a pushed site, or None: it must be relative,
    "/"-separated, inside the site (no ``..``), printable, and of a type ingest reads."""
    if not path:
        return "is empty"
    if len(path) > MAX_PATH_CHARS:
        return f"is longer than {MAX_PATH_CHARS} characters"
    if "\x00" in path:
        return "holds a NUL character"
    if _CONTROL.search(path) or unstorable(path):
        return "holds control characters or unpaired surrogates"
    if "\\" in path:
        return "holds a backslash (paths are /-separated)"
    if path.startswith("/") or re.match(r"[A-Za-z]:", path):
        return "is absolute (paths are relative to the site root)"
    if any(part in ("", ".", "..") for part in path.split("/")):
        return "has an empty, '.' or '..' segment (paths must stay inside the site)"
    if not path.lower().endswith(ALLOWED_SUFFIXES):
        return f"is not a file ingest reads (allowed: {', '.join(ALLOWED_SUFFIXES)})"
    return None


def digest_problem(sha256: str) -> str | None:
    return None if _SHA256.fullmatch(sha256) else "must be 64 lowercase hex digits (SHA-256)"


@dataclass
class ContentCheck:
    """A file's SHA-256 and whether it is text (UTF-8, no NUL), fed as its bytes arrive."""

    path: str
    _hash: Any = field(default_factory=hashlib.sha256)
    _decoder: codecs.IncrementalDecoder = field(default_factory=lambda: codecs.getincrementaldecoder("utf-8")())
    problem: str | None = None

    def update(self, data: bytes) -> None:
        self._hash.update(data)
        if self.problem is None:
            if b"\x00" in data:
                self.problem = "is binary (holds NUL bytes), not text"
            else:
                try:
                    self._decoder.decode(data)
                except UnicodeDecodeError:
                    self.problem = "is not UTF-8 text"

    def finish(self) -> tuple[str, str | None]:
        """(hex digest, why the content is refused or None)."""
        if self.problem is None:
            try:
                self._decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                self.problem = "is not UTF-8 text (it ends inside a character)"
        return self._hash.hexdigest(), self.problem


def content_problem(path: str, data: bytes) -> str | None:
    check = ContentCheck(path)
    check.update(data)
    return check.finish()[1]
