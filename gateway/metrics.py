"""Prometheus metrics of the gateway (GET /metrics), in a registry of its own so several apps
in one process (tests) never collide."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("lectern_http_requests", "HTTP requests by route, method and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("lectern_http_request_seconds", "HTTP request latency by route", ["route"],
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
                                 registry=self.registry)
        self.open_streams = Gauge("lectern_open_streams", "Server-Sent Event streams open now",
                                  registry=self.registry)
        self.rate_limited = Counter("lectern_rate_limited", "Requests refused by the rate limit",
                                    registry=self.registry)
        self.upstream_errors = Counter("lectern_upstream_errors", "Failed calls to the gRPC services by status",
                                       ["code"], registry=self.registry)
