"""The shared runtime on a toy service: health follows the dependency, reflection works,
errors carry rich details, request ids travel, deadlines apply, shutdown drains."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from runtime import errors
from runtime.channels import open_channel
from runtime.context import request_id
from runtime.env import SettingsError
from runtime.server import Guard, ServiceSpec, build_server, run_loop, start_service
from runtime.settings import ServerSettings
from runtime.status import NETWORK, Unreachable, from_rpc_error
from tests.conftest import ROOT, server_settings

TOY = "lectern.test.v1.ToyService"


@dataclass
class Dependency:
    ready: bool = False


class ToyServicer:
    """Raw-bytes RPCs, guarded the way every service's servicer is."""

    async def Slow(self, request: bytes, context: Any) -> bytes:
        await asyncio.sleep(float(request.decode() or "0.5"))
        return b"done"

    async def Invalid(self, request: bytes, context: Any) -> bytes:
        raise errors.InvalidArgument.of("query", "must not be empty")

    async def Boom(self, request: bytes, context: Any) -> bytes:
        raise RuntimeError("secret internals")

    async def WhoAmI(self, request: bytes, context: Any) -> bytes:
        return request_id.get().encode()

    async def Down(self, request: bytes, context: Any) -> bytes:
        raise asyncpg.PostgresConnectionError("connection to 10.0.0.5:5432 was lost")


RPCS = ("Slow", "Invalid", "Boom", "WhoAmI", "Down")
POSTGRES_DOWN = NETWORK.plus(asyncpg.PostgresConnectionError, dependency="postgres")
"""Declared here from the driver alone: the mapping needs nothing of runtime.postgres."""


def toy_spec(dep: Dependency, unreachable: Unreachable = NETWORK) -> ServiceSpec[Dependency]:
    @asynccontextmanager
    async def open_(settings: ServerSettings) -> AsyncIterator[Dependency]:
        yield dep

    def register(server: grpc.aio.Server, res: Dependency, guard: Guard) -> None:
        toy = ToyServicer()
        handlers = {name: grpc.unary_unary_rpc_method_handler(guard.unary(f"/{TOY}/{name}", getattr(toy, name)))
                    for name in RPCS}
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(TOY, handlers),))

    async def probe(res: Dependency) -> bool:
        return res.ready

    return ServiceSpec(TOY, open_, register, probe, unreachable=unreachable)


async def health_status(address: str, service: str = "") -> int:
    async with grpc.aio.insecure_channel(address) as ch:
        reply = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
        return int(reply.status)


async def wait_for_status(address: str, wanted: int, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if await health_status(address) == wanted:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"health never became {wanted}")


def call(channel: grpc.aio.Channel, method: str) -> Any:
    return channel.unary_unary(f"/{TOY}/{method}")


async def test_build_server_binds_a_free_port(tmp_path: Path) -> None:
    server, port = build_server(server_settings("retrieval", tmp_path))
    assert port > 0
    await server.start()
    await server.stop(0)


async def test_health_follows_the_dependency(tmp_path: Path) -> None:
    dep = Dependency(ready=False)
    async with start_service(toy_spec(dep), server_settings("retrieval", tmp_path)) as svc:
        assert await health_status(svc.address) == health_pb2.HealthCheckResponse.NOT_SERVING
        dep.ready = True
        await wait_for_status(svc.address, health_pb2.HealthCheckResponse.SERVING)
        assert await health_status(svc.address, TOY) == health_pb2.HealthCheckResponse.SERVING
        dep.ready = False  # the datastore became unreachable
        await wait_for_status(svc.address, health_pb2.HealthCheckResponse.NOT_SERVING)


async def test_reflection_lists_the_services(tmp_path: Path) -> None:
    async with (start_service(toy_spec(Dependency(True)), server_settings("retrieval", tmp_path)) as svc,
                grpc.aio.insecure_channel(svc.address) as ch):
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        names: set[str] = set()
        async for reply in stub.ServerReflectionInfo(iter([request])):
            names |= {s.name for s in reply.list_services_response.service}
    assert {TOY, "grpc.health.v1.Health"} <= names


async def test_domain_errors_become_rich_statuses(tmp_path: Path) -> None:
    async with (start_service(toy_spec(Dependency(True)), server_settings("retrieval", tmp_path)) as svc,
                grpc.aio.insecure_channel(svc.address) as ch):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(ch, "Invalid")(b"")
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        domain = from_rpc_error(caught.value)
        assert isinstance(domain, errors.InvalidArgument)
        assert domain.violations == [errors.FieldViolation("query", "must not be empty")]

        with pytest.raises(grpc.aio.AioRpcError) as crashed:
            await call(ch, "Boom")(b"")
        assert crashed.value.code() == grpc.StatusCode.INTERNAL
        assert "secret" not in (crashed.value.details() or "")


