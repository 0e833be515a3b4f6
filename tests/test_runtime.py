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

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from runtime import errors
from runtime.channels import open_channel
from runtime.context import request_id
from runtime.env import SettingsError
from runtime.server import ServiceSpec, build_server, guarded, run_loop, start_service
from runtime.settings import ServerSettings
from runtime.status import from_rpc_error
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


def toy_spec(dep: Dependency) -> ServiceSpec[Dependency]:
    @asynccontextmanager
    async def open_(settings: ServerSettings) -> AsyncIterator[Dependency]:
        yield dep

    def register(server: grpc.aio.Server, res: Dependency) -> None:
        toy = guarded(ToyServicer(), TOY)
        handlers = {name: grpc.unary_unary_rpc_method_handler(getattr(toy, name))
                    for name in ("Slow", "Invalid", "Boom", "WhoAmI")}
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(TOY, handlers),))

    async def probe(res: Dependency) -> bool:
        return res.ready

    return ServiceSpec(TOY, open_, register, probe)


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
