"""Personal data and secrets are redacted before a message is stored (LECTERN_REDACT=true).

Readers paste things they should not: e-mail addresses, phone numbers, API keys. None of it
helps answer a documentation question, and all of it would outlive the conversation in
backups, so it is replaced by a marker naming what was there.
"""

from __future__ import annotations

import functools
import re

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("email", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")),
    # Well-known key shapes first, then anything long and random-looking.
    ("secret", re.compile(r"\b(?:sk|pk|rk)-(?:proj-|live-|test-)?[A-Za-z0-9_-]{16,}\b")),
    ("secret", re.compile(r"\bAIza[0-9A-Za-z_-]{30,}\b")),
    ("secret", re.compile(r"\b(?:ghp|gho|ghs|ghu|github_pat|glpat|xox[abpr])[-_][A-Za-z0-9_-]{16,}\b")),
    ("secret", re.compile(r"\bAKIA[0-9A-Z]{16}\b")),
    ("secret", re.compile(r"(?i)\b(bearer|token|api[_-]?key|secret|password)(\s*[:=]\s*|\s+)[^\s\"'\[]{8,}")),
    ("secret", re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\b")),  # JWT
    ("secret", re.compile(r"\b(?=[A-Za-z0-9+/_-]*\d)(?=[A-Za-z0-9+/_-]*[A-Za-z])[A-Za-z0-9+/_-]{32,}={0,2}")),
    ("phone", re.compile(r"(?<![\w.])\+?\d[\d\s()-]{7,}\d(?!\w|\.\d)")),
)


def _replace(kind: str, match: re.Match[str]) -> str:
    if kind == "secret" and match.lastindex and match.lastindex >= 2:
        return f"{match.group(1)}{match.group(2)}[redacted {kind}]"  # keep "api_key=" so the text still reads
    if kind == "phone" and sum(ch.isdigit() for ch in match.group(0)) < 9:
        return match.group(0)  # too short for a phone number: a version, a date, a port
    return f"[redacted {kind}]"


def redact(text: str) -> str:
    for kind, pattern in _PATTERNS:
        text = pattern.sub(functools.partial(_replace, kind), text)
    return text
