"""Outgoing gRPC channels: every call gets a default deadline, the caller's request id and
trace context, so no call can hang forever and a request can be followed across services.

The keepalive policy lives here for both ends: ``client_options`` for channels and
``server_options`` for ``runtime.server``, both from one ``Keepalive``. Pings that a server
does not expect count as abuse: after two it sends GOAWAY "too_many_pings" and every stream on
the connection dies, which would cut a quiet ingest stream after a few pings.
"""

from __future__ import annotations

from typing import Any

import grpc

from runtime import status, telemetry
from runtime.context import REQUEST_ID_HEADER, request_id
from runtime.settings import DEFAULT_KEEPALIVE, Keepalive, ServerSettings

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
MESSAGE_SIZE_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def client_options(keepalive: Keepalive) -> list[tuple[str, int]]:
    """Channel arguments of an outgoing channel: ping every interval while quiet, calls or not
    (a dead peer is then noticed before the next call waits on it)."""
    return [
        ("grpc.keepalive_time_ms", _ms(keepalive.interval_seconds)),
        ("grpc.keepalive_timeout_ms", _ms(keepalive.timeout_seconds)),
        ("grpc.keepalive_permit_without_calls", 1),
        # 0: no cap on pings while no data flows (a quiet stream is exactly when they matter).
        ("grpc.http2.max_pings_without_data", 0),
    ]


def server_options(keepalive: Keepalive) -> list[tuple[str, int]]:
    """Channel arguments of a server that accepts exactly the clients' pings: gRPC's default
    expects at most one ping per 5 minutes, and none without calls."""
    return [
        # Half the clients' interval: timer jitter must never make a ping look early.
        ("grpc.http2.min_ping_interval_without_data_ms", _ms(keepalive.interval_seconds / 2)),
        ("grpc.keepalive_permit_without_calls", 1),
        # The server pings too, so the streams of a client that vanished are ended.
        ("grpc.keepalive_time_ms", _ms(keepalive.interval_seconds)),
        ("grpc.keepalive_timeout_ms", _ms(keepalive.timeout_seconds)),
        ("grpc.http2.max_pings_without_data", 0),
    ]


class _CallDefaults:
    """Adds the request id to calls that lack it, and names the peer in the message of a call
    that could not reach it (gRPC's own message names its address)."""

    def __init__(self, timeout_seconds: float | None, peer: str) -> None:
        self.timeout_seconds = timeout_seconds
        self.peer = peer or "a dependency"

    def _details(self, details: Any) -> Any:
        metadata = grpc.aio.Metadata(*(tuple(details.metadata) if details.metadata else ()))
        rid = request_id.get()
        if rid and REQUEST_ID_HEADER not in metadata:
            metadata.add(REQUEST_ID_HEADER, rid)
        timeout = details.timeout if details.timeout is not None else self.timeout_seconds
        return grpc.aio.ClientCallDetails(
            details.method, timeout, metadata, details.credentials, details.wait_for_ready
        )


# Two classes, not one with both methods: grpc.aio files an interceptor under the first kind it
# implements only, so a single class never saw the streams.
class UnaryDefaults(_CallDefaults, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Unary calls also get the default deadline."""

    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        call = await continuation(self._details(client_call_details), request)
        try:
            return await call
        except grpc.aio.AioRpcError as exc:
            raise status.name_peer(exc, self.peer) from None


class StreamDefaults(_CallDefaults, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    """Streams keep the deadline their caller gives (an ingest lasts minutes, an answer as long
    as its own deadline); a dead peer is found by keepalive instead."""

    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        call = await continuation(self._details(client_call_details), request)
        peer = self.peer

        async def responses() -> Any:
            try:
                async for response in call:
                    yield response
            except grpc.aio.AioRpcError as exc:
                raise status.name_peer(exc, peer) from None

        return responses()


def open_channel(target: str, timeout_seconds: float, *, name: str = "",
                 keepalive: Keepalive = DEFAULT_KEEPALIVE) -> grpc.aio.Channel:
    """An insecure loopback/cluster channel to the service ``name`` (used in error messages,
    never its address) with deadline, request-id and tracing interceptors."""
    interceptors: list[Any] = [UnaryDefaults(timeout_seconds, name), StreamDefaults(None, name),
                               *telemetry.client_interceptors()]
    options = [*client_options(keepalive), *MESSAGE_SIZE_OPTIONS]
    return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)


def peer_channel(settings: ServerSettings, name: str) -> grpc.aio.Channel:
    """A service's channel to its peer ``name``, with the service's deadline and keepalive."""
    return open_channel(settings.peers[name], settings.call_timeout_seconds, name=name,
                        keepalive=settings.keepalive)
