"""Outgoing gRPC channels: every call gets a default deadline, the caller's request id and
trace context, so no call can hang forever and a request can be followed across services."""

from __future__ import annotations

from typing import Any

import grpc

from runtime import telemetry
from runtime.context import REQUEST_ID_HEADER, request_id

_KEEPALIVE = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]


class CallDefaults(grpc.aio.UnaryUnaryClientInterceptor, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    """Adds the default deadline and the request id to calls that lack them."""

    def __init__(self, timeout_seconds: float) -> None:
        self.timeout_seconds = timeout_seconds

    def _details(self, details: Any) -> Any:
        metadata = grpc.aio.Metadata(*(tuple(details.metadata) if details.metadata else ()))
        rid = request_id.get()
        if rid and REQUEST_ID_HEADER not in metadata:
            metadata.add(REQUEST_ID_HEADER, rid)
        timeout = details.timeout if details.timeout is not None else self.timeout_seconds
        return grpc.aio.ClientCallDetails(
            details.method, timeout, metadata, details.credentials, details.wait_for_ready
        )

    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(self._details(client_call_details), request)

    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(self._details(client_call_details), request)


def open_channel(target: str, timeout_seconds: float) -> grpc.aio.Channel:
    """An insecure loopback/cluster channel with deadline, request-id and tracing interceptors."""
    interceptors: list[Any] = [CallDefaults(timeout_seconds), *telemetry.client_interceptors()]
    return grpc.aio.insecure_channel(target, options=_KEEPALIVE, interceptors=interceptors)
