"""Personal data and secrets are redacted before a message is stored (LECTERN_REDACT=true).

Readers paste things they should not: e-mail addresses, phone numbers, API keys. None of it
helps answer a documentation question, and all of it would outlive the conversation in
backups, so it is replaced by a marker naming what was there.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

_LONG_RUN = re.compile(r"[A-Za-z0-9+/_-]{32,}")
_NO_DIGITS = str.maketrans("", "", "0123456789")
_KEY_WORDS = ("bearer", "token", "api", "secret", "password")


def _digits(text: str) -> int:
    return len(text) - len(text.translate(_NO_DIGITS))


# Each pattern comes with a cheap test that any match needs (a character, a prefix, a run
# length), so most messages skip most patterns: scanning all of them was a large share of an
# AppendTurn.
_PATTERNS: tuple[tuple[str, re.Pattern[str], Callable[[str, str], bool]], ...] = (
    ("email", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"), lambda t, low: "@" in t),
    # Well-known key shapes first, then anything long and random-looking.
    ("secret", re.compile(r"\b(?:sk|pk|rk)-(?:proj-|live-|test-)?[A-Za-z0-9_-]{16,}\b"), lambda t, low: "k-" in t),
    ("secret", re.compile(r"\bAIza[0-9A-Za-z_-]{30,}\b"), lambda t, low: "AIza" in t),
    ("secret", re.compile(r"\b(?:ghp|gho|ghs|ghu|github_pat|glpat|xox[abpr])[-_][A-Za-z0-9_-]{16,}\b"),
     lambda t, low: "gh" in t or "glpat" in t or "xox" in t),
    ("secret", re.compile(r"\bAKIA[0-9A-Z]{16}\b"), lambda t, low: "AKIA" in t),
    ("secret", re.compile(r"(?i)\b(bearer|token|api[_-]?key|secret|password)(\s*[:=]\s*|\s+)[^\s\"'\[]{8,}"),
     lambda t, low: any(word in low for word in _KEY_WORDS)),
    ("secret", re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\b"),  # JWT
     lambda t, low: "eyJ" in t),
    ("secret", re.compile(r"\b(?=[A-Za-z0-9+/_-]*\d)(?=[A-Za-z0-9+/_-]*[A-Za-z])[A-Za-z0-9+/_-]{32,}={0,2}"),
     lambda t, low: _LONG_RUN.search(t) is not None),
    ("phone", re.compile(r"(?<![\w.])\+?\d[\d\s()-]{7,}\d(?!\w|\.\d)"), lambda t, low: _digits(t) >= 9),
)


def _replace(kind: str, match: re.Match[str]) -> str:
    if kind == "secret" and match.lastindex and match.lastindex >= 2:
        return f"{match.group(1)}{match.group(2)}[redacted {kind}]"  # keep "api_key=" so the text still reads
    if kind == "phone" and sum(ch.isdigit() for ch in match.group(0)) < 9:
        return match.group(0)  # too short for a phone number: a version, a date, a port
    return f"[redacted {kind}]"


def redact(text: str) -> str:
    low = text.lower()  # the tests are necessary conditions, so the original text serves them all
    for kind, pattern, may_match in _PATTERNS:
        if may_match(text, low):
            text = pattern.sub(functools.partial(_replace, kind), text)
    return text
