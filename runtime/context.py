"""Per-request context carried across services: the request id."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

REQUEST_ID_HEADER = "x-request-id"
# Printable ASCII without spaces, bounded: a request id goes into gRPC metadata, logs and
# response headers as is, where anything else is refused (a 500) or could forge log lines.
_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")

request_id: ContextVar[str] = ContextVar("request_id", default="")


def new_request_id() -> str:
    return uuid.uuid4().hex


def accepted_request_id(given: str | None) -> str:
    """``given`` when it is a usable request id, else a new one."""
    return given if given is not None and _REQUEST_ID.fullmatch(given) else new_request_id()
