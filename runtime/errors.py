"""Domain errors: what went wrong in words the domain understands.

Domain code raises these and knows nothing of gRPC or HTTP; the runtime maps them to gRPC
status codes in one place (runtime.status) and the gateway maps those to HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request."""

    field: str
    description: str


class LecternError(Exception):
    """Base of every error a caller is meant to see."""

    code = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(LecternError):
    """The request is malformed; ``violations`` says which fields and why."""

    code = "INVALID_ARGUMENT"

    def __init__(self, message: str, violations: list[FieldViolation] | None = None) -> None:
        super().__init__(message)
        self.violations = violations or []

    @classmethod
    def of(cls, field: str, description: str) -> InvalidArgument:
        return cls(f"{field}: {description}", [FieldViolation(field, description)])


class NotFound(LecternError):
    code = "NOT_FOUND"


class FailedPrecondition(LecternError):
    code = "FAILED_PRECONDITION"


class Aborted(LecternError):
    code = "ABORTED"


class PermissionDenied(LecternError):
    code = "PERMISSION_DENIED"


class Unauthenticated(LecternError):
    code = "UNAUTHENTICATED"


class Unavailable(LecternError):
    code = "UNAVAILABLE"


class DeadlineExceeded(LecternError):
    code = "DEADLINE_EXCEEDED"


class ResourceExhausted(LecternError):
    code = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, retry_after_seconds: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class Internal(LecternError):
    code = "INTERNAL"


BY_CODE: dict[str, type[LecternError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument, NotFound, FailedPrecondition, Aborted, PermissionDenied, Unauthenticated,
        Unavailable, DeadlineExceeded, ResourceExhausted, Internal,
    )
}


class Violations:
    """Collects field violations, then raises them together."""

    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.items.append(FieldViolation(field, description))

    def raise_if_any(self) -> None:
        if self.items:
            summary = "; ".join(f"{v.field}: {v.description}" for v in self.items)
            raise InvalidArgument(summary, list(self.items))
