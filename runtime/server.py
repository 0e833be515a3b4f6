"""gRPC server bootstrap shared by every service.

``build_server`` makes a grpc.aio server with the runtime's interceptors and binds it.
A ``ServiceSpec`` says what makes a service, including which exceptions mean its dependencies
are down; ``Guard`` wraps each RPC of its servicer with request ids and that error mapping.
``start_service`` adds the standard health service (NOT_SERVING until the service's own
dependency answers, and again whenever it stops answering) and reflection, starts it, and on
exit shuts it down gracefully. ``run_service`` is a service's whole ``main``: JSON logs,
tracing, and shutdown on SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from runtime import status, telemetry
from runtime.channels import MESSAGE_SIZE_OPTIONS, server_options
from runtime.context import REQUEST_ID_HEADER, accepted_request_id, new_request_id, request_id
from runtime.logs import configure_logging
from runtime.settings import EVENT_LOOP, ServerSettings

log = logging.getLogger("lectern.server")

R = TypeVar("R")
T = TypeVar("T")

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def bounded(step: Awaitable[Any], seconds: float, what: str) -> None:
    """Awaits one shutdown step for at most ``seconds``: a stuck close must not keep the
    process (or a test) from exiting; it is logged instead."""
    try:
        async with asyncio.timeout(seconds):
            await step
    except TimeoutError:
        log.warning("shutdown step timed out", extra={"step": what, "seconds": seconds})


def _request_id(context: Any) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_HEADER:
            return accepted_request_id(str(value))
    return new_request_id()


S = TypeVar("S")
Req = TypeVar("Req")
Resp = TypeVar("Resp")
Ctx = TypeVar("Ctx", bound=grpc.aio.ServicerContext[Any, Any])


class Guard:
    """What every RPC of a service runs inside: its request id (from metadata, or a new one),
    and the mapping of an exception escaping the handler to a status (``runtime.status``), with
    ``unreachable`` saying which exceptions mean a dependency is down.

    A wrapper rather than a server interceptor: grpc.aio sends every call through a Python
    interceptor chain once any interceptor is installed, a cost the sessions service's
    AppendTurn throughput showed.
    """

    def __init__(self, unreachable: status.Unreachable) -> None:
        self.unreachable = unreachable

    def unary(self, method: str, handler: Callable[[Req, Ctx], Awaitable[Resp]]
              ) -> Callable[[Req, Ctx], Coroutine[Any, Any, Resp]]:
        """``handler`` of the RPC ``method`` (``/package.Service/Method``) that replies once;
        it takes a request, or the request stream of a client-streaming RPC."""

        async def guarded(request: Req, context: Ctx) -> Resp:
            request_id.set(_request_id(context))
            try:
                return await handler(request, context)
            except Exception as exc:
                await status.handle_exception(exc, context, method, self.unreachable)

        return guarded

    def stream(self, method: str, handler: Callable[[Req, Ctx], AsyncIterator[Resp]]
               ) -> Callable[[Req, Ctx], AsyncIterator[Resp]]:
        """``handler`` of the server-streaming RPC ``method``."""

        async def guarded(request: Req, context: Ctx) -> AsyncIterator[Resp]:
            request_id.set(_request_id(context))
            try:
                async for reply in handler(request, context):
                    yield reply
            except Exception as exc:
                await status.handle_exception(exc, context, method, self.unreachable)

        return guarded

    def servicer(self, servicer: S, service: ServiceDescriptor) -> S:
        """A copy of ``servicer`` whose every RPC of ``service`` (as the contract lists them) is
        guarded; the copy is what the generated ``add_*Servicer_to_server`` is given. An RPC the
        servicer lacks, or implements with the wrong shape, fails here, at start-up."""
        guarded = copy.copy(servicer)
        for rpc in service.methods:
            handler = getattr(servicer, rpc.name, None)
            method = f"/{service.full_name}/{rpc.name}"
            if rpc.server_streaming:
                if not inspect.isasyncgenfunction(handler):
                    raise TypeError(f"{type(servicer).__name__}.{rpc.name} must be an async generator ({method} "
                                    "streams its replies)")
                setattr(guarded, rpc.name, self.stream(method, handler))
            else:
                if not inspect.iscoroutinefunction(handler):
                    raise TypeError(f"{type(servicer).__name__}.{rpc.name} must be a coroutine function "
                                    f"({method} replies once)")
                setattr(guarded, rpc.name, self.unary(method, handler))
        return guarded


def build_server(settings: ServerSettings) -> tuple[grpc.aio.Server, int]:
    """A grpc.aio server with tracing, error mapping and the shared keepalive policy, bound to
    settings.host:settings.port.

    Port 0 binds a free port; the bound port is returned.
    """
    server = grpc.aio.server(
        interceptors=telemetry.server_interceptors() or None,
        options=[*server_options(settings.keepalive), *MESSAGE_SIZE_OPTIONS, ("grpc.so_reuseport", 0)],
    )
    port = server.add_insecure_port(f"{settings.host}:{settings.port}")
    if port == 0:
        raise OSError(f"cannot bind {settings.host}:{settings.port}")
    return server, port


@dataclass(frozen=True)
class ServiceSpec(Generic[R]):
    """What makes a service: its name, its dependency and how its servicer is added."""

    name: str
    """Full protobuf service name, used by health and reflection."""
    open: Callable[[ServerSettings], AbstractAsyncContextManager[R]]
    """Opens the service's dependency (datastore, model) and closes it on exit."""
    register: Callable[[grpc.aio.Server, R, Guard], None]
    """Adds the servicer(s) to the server, each guarded by the given ``Guard`` (``Guard.servicer``)."""
    probe: Callable[[R], Awaitable[bool | Mapping[str, bool]]]
    """True when the dependency is ready; or, for a service with several, whether each is ready
    by name (published as ``<service>/<dependency>``, see ``dependency_health_name``). Drives
    the health status: SERVING when every dependency is ready."""
    optional: frozenset[str] = frozenset()
    """Named dependencies that are published but do not decide the service's status: the
    service still answers without them, in a degraded way (retrieval without its reranker)."""
    unreachable: status.Unreachable = status.NETWORK
    """Exceptions that mean one of the service's dependencies cannot be reached: its RPCs then
    fail UNAVAILABLE (retryable) rather than INTERNAL. A service on Postgres names
    ``runtime.postgres.UNREACHABLE``."""


