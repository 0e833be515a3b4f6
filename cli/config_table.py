"""Rewrites the configuration table in docs/configuration.md from the settings registry
(`lectern config-table`), so the documented variables are the ones the code reads."""

from __future__ import annotations

import re
from pathlib import Path

import cli.supervisor  # noqa: F401  - importing the settings modules fills the registry
import gateway.settings  # noqa: F401
import services.chat.settings
import services.ingest.settings
import services.retrieval.settings
import services.sessions.settings  # noqa: F401
from runtime.env import REGISTRY

TABLE_FILE = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
"""Where the table lives (checked by tests/test_repository.py)."""
HEADER = "| Variable | Default | Meaning |\n| --- | --- | --- |\n"
_TABLE = re.compile(r"\| Variable \| Default \| Meaning \|\n\| --- \| --- \| --- \|\n(?:\|.*\|\n)*")


def render() -> str:
    rows = []
    for name in sorted(REGISTRY):
        var = REGISTRY[name]
        default = var.default_doc or str(var.default)
        rows.append(f"| `{name}` | `{default}` | {var.doc} |")
    return HEADER + "\n".join(rows) + "\n"


def rewrite(path: Path = TABLE_FILE) -> bool:
    """Replaces the table in ``path`` in place, keeping the prose around it; True when the file
    changed. A file without a table is refused rather than appended to."""
    text = path.read_text()
    if not _TABLE.search(text):
        raise ValueError(f"{path.resolve()} has no configuration table to replace")
    new = _TABLE.sub(lambda _: render(), text, count=1)
    if new != text:
        path.write_text(new)
    return new != text
