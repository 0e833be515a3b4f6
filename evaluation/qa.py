"""QA sets: one JSON object per line, as in redux-docs-qa.jsonl."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Gold:
    file_path: str
    heading: str


@dataclass(frozen=True)
class QAItem:
    id: str
    question: str
    type: str
    gold: tuple[Gold, ...]
    must_contain: tuple[str, ...] = ()
    """Phrases an answer states when it gives the key fact (all of them, case-insensitive)."""

    @property
    def out_of_scope(self) -> bool:
        return not self.gold


def load_qa(path: Path) -> list[QAItem]:
    items = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            gold = tuple(Gold(g["file_path"], g["heading"]) for g in row.get("gold") or [])
            facts = tuple(str(f) for f in row.get("must_contain") or [])
            items.append(QAItem(str(row["id"]), str(row["question"]), str(row.get("type", "")), gold, facts))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a QA item ({exc})") from None
    return items
