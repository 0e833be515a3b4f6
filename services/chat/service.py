"""The chat service as the runtime starts it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from lectern.chat.v1 import chat_service_pb2 as pb
from lectern.chat.v1 import chat_service_pb2_grpc as pb_grpc

from runtime.channels import open_channel
from runtime.server import ServiceSpec, bounded, guarded
from runtime.settings import ServerSettings
from services.chat.answerers.base import Answerer
from services.chat.answerers.extractive import ExtractiveAnswerer
from services.chat.answerers.gemini import GeminiAnswerer
from services.chat.clients import RetrievalSearch, SessionsConversations
from services.chat.engine import ChatEngine
from services.chat.llm.gemini import GeminiModel
from services.chat.recorder import Recorder
from services.chat.research import GeminiResearch, Research, RuleResearch
from services.chat.servicer import ChatServicer
from services.chat.settings import ChatSettings

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ChatService"].full_name


@dataclass
class Resources:
    engine: ChatEngine
    recorder: Recorder
    retrieval: grpc.aio.Channel


def spec(settings: ChatSettings) -> ServiceSpec[Resources]:
    @asynccontextmanager
    async def open_(server: ServerSettings) -> AsyncIterator[Resources]:
        retrieval = open_channel(server.peers["retrieval"], server.call_timeout_seconds)
        sessions = open_channel(server.peers["sessions"], server.call_timeout_seconds)
        conversations = SessionsConversations(sessions)
        recorder = Recorder(conversations, settings.record_buffer)
        recorder.start()
        search = RetrievalSearch(retrieval)
        model = None
        research: Research
        answerer: Answerer
        if settings.gemini.api_key:
            g = settings.gemini
            model = GeminiModel(g.api_key, g.model, g.base_url, g.timeout_seconds)
            research, answerer = GeminiResearch(model, search), GeminiAnswerer(model)
        else:
            research, answerer = RuleResearch(search), ExtractiveAnswerer()
        engine = ChatEngine(research, answerer, conversations, recorder, settings.answer_deadline_seconds)
        try:
            yield Resources(engine, recorder, retrieval)
        finally:
            if model is not None:
                await bounded(model.close(), 5, "gemini client")
            await recorder.drain(server.grace_seconds)
            await bounded(recorder.stop(), 5, "recorder")
            await bounded(retrieval.close(), 5, "retrieval channel")
            await bounded(sessions.close(), 5, "sessions channel")

    def register(server: grpc.aio.Server, res: Resources) -> None:
        pb_grpc.add_ChatServiceServicer_to_server(guarded(ChatServicer(res.engine), SERVICE_NAME), server)

    async def probe(res: Resources) -> bool:
        # Chat's dependency is retrieval: without evidence it cannot answer.
        stub = health_pb2_grpc.HealthStub(res.retrieval)
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    return ServiceSpec(SERVICE_NAME, open_, register, probe)
