"""The one place where domain errors become gRPC statuses and back.

Servers: ``handle_exception`` (called by ``runtime.server.Guard`` around every RPC) turns a raised
LecternError into a status with rich details
(google.rpc.BadRequest for INVALID_ARGUMENT, RetryInfo for RESOURCE_EXHAUSTED); anything
else becomes INTERNAL with a generic message, and the traceback goes to the log only.
Clients: ``from_rpc_error`` turns a failed call back into the domain error it stood for.
Messages name a dependency ("sessions is unreachable") and never carry an address: gRPC's
transport errors name the peer's ``ipv4:host:port``, so every message is scrubbed on its way
out of a service and on its way in.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from runtime import errors

log = logging.getLogger("lectern.status")

_TO_GRPC = {name: getattr(grpc.StatusCode, name) for name in errors.BY_CODE}
_DETAILS_KEY = "grpc-status-details-bin"

_ADDRESS = re.compile(
    r"\(\s*'[^']*'\s*,\s*\d+(?:\s*,\s*\d+)*\s*\)"  # Python's socket addresses, ('10.0.0.7', 5432)
    r"|\b(?:ipv4|ipv6|unix|unix-abstract|vsock|dns):[^\s,;)]+"  # gRPC's peer names
    r"|\b[a-z][a-z0-9+.-]*://[^\s,;)'\"]+"  # URLs
    r"|\[[0-9a-f:.]+\](?::\d+)?"  # [IPv6]:port
    r"|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"  # IPv4[:port]
    r"|\b(?:localhost|[a-z0-9-]+(?:\.[a-z0-9-]+)+):\d{2,5}\b",  # host:port
    re.IGNORECASE,
)


def scrub(message: str) -> str:
    """``message`` with network addresses replaced: they help an attacker, not a reader."""
    return _ADDRESS.sub("(address)", message)


# Calls that failed in transport rather than in the peer's code (whose statuses always carry
# details, see ``abort``), and what they mean for the caller.
_TRANSPORT = {
    grpc.StatusCode.UNAVAILABLE: "{peer} is unreachable; try again shortly",
    grpc.StatusCode.DEADLINE_EXCEEDED: "{peer} did not answer in time",
}


def name_peer(exc: grpc.aio.AioRpcError, peer: str) -> grpc.aio.AioRpcError:
    """``exc`` reworded to name ``peer`` when the call never got an answer from the peer's own
    code (connection refused, lost, GOAWAY, deadline); otherwise ``exc`` itself."""
    template = _TRANSPORT.get(exc.code())
    trailing = exc.trailing_metadata() or ()
    if template is None or any(key == _DETAILS_KEY for key, _ in trailing):
        return exc
    log.info("call failed in transport", extra={"peer": peer, "code": exc.code().name, "error": exc.details()})
    return grpc.aio.AioRpcError(exc.code(), exc.initial_metadata(), exc.trailing_metadata(),
                                template.format(peer=peer), None)


def to_status(error: errors.LecternError) -> status_pb2.Status:
    """Builds the rich google.rpc.Status for a domain error."""
    status = status_pb2.Status(code=getattr(code_pb2, error.code), message=scrub(error.message))
    if isinstance(error, errors.InvalidArgument) and error.violations:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                for v in error.violations
            ]
        )
        status.details.add().Pack(bad)
    if isinstance(error, errors.ResourceExhausted):
        seconds = max(0.0, error.retry_after_seconds)
        info = error_details_pb2.RetryInfo(
            retry_delay=duration_pb2.Duration(seconds=int(seconds), nanos=int((seconds % 1) * 1e9))
        )
        status.details.add().Pack(info)
    return status


async def abort(context: grpc.aio.ServicerContext[Any, Any], error: errors.LecternError) -> NoReturn:
    status = to_status(error)
    await context.abort(
        _TO_GRPC.get(error.code, grpc.StatusCode.INTERNAL),
        status.message,
        trailing_metadata=((_DETAILS_KEY, status.SerializeToString()),),
    )
    raise AssertionError("ServicerContext.abort always raises")  # grpc is untyped: says so to mypy


@contextmanager
def domain_errors() -> Iterator[None]:
    """Client side: a failed call inside this block is re-raised as its domain error."""
    try:
        yield
    except grpc.aio.AioRpcError as exc:
        raise from_rpc_error(exc) from None


def from_rpc_error(exc: grpc.aio.AioRpcError | grpc.RpcError) -> errors.LecternError:
    """Turns a failed call into the matching domain error, field violations included."""
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    message = scrub((exc.details() if hasattr(exc, "details") else "") or str(code))
    name = code.name if isinstance(code, grpc.StatusCode) else "INTERNAL"
    if name == "CANCELLED":
        name = "UNAVAILABLE"
    cls = errors.BY_CODE.get(name, errors.Internal)
    status = None
    try:
        status = rpc_status.from_call(exc)
    except Exception:  # malformed details must not hide the original error
        status = None
    violations: list[errors.FieldViolation] = []
    retry_after = 1.0
    if status is not None:
        for detail in status.details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations += [errors.FieldViolation(v.field, v.description) for v in bad.field_violations]
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                info = error_details_pb2.RetryInfo()
                detail.Unpack(info)
                retry_after = info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    if cls is errors.InvalidArgument:
        return errors.InvalidArgument(message, violations)
    if cls is errors.ResourceExhausted:
        return errors.ResourceExhausted(message, retry_after)
    return cls(message)


@dataclass(frozen=True)
class Unreachable:
    """Exceptions that mean "a datastore or peer cannot be reached", each with the dependency it
    names: the call ends UNAVAILABLE (retryable), never INTERNAL. Each service declares its own
    (``ServiceSpec.unreachable``), so how an error maps never depends on what a process imported.
    """

    kinds: tuple[tuple[type[BaseException], str], ...] = ((OSError, "a dependency"),)
    """Tried in order, the first match wins. ``OSError`` covers refused and reset connections
    and ``TimeoutError``."""

    def plus(self, *types: type[BaseException], dependency: str) -> Unreachable:
        """These kinds too, naming ``dependency``; tried before the kinds already known, which
        are usually more general."""
        return Unreachable(tuple((kind, dependency) for kind in types) + self.kinds)

    def dependency(self, exc: BaseException) -> str | None:
        """The dependency ``exc`` says is unreachable, or None when it says nothing of the kind."""
        for kind, dependency in self.kinds:
            if isinstance(exc, kind):
                return dependency
        return None


NETWORK = Unreachable()
"""What every service maps: a failed connection (the drivers' own errors come on top)."""


async def handle_exception(exc: Exception, context: grpc.aio.ServicerContext[Any, Any], method: str,
                           unreachable: Unreachable) -> NoReturn:
    """Ends a failed call with the status its exception stands for; ``unreachable`` says which
    exceptions mean a dependency is down."""
    if isinstance(exc, grpc.aio.AbortError):
        raise exc  # the handler aborted on purpose; the status is already set
    if isinstance(exc, grpc.aio.AioRpcError):
        exc = from_rpc_error(exc)  # an upstream failure keeps its meaning downstream
    if (dependency := unreachable.dependency(exc)) is not None:
        # A datastore or peer that cannot be reached: retryable, never "internal". The driver's
        # text names hosts and ports, so it goes to the log only.
        log.warning("dependency unreachable", extra={"method": method, "dependency": dependency,
                                                     "error": repr(exc)})
        exc = errors.Unavailable(f"{dependency} is unreachable; try again shortly")
    if isinstance(exc, errors.LecternError):
        log.info("call failed", extra={"method": method, "code": exc.code, "error": exc.message})
        await abort(context, exc)
    log.error("unexpected error", exc_info=exc, extra={"method": method})
    await abort(context, errors.Internal("internal error; see the service log"))
