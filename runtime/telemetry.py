"""OpenTelemetry tracing: one tracer provider per process, spans for every gRPC call in and
out (opentelemetry-instrumentation-grpc), exported over OTLP when an endpoint is set.

Tracing costs nothing when it is off: with no endpoint (and no processor added by a test) no
SDK provider is installed, spans are the API's no-ops, and the gRPC tracing interceptors are
left out of every server and channel, so they are not on the hot path at all.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

_provider: TracerProvider | None = None


def _install(service: str) -> TracerProvider:
    global _provider
    if _provider is None:
        _provider = TracerProvider(resource=Resource.create({"service.name": f"lectern-{service}"}))
        trace.set_tracer_provider(_provider)
    return _provider


def configure_tracing(service: str, otlp_endpoint: str = "") -> TracerProvider | None:
    """Installs the process's tracer provider when there is somewhere to send spans."""
    if not otlp_endpoint:
        return _provider
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    provider = _install(service)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    return provider


def add_span_processor(processor: SpanProcessor) -> None:
    """Turns tracing on with an extra processor (tests use an in-memory exporter)."""
    _install("process").add_span_processor(processor)


def server_interceptors() -> list[Any]:
    if _provider is None:
        return []
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    return [aio_server_interceptor(tracer_provider=_provider)]  # type: ignore[no-untyped-call]


def client_interceptors() -> list[Any]:
    if _provider is None:
        return []
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    return list(aio_client_interceptors(tracer_provider=_provider))  # type: ignore[no-untyped-call]


def shutdown_tracing() -> None:
    if _provider is not None:
        _provider.shutdown()
