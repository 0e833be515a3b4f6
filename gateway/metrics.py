"""Prometheus metrics of the gateway (GET /metrics), in a registry of its own so several apps
in one process (tests) never collide."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
from lectern.chat.v1 import chat_service_pb2 as cpb
from lectern.chat.v1 import chat_service_pb2_grpc as cpb_grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

TURN_OUTCOMES = ("recorded", "rejected", "abandoned", "overflowed")
STATS_TIMEOUT_SECONDS = 1.0


class ChatStats(Collector):
    """Chat's turn-record counters, which live in the chat process: read from its GetStats at
    each scrape and absent while chat does not answer (stale counters would mislead)."""

    def __init__(self) -> None:
        self.last: cpb.GetStatsResponse | None = None

    async def refresh(self, chat: cpb_grpc.ChatServiceStub) -> None:
        try:
            self.last = await chat.GetStats(cpb.GetStatsRequest(), timeout=STATS_TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError:
            self.last = None

    def collect(self) -> Iterator[Metric]:
        last = self.last
        if last is None:
            return
        turns = CounterMetricFamily("lectern_chat_turns", "Turns answered in a conversation, by how their record "
                                    "ended (rejected: sessions refused it; abandoned: retries ran out; "
                                    "overflowed: the buffer was full)", labels=["outcome"])
        for outcome in TURN_OUTCOMES:
            turns.add_metric([outcome], getattr(last, f"turns_{outcome}"))
        yield turns
        yield GaugeMetricFamily("lectern_chat_turns_pending", "Turns waiting in chat's buffer to be recorded",
                                value=last.turns_pending)


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
        self.chat = ChatStats()
        self.registry.register(self.chat)