@pytest.mark.parametrize("declared", [POSTGRES_DOWN, "runtime.postgres"])
async def test_a_driver_error_is_unavailable_where_the_service_declares_it(tmp_path: Path,
                                                                          declared: Unreachable | str) -> None:
    if isinstance(declared, str):
        from runtime import postgres

        declared = postgres.UNREACHABLE
    async with (start_service(toy_spec(Dependency(True), declared), server_settings("retrieval", tmp_path)) as svc,
                grpc.aio.insecure_channel(svc.address) as ch):
        with pytest.raises(grpc.aio.AioRpcError) as down:
            await call(ch, "Down")(b"")
    assert down.value.code() == grpc.StatusCode.UNAVAILABLE
    assert down.value.details() == "postgres is unreachable; try again shortly"


async def test_a_driver_error_is_internal_where_the_service_does_not_declare_it(tmp_path: Path) -> None:
    # The module that declares Postgres's errors is loaded in this process; it used to extend one
    # global mapping when imported, turning this error UNAVAILABLE in every service of the process.
    from runtime import postgres

    assert postgres.UNREACHABLE.dependency(asyncpg.PostgresConnectionError()) == "postgres"
    async with (start_service(toy_spec(Dependency(True)), server_settings("retrieval", tmp_path)) as svc,
                grpc.aio.insecure_channel(svc.address) as ch):
        with pytest.raises(grpc.aio.AioRpcError) as down:
            await call(ch, "Down")(b"")
    assert down.value.code() == grpc.StatusCode.INTERNAL
    assert "10.0.0.5" not in (down.value.details() or "")


class HealthOfAStore(health_pb2_grpc.HealthServicer):  # type: ignore[misc]
    """A generated servicer, as the services have: its RPCs come from the contract."""

    def __init__(self) -> None:
        self.calls = 0

    async def Check(self, request: health_pb2.HealthCheckRequest, context: Any) -> health_pb2.HealthCheckResponse:
        self.calls += 1
        if request.service == "down":
            raise asyncpg.ConnectionFailureError("server closed the connection unexpectedly")
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

    async def Watch(self, request: health_pb2.HealthCheckRequest, context: Any
                    ) -> AsyncIterator[health_pb2.HealthCheckResponse]:
        yield health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)
        raise errors.InvalidArgument.of("service", "cannot be watched here")

    async def List(self, request: health_pb2.HealthListRequest, context: Any) -> health_pb2.HealthListResponse:
        return health_pb2.HealthListResponse()


HEALTH = health_pb2.DESCRIPTOR.services_by_name["Health"]


async def test_a_guarded_servicer_maps_errors_on_every_rpc_of_its_contract(tmp_path: Path) -> None:
    servicer = HealthOfAStore()
    guarded = Guard(POSTGRES_DOWN).servicer(servicer, HEALTH)
    assert isinstance(guarded, HealthOfAStore) and guarded is not servicer
    server, port = build_server(server_settings("retrieval", tmp_path))
    health_pb2_grpc.add_HealthServicer_to_server(guarded, server)
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            assert (await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)).status == 1
            with pytest.raises(grpc.aio.AioRpcError) as down:
                await stub.Check(health_pb2.HealthCheckRequest(service="down"), timeout=5)
            assert down.value.code() == grpc.StatusCode.UNAVAILABLE
            watched = []
            with pytest.raises(grpc.aio.AioRpcError) as invalid:
                async for reply in stub.Watch(health_pb2.HealthCheckRequest(), timeout=5):
                    watched.append(reply.status)
            assert watched == [1] and invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            domain = from_rpc_error(invalid.value)
            assert isinstance(domain, errors.InvalidArgument)
            assert domain.violations == [errors.FieldViolation("service", "cannot be watched here")]
    finally:
        await server.stop(0)
    assert servicer.calls == 2  # the copy calls the servicer's own methods


