"""The chat service as the runtime starts it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from lectern.chat.v1 import chat_service_pb2 as pb
from lectern.chat.v1 import chat_service_pb2_grpc as pb_grpc

from embedding.reranker import CrossEncoder
from runtime.channels import peer_channel
from runtime.server import Guard, ServiceSpec, bounded
from runtime.settings import ServerSettings
from services.chat.answerers.base import Answerer
from services.chat.answerers.extractive import SENTENCE_TOKENS, ExtractiveAnswerer
from services.chat.answerers.gemini import GeminiAnswerer
from services.chat.answerers.openai import OpenAIAnswerer
from services.chat.clients import RetrievalOutlines, RetrievalSearch, SessionsConversations
from services.chat.engine import ChatEngine
from services.chat.llm.gemini import GeminiModel
from services.chat.llm.liveness import Liveness
from services.chat.llm.openai import OpenAIModel
from services.chat.recorder import Recorder
from services.chat.research import GeminiResearch, OpenAIResearch, OutlineFirst, Research, RuleResearch
from services.chat.servicer import ChatServicer
from services.chat.settings import ChatSettings

SERVICE = pb.DESCRIPTOR.services_by_name["ChatService"]


@dataclass
class Resources:
    engine: ChatEngine
    liveness: Liveness
    recorder: Recorder
    retrieval: grpc.aio.Channel
    sessions: grpc.aio.Channel


def spec(settings: ChatSettings) -> ServiceSpec[Resources]:
    @asynccontextmanager
    async def open_(server: ServerSettings) -> AsyncIterator[Resources]:
        retrieval = peer_channel(server, "retrieval")
        sessions = peer_channel(server, "sessions")
        conversations = SessionsConversations(sessions)
        recorder = Recorder(conversations, settings.record_buffer)
        recorder.start()
        search = RetrievalSearch(retrieval)
        scorer: CrossEncoder | None = None
        model: GeminiModel | OpenAIModel | None = None
        research: Research
        answerer: Answerer
        if settings.llm == "gemini":
            g = settings.gemini
            model = GeminiModel(g.api_key, g.model, g.base_url, g.timeout_seconds)
            research, answerer = GeminiResearch(model, search), GeminiAnswerer(model)
        elif settings.llm == "openai":
            o = settings.openai
            model = OpenAIModel(o.model, o.base_url, o.api_key, o.timeout_seconds, tools=o.tools,
                                max_tokens=o.max_tokens, extra_body=o.extra_body)
            research, answerer = OpenAIResearch(model, search), OpenAIAnswerer(model)
        else:
            # The cross-encoder picks the sentences that state the answer; loaded now, off the
            # event loop, so the first answer does not wait for it (unavailable: words decide).
            scorer = CrossEncoder(passage_tokens=SENTENCE_TOKENS, root=settings.model_data_dir)
            await scorer.ready()
            research, answerer = RuleResearch(search, search), ExtractiveAnswerer(scorer)
        engine = ChatEngine(OutlineFirst(research, RetrievalOutlines(retrieval)), answerer, conversations, recorder,
                            settings.answer_deadline_seconds)
        # Gemini has no check as cheap as a model list: reported as unchecked.
        liveness = Liveness(model.ping if isinstance(model, OpenAIModel) else None, unchecked=model is not None)
        try:
            yield Resources(engine, liveness, recorder, retrieval, sessions)
        finally:
            if model is not None:
                await bounded(model.close(), 5, "language model client")
            if scorer is not None:
                scorer.close()
            await recorder.drain(server.grace_seconds)
            await bounded(recorder.stop(), 5, "recorder")
            await bounded(retrieval.close(), 5, "retrieval channel")
            await bounded(sessions.close(), 5, "sessions channel")

    def register(server: grpc.aio.Server, res: Resources, guard: Guard) -> None:
        servicer = guard.servicer(ChatServicer(res.engine, res.liveness), SERVICE)
        pb_grpc.add_ChatServiceServicer_to_server(servicer, server)

    async def probe(res: Resources) -> Mapping[str, bool]:
        # Every chat needs both: retrieval for evidence, sessions for the conversation and its record.
        retrieval, sessions = await asyncio.gather(_serving(res.retrieval), _serving(res.sessions))
        return {"retrieval": retrieval, "sessions": sessions}

    return ServiceSpec(SERVICE.full_name, open_, register, probe)


async def _serving(channel: grpc.aio.Channel) -> bool:
    """Whether the service behind ``channel`` reports SERVING (its own dependencies included)."""
    try:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
    except grpc.aio.AioRpcError:
        return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
