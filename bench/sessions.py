"""Write load on the sessions service: AppendTurn with sources and latencies, as chat sends it."""

from __future__ import annotations

import uuid

import grpc
from lectern.common.v1 import common_pb2
from lectern.sessions.v1 import sessions_service_pb2 as spb
from lectern.sessions.v1 import sessions_service_pb2_grpc as spb_grpc

from bench.load import LoadResult, run_load


async def append_load(address: str, concurrency: int, seconds: float) -> LoadResult:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = spb_grpc.SessionsServiceStub(channel)
        conversations = [(await stub.CreateConversation(spb.CreateConversationRequest(book="bench"))).conversation_id
                         for _ in range(concurrency)]
        sources = [common_pb2.SourceReference(n=n, chunk_id=str(uuid.uuid4()), file_path="api/Store.md",
                                              heading_path=["Store", "dispatch"], url="/docs/api/store#dispatch",
                                              score=0.5) for n in (1, 2, 3)]

        async def call(i: int) -> None:
            await stub.AppendTurn(spb.AppendTurnRequest(
                conversation_id=conversations[i % len(conversations)], turn_id=str(uuid.uuid4()),
                question="How do I dispatch an action?", answer="Call store.dispatch(action) [1].", mode="general",
                sources=sources, latencies=[spb.StageLatency(stage="retrieve", ms=12.0)], grounded=True,
                answer_message_id=str(uuid.uuid4()),
            ), timeout=30)

        return await run_load(call, concurrency, seconds)
