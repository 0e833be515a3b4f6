"""OpenTelemetry tracing: one tracer provider per process, spans for every gRPC call in and
out (opentelemetry-instrumentation-grpc), exported over OTLP when an endpoint is set."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

_provider: TracerProvider | None = None


def configure_tracing(service: str, otlp_endpoint: str = "") -> TracerProvider:
    """Installs the process's tracer provider once; later calls return the same one."""
    global _provider
    if _provider is not None:
        return _provider
    provider = TracerProvider(resource=Resource.create({"service.name": f"lectern-{service}"}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def add_span_processor(processor: SpanProcessor) -> None:
    """Adds an extra processor (tests use an in-memory exporter)."""
    configure_tracing("process").add_span_processor(processor)


def server_interceptor() -> Any:
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    return aio_server_interceptor(tracer_provider=configure_tracing("process"))  # type: ignore[no-untyped-call]


def client_interceptors() -> list[Any]:
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    return list(aio_client_interceptors(tracer_provider=configure_tracing("process")))  # type: ignore[no-untyped-call]


def shutdown_tracing() -> None:
    if _provider is not None:
        _provider.shutdown()