def test_a_servicer_missing_an_rpc_or_shaped_wrongly_fails_at_start_up() -> None:
    class NoList(health_pb2_grpc.HealthServicer):  # type: ignore[misc]
        """Forgot List: the generated base's placeholder (blocking, UNIMPLEMENTED) is left."""

        Check = HealthOfAStore.Check
        Watch = HealthOfAStore.Watch

    class UnaryWatch(HealthOfAStore):
        async def Watch(self, request: Any, context: Any) -> Any:  # type: ignore[override]
            return health_pb2.HealthCheckResponse()

    class BlockingCheck(HealthOfAStore):
        def Check(self, request: Any, context: Any) -> Any:
            return health_pb2.HealthCheckResponse()

    guard = Guard(NETWORK)
    with pytest.raises(TypeError, match=r"NoList\.List must be a coroutine function"):
        guard.servicer(NoList(), HEALTH)
    with pytest.raises(TypeError, match=r"UnaryWatch\.Watch must be an async generator"):
        guard.servicer(UnaryWatch(), HEALTH)
    with pytest.raises(TypeError, match=r"BlockingCheck\.Check must be a coroutine function"):
        guard.servicer(BlockingCheck(), HEALTH)


async def test_request_id_and_default_deadline_travel_on_outgoing_calls(tmp_path: Path) -> None:
    async with start_service(toy_spec(Dependency(True)), server_settings("retrieval", tmp_path)) as svc:
        # 1 s: room for the first call to connect on a loaded machine, well under Slow's 2 s.
        channel = open_channel(svc.address, timeout_seconds=1.0)
        try:
            request_id.set("req-123")
            assert await call(channel, "WhoAmI")(b"") == b"req-123"
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call(channel, "Slow")(b"2")
            assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        finally:
            request_id.set("")
            await channel.close()


async def test_shutdown_drains_in_flight_calls_and_refuses_new_ones(tmp_path: Path) -> None:
    settings = server_settings("retrieval", tmp_path)
    context = start_service(toy_spec(Dependency(True)), settings)
    svc = await context.__aenter__()
    async with grpc.aio.insecure_channel(svc.address) as ch:
        async def slow_call() -> bytes:
            result: bytes = await call(ch, "Slow")(b"0.6")
            return result

        in_flight = asyncio.create_task(slow_call())
        await asyncio.sleep(0.1)
        closing = asyncio.create_task(context.__aexit__(None, None, None))
        await asyncio.sleep(0.1)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call(ch, "WhoAmI")(b"", timeout=1)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert await in_flight == b"done"
        await closing


async def test_the_health_monitor_stops_even_when_shutdown_lands_as_a_probe_returns(tmp_path: Path) -> None:
    # The exit below runs in the same loop turn as the probe's completion: the exact moment
    # at which Python 3.11's wait_for swallows a cancellation and leaves the monitor running.
    probed = asyncio.Event()
    calls = 0

    async def probe(res: Dependency) -> bool:
        nonlocal calls
        calls += 1
        probed.set()
        return True

    spec = replace(toy_spec(Dependency(True)), probe=probe)
    async with asyncio.timeout(10) as deadline:
        async with start_service(spec, server_settings("retrieval", tmp_path)):
            await probed.wait()
    assert not deadline.expired(), "shutdown hung on a health monitor that missed its cancellation"
    after_exit = calls
    await asyncio.sleep(0.6)  # three probe intervals
    assert calls == after_exit, "the health monitor outlived the service"


def test_settings_error_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="LECTERN_CHAT_PORT"):
        ServerSettings.from_env("chat", {"LECTERN_CHAT_PORT": "eighty"})
    with pytest.raises(SettingsError, match="LECTERN_GRACE_SECONDS"):
        ServerSettings.from_env("chat", {"LECTERN_GRACE_SECONDS": "-1"})
    with pytest.raises(SettingsError, match=r"LECTERN_EVENT_LOOP.*uvloop, asyncio"):
        ServerSettings.from_env("chat", {"LECTERN_EVENT_LOOP": "trio"})


@pytest.mark.parametrize(("choice", "loop_module"), [("uvloop", "uvloop"), ("asyncio", "asyncio")])
def test_services_run_on_the_configured_event_loop(choice: str, loop_module: str) -> None:
    async def loop_kind() -> str:
        return type(asyncio.get_running_loop()).__module__.split(".")[0]

    assert ServerSettings.from_env("chat", {"LECTERN_EVENT_LOOP": choice}).event_loop == choice
    assert run_loop(loop_kind(), choice) == loop_module


def test_a_service_with_a_bad_variable_exits_with_a_clear_message() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "services.sessions"], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}", "LECTERN_DB_POOL_MAX": "many"},
    )
    assert result.returncode == 2
    assert "LECTERN_DB_POOL_MAX" in result.stderr
