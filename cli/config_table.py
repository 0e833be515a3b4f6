"""Rewrites the README's configuration table from the settings registry (`lectern config-table`)."""

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

HEADER = "| Variable | Default | Meaning |\n| --- | --- | --- |\n"


def render() -> str:
    rows = []
    for name in sorted(REGISTRY):
        var = REGISTRY[name]
        default = var.default_doc or str(var.default)
        rows.append(f"| `{name}` | `{default}` | {var.doc} |")
    return HEADER + "\n".join(rows) + "\n"


def rewrite(readme: Path) -> bool:
    """Replaces the table in place; True when the file changed."""
    text = readme.read_text()
    new = re.sub(r"\| Variable \| Default \| Meaning \|\n\| --- \| --- \| --- \|\n(?:\|.*\|\n)*", render(), text,
                 count=1)
    if new != text:
        readme.write_text(new)
    return new != text
