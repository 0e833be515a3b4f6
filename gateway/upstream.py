"""Channels and stubs to the gRPC services, opened once per gateway process."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2_grpc
from lectern.chat.v1 import chat_service_pb2_grpc
from lectern.ingest.v1 import ingest_service_pb2_grpc
from lectern.retrieval.v1 import retrieval_service_pb2_grpc
from lectern.sessions.v1 import sessions_service_pb2_grpc

from gateway.settings import GatewaySettings
from runtime.channels import open_channel


@dataclass
class Upstream:
    channels: dict[str, grpc.aio.Channel]
    retrieval: retrieval_service_pb2_grpc.RetrievalServiceStub
    chat: chat_service_pb2_grpc.ChatServiceStub
    sessions: sessions_service_pb2_grpc.SessionsServiceStub
    ingest: ingest_service_pb2_grpc.IngestServiceStub

    @classmethod
    def connect(cls, settings: GatewaySettings) -> Upstream:
        channels = {name: open_channel(addr, settings.call_timeout_seconds, name=name, keepalive=settings.keepalive)
                    for name, addr in settings.peers.items()}
        return cls(
            channels,
            retrieval_service_pb2_grpc.RetrievalServiceStub(channels["retrieval"]),
            chat_service_pb2_grpc.ChatServiceStub(channels["chat"]),
            sessions_service_pb2_grpc.SessionsServiceStub(channels["sessions"]),
            ingest_service_pb2_grpc.IngestServiceStub(channels["ingest"]),
        )

    def health(self, name: str) -> health_pb2_grpc.HealthStub:
        return health_pb2_grpc.HealthStub(self.channels[name])

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close()
