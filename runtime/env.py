"""Typed environment variables, declared once and listed in one registry.

Each variable is declared where it is used, with its default and meaning. The registry
lets the configuration table in docs/configuration.md and docker-compose.yml be checked against
the code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")


class SettingsError(ValueError):
    """A variable holds a value the service cannot use; the message names the variable."""


@dataclass(frozen=True)
class EnvVar(Generic[T]):
    """One environment variable with its parser, default and documentation."""

    name: str
    """Exact variable name, such as ``LECTERN_HOME``."""
    default: T
    """Value used when the variable is unset or empty."""
    parse: Callable[[str], T]
    """Turns the raw string into a value; raises ValueError with a reason when it cannot."""
    doc: str
    """One sentence for the configuration table (docs/configuration.md)."""
    default_doc: str = ""
    """How the default is shown in the configuration table when ``str(default)`` would mislead."""

    def read(self, environ: Mapping[str, str]) -> T:
        raw = environ.get(self.name, "").strip()
        if not raw:
            return self.default
        try:
            return self.parse(raw)
        except ValueError as exc:
            raise SettingsError(f"{self.name}={raw!r} is invalid: {exc}") from None


REGISTRY: dict[str, EnvVar[object]] = {}


def declare(name: str, default: T, parse: Callable[[str], T], doc: str, default_doc: str = "") -> EnvVar[T]:
    """Declares a variable and records it in the registry (declaring twice must agree)."""
    var = EnvVar(name, default, parse, doc, default_doc)
    known = REGISTRY.get(name)
    if known is not None and (known.default != default or known.doc != doc):
        raise RuntimeError(f"environment variable {name} declared twice with different meanings")
    REGISTRY[name] = var  # type: ignore[assignment]
    return var


def integer(low: int, high: int) -> Callable[[str], int]:
    """Parser for a whole number within [low, high]."""

    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError("must be a whole number") from None
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


def number(low: float, high: float) -> Callable[[str], float]:
    """Parser for a decimal number within [low, high]."""

    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ValueError("must be a number") from None
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


def boolean(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be true or false")


def text(raw: str) -> str:
    return raw


def choice(*options: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return raw

    return parse


def path(raw: str) -> Path:
    return Path(raw).expanduser()


def address(raw: str) -> str:
    """A host:port target for a gRPC channel."""
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("must be host:port")
    return raw


def paths(raw: str) -> tuple[Path, ...]:
    """A list of paths separated by the OS path separator or commas."""
    parts = [p for chunk in raw.split(",") for p in chunk.split(":")]
    return tuple(Path(p).expanduser() for p in parts if p.strip())


def words(raw: str) -> tuple[str, ...]:
    """A comma-separated list."""
    return tuple(part.strip() for part in raw.split(",") if part.strip())