def dependency_health_name(service: str, dependency: str) -> str:
    """The name under which the health service reports one dependency of ``service``."""
    return f"{service}/{dependency}"


class HealthServicer(health_aio.HealthServicer):  # type: ignore[misc]
    """The standard health service, plus its ``List`` (a snapshot of every name's status,
    dependencies included), which grpcio's servicer leaves unimplemented."""

    async def List(self, request: health_pb2.HealthListRequest, context: Any) -> health_pb2.HealthListResponse:
        statuses = dict(self._server_status)  # grpcio keeps the statuses here; copied, as set() may run
        return health_pb2.HealthListResponse(
            statuses={name: health_pb2.HealthCheckResponse(status=s) for name, s in statuses.items()})


@dataclass
class RunningService(Generic[R]):
    """A started service, as tests and ``run_service`` see it."""

    server: grpc.aio.Server
    port: int
    health: HealthServicer
    resources: R
    name: str

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


async def _monitor(spec: ServiceSpec[R], running: RunningService[R], interval: float) -> None:
    """Keeps health in step with the dependencies: SERVING when they answer, else NOT_SERVING;
    each named dependency also under its own name."""
    last: dict[str, int] = {}
    known: set[str] = set()  # dependencies named so far, reported down when a probe fails outright
    while True:
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel that lands
            # as the probe finishes, and this loop then outlives the server's shutdown.
            async with asyncio.timeout(max(interval, 1.0) * 2):
                result = await spec.probe(running.resources)
        except Exception as exc:  # a probe that fails means the dependency is not ready
            log.debug("probe failed", extra={"error": repr(exc)})
            result = dict.fromkeys(known, False) if known else False
        if isinstance(result, Mapping):
            known |= set(result)
            states = {dependency_health_name(spec.name, d): SERVING if up else NOT_SERVING
                      for d, up in result.items()}
            ok = all(up for d, up in result.items() if d not in spec.optional)
        else:
            states, ok = {}, bool(result)
        states[""] = states[spec.name] = SERVING if ok else NOT_SERVING
        for name, state in states.items():
            if last.get(name) != state:
                await running.health.set(name, state)
                if name:
                    log.info("health changed", extra={"serving": state == SERVING, "grpc_service": name})
                last[name] = state
        await asyncio.sleep(interval)


@asynccontextmanager
async def start_service(spec: ServiceSpec[R], settings: ServerSettings) -> AsyncIterator[RunningService[R]]:
    """Opens the dependency, starts the server with health and reflection, and on exit
    drains it: health goes NOT_SERVING, new calls are refused, in-flight calls get
    ``settings.grace_seconds`` to finish."""
    async with spec.open(settings) as resources:
        server, port = build_server(settings)
        spec.register(server, resources, Guard(spec.unreachable))
        health = HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        reflection.enable_server_reflection(
            [spec.name, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME],
            server,
        )
        await health.set("", NOT_SERVING)
        await health.set(spec.name, NOT_SERVING)
        await server.start()
        running = RunningService(server, port, health, resources, spec.name)
        monitor = asyncio.create_task(_monitor(spec, running, settings.health_interval_seconds))
        log.info("listening", extra={"grpc_service": spec.name, "host": settings.host, "port": port})
        try:
            yield running
        finally:
            monitor.cancel()
            await bounded(asyncio.wait({monitor}), 5, "health monitor")
            await bounded(health.enter_graceful_shutdown(), 5, "health")
            await bounded(server.stop(settings.grace_seconds), settings.grace_seconds + 5, "server stop")
            log.info("stopped", extra={"grpc_service": spec.name})


async def serve_until_signal(spec: ServiceSpec[R], settings: ServerSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with start_service(spec, settings):
        await stop.wait()
        log.info("shutting down", extra={"grace_seconds": settings.grace_seconds})


def run_loop(main: Coroutine[Any, Any, T], event_loop: str = EVENT_LOOP.default) -> T:
    """Runs ``main`` to completion on a new loop: uvloop by default, since grpc.aio, asyncpg and
    the executor hand-offs all go through the loop on every call."""
    if event_loop == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


def run_service(spec: ServiceSpec[R], settings: ServerSettings) -> None:
    """A service's main: logs, tracing, serve until SIGTERM/SIGINT, drain, exit."""
    configure_logging(settings.service, settings.log_level)
    telemetry.configure_tracing(settings.service, settings.otlp_endpoint)
    try:
        run_loop(serve_until_signal(spec, settings), settings.event_loop)
    finally:
        telemetry.shutdown_tracing()


def main(load_settings: Callable[[], S], build: Callable[[S], tuple[ServiceSpec[Any], ServerSettings]]) -> None:
    """Entry point of ``python -m services.<name>``: a bad variable exits 2 with its name."""
    import sys

    from runtime.env import SettingsError

    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    service_spec, server_settings = build(settings)
    run_service(service_spec, server_settings)
