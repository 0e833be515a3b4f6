"""Text every layer can store: the one check for characters that Postgres text, UTF-8 and
protobuf strings cannot hold.

NUL (U+0000) is refused by Postgres text columns, and lone surrogates (U+D800–U+DFFF, which
JSON's ``\\ud800`` escapes can produce) cannot be encoded as UTF-8, so protobuf refuses to
serialise them. Both are refused where input enters (gateway and servicers) with a field
violation, rather than stripped: a reader's text is never silently changed.
"""

from __future__ import annotations

import re

from google.protobuf.message import Message

from runtime.errors import Violations

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

UNSTORABLE_DESCRIPTION = "must not contain NUL (U+0000) or unpaired surrogate characters"


def unstorable(value: str) -> bool:
    """True when ``value`` holds a character that cannot be stored or sent."""
    return _UNSTORABLE.search(value) is not None


def check_storable(violations: Violations, field: str, *values: str) -> None:
    """Adds a violation for ``field`` when any of ``values`` cannot be stored."""
    if any(unstorable(v) for v in values):
        violations.add(field, UNSTORABLE_DESCRIPTION)


def check_message(violations: Violations, message: Message, prefix: str = "") -> None:
    """Adds a violation for every string in ``message`` that cannot be stored, nested and
    repeated fields included, named by path (``sources[0].heading_path[1]``): a servicer's one
    check that covers every text field of its request, present and future."""
    for fd, value in message.ListFields():
        name = prefix + fd.name
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            for key, item in value.items():
                _check_value(violations, f"{name}[{key!r}]", item, key)
        elif fd.is_repeated:
            for i, item in enumerate(value):
                _check_value(violations, f"{name}[{i}]", item)
        else:
            _check_value(violations, name, value)


def _check_value(violations: Violations, name: str, value: object, key: object = "") -> None:
    if isinstance(value, Message):
        check_message(violations, value, name + ".")
    elif (isinstance(value, str) and unstorable(value)) or (isinstance(key, str) and unstorable(key)):
        violations.add(name, UNSTORABLE_DESCRIPTION)
