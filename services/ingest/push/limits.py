"""What one push may hold, declared once: ingest enforces it, the gateway bounds request bodies
from it, and the plan reports it to the client."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from runtime import env

MAX_FILES = env.declare(
    "LECTERN_PUSH_MAX_FILES", 20_000, env.integer(1, 1_000_000),
    "Most files in a pushed site (`lectern push`); more gets 413.",
)
MAX_FILE_BYTES = env.declare(
    "LECTERN_PUSH_MAX_FILE_BYTES", 5 * 1024 * 1024, env.integer(1024, 1024 * 1024 * 1024),
    "Largest file of a pushed site; larger gets 413.",
)
MAX_TOTAL_BYTES = env.declare(
    "LECTERN_PUSH_MAX_TOTAL_BYTES", 512 * 1024 * 1024, env.integer(1024, 64 * 1024 * 1024 * 1024),
    "Largest pushed site, all files together; larger gets 413.",
)
LEASE_SECONDS = env.declare(
    "LECTERN_PUSH_LEASE_SECONDS", 120.0, env.number(1, 86_400),
    "How long a push holds its book without activity (a killed client's push lapses after this); a second "
    "push meanwhile gets 409 naming the holder.",
)
KEEP_SECONDS = env.declare(
    "LECTERN_PUSH_KEEP_SECONDS", 86_400.0, env.number(1, 30 * 86_400),
    "How long files of an unfinished push are kept under $LECTERN_HOME/pushes for a re-run to reuse.",
)

MAX_PATH_CHARS = 1024  # a pushed file's path; Linux allows 4096 bytes, real sites use < 200
# Per file of a plan body as JSON: path, digest, size, quotes and separators (paths escaped at worst x6).
_PLAN_ENTRY_BYTES = MAX_PATH_CHARS * 6 + 128
# Per file of a tar archive: a header block, padding to a block, a pax header for a long path.
TAR_ENTRY_OVERHEAD = 512 + 511 + 512 + 2 * MAX_PATH_CHARS + 512


@dataclass(frozen=True)
class PushLimits:
    max_files: int = MAX_FILES.default
    max_file_bytes: int = MAX_FILE_BYTES.default
    max_total_bytes: int = MAX_TOTAL_BYTES.default
    lease_seconds: float = LEASE_SECONDS.default
    """A push's hold on its book without activity."""
    keep_seconds: float = KEEP_SECONDS.default
    """How long an unfinished push's files wait for a re-run."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PushLimits:
        environ = os.environ if environ is None else environ
        return cls(MAX_FILES.read(environ), MAX_FILE_BYTES.read(environ), MAX_TOTAL_BYTES.read(environ),
                   LEASE_SECONDS.read(environ), KEEP_SECONDS.read(environ))

    def plan_body_bytes(self) -> int:
        """Largest plan request worth reading (every file at the longest path)."""
        return self.max_files * _PLAN_ENTRY_BYTES + 64 * 1024

    def archive_bytes(self, files: int, total: int) -> int:
        """Largest tar archive of ``files`` files of ``total`` bytes, with the end blocks."""
        return total + files * TAR_ENTRY_OVERHEAD + 10 * 1024

    def upload_body_bytes(self) -> int:
        """Largest upload worth reading: the largest archive a push may need."""
        return self.archive_bytes(self.max_files, self.max_total_bytes)


DEFAULT_PUSH_LIMITS = PushLimits()
