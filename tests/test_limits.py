"""Each request limit at its boundary in every layer: what the gateway accepts, the service
behind it accepts, in multi-byte text too (limits count characters everywhere), and one
character more is refused by each layer naming the field."""

from __future__ import annotations

from typing import Any

import grpc
import httpx
import pytest
from lectern.chat.v1 import chat_service_pb2 as cpb
from lectern.chat.v1 import chat_service_pb2_grpc as cpb_grpc
from lectern.common.v1 import common_pb2
from lectern.retrieval.v1 import retrieval_service_pb2 as rpb
from lectern.retrieval.v1 import retrieval_service_pb2_grpc as rpb_grpc
from lectern.sessions.v1 import sessions_service_pb2 as spb
from lectern.sessions.v1 import sessions_service_pb2_grpc as spb_grpc

from runtime import errors, limits
from runtime.status import from_rpc_error
from services.chat.ports import PastTurn
from services.chat.research import rewrite
from tests.conftest import Stack

pytestmark = pytest.mark.asyncio(loop_scope="session")

JSON = {"Accept": "application/json"}
AT_LIMIT = "é" * limits.QUESTION_CHARS  # 2 bytes each in UTF-8: twice the limit in bytes
OVER = AT_LIMIT + "é"


def refused_fields(caught: pytest.ExceptionInfo[grpc.aio.AioRpcError]) -> list[str]:
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    err = from_rpc_error(caught.value)
    assert isinstance(err, errors.InvalidArgument)
    return [v.field for v in err.violations]


async def chat_events(stack: Stack, request: cpb.ChatRequest) -> list[str]:
    async with grpc.aio.insecure_channel(stack.chat.address) as ch:
        return [e.WhichOneof("event") async for e in cpb_grpc.ChatServiceStub(ch).Chat(request, timeout=120)]


async def test_the_gateway_takes_a_multibyte_question_at_the_limit_and_refuses_one_more(gateway: str) -> None:
    async with httpx.AsyncClient(base_url=gateway, timeout=120) as client:
        for path, field in (("/v1/search", "query"), ("/v1/chat", "message")):
            ok = await client.post(path, json={field: AT_LIMIT}, headers=JSON)
            assert ok.status_code == 200, (path, ok.text[:300])
            over = await client.post(path, json={field: OVER}, headers=JSON)
            assert over.status_code == 400, (path, over.text[:300])
            assert over.json()["error"]["code"] == "INVALID_ARGUMENT"
            assert [d["field"] for d in over.json()["error"]["details"]] == [field]


async def test_the_gateway_refuses_each_field_one_past_its_limit(gateway: str) -> None:
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("/v1/chat", {"message": "hi", "book": "b" * (limits.BOOK_CHARS + 1)}, "book"),
        ("/v1/chat", {"message": "hi", "mode": "selection", "context": "x" * (limits.SELECTION_CHARS + 1)},
         "context"),
        ("/v1/chat", {"message": "hi", "locale": "l" * (limits.LOCALE_CHARS + 1)}, "locale"),
        ("/v1/chat", {"message": "hi", "page": {"url": "/" * (limits.URL_CHARS + 1)}}, "page.url"),
        ("/v1/search", {"query": "q", "top_k": limits.TOP_K + 1}, "top_k"),
        ("/v1/feedback", {"conversation_id": "c", "message_id": "m", "rating": "up",
                          "comment": "é" * (limits.COMMENT_CHARS + 1)}, "comment"),
    ]
    async with httpx.AsyncClient(base_url=gateway, timeout=60) as client:
        for path, body, field in cases:
            reply = await client.post(path, json=body, headers={**JSON, "X-Conversation-Token": "t"})
            assert reply.status_code == 400, (field, reply.text[:300])
            assert field in [d["field"] for d in reply.json()["error"]["details"]], reply.text[:300]


async def test_chat_takes_a_multibyte_message_at_the_limit_and_refuses_one_more(stack: Stack) -> None:
    events = await chat_events(stack, cpb.ChatRequest(message=AT_LIMIT))
    assert events[0] == "meta" and events[-1] == "done", events
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await chat_events(stack, cpb.ChatRequest(message=OVER))
    assert refused_fields(caught) == ["message"]


@pytest.mark.parametrize(("field", "request_over"), [
    ("selection", cpb.ChatRequest(message="hi", mode=cpb.CHAT_MODE_SELECTION,
                                  selection="é" * (limits.SELECTION_CHARS + 1))),
    ("book", cpb.ChatRequest(message="hi", book="é" * (limits.BOOK_CHARS + 1))),
    ("locale", cpb.ChatRequest(message="hi", locale="é" * (limits.LOCALE_CHARS + 1))),
    ("page.title", cpb.ChatRequest(message="hi", page=cpb.PageContext(title="é" * (limits.PAGE_TITLE_CHARS + 1)))),
])
async def test_chat_refuses_each_field_one_past_its_limit(stack: Stack, field: str,
                                                          request_over: cpb.ChatRequest) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await chat_events(stack, request_over)
    assert refused_fields(caught) == [field]


async def test_retrieval_takes_a_multibyte_query_at_the_limit_and_refuses_one_more(stack: Stack) -> None:
    async with grpc.aio.insecure_channel(stack.retrieval.address) as ch:
        stub = rpb_grpc.RetrievalServiceStub(ch)
        await stub.Search(rpb.SearchRequest(query=AT_LIMIT, filter=common_pb2.SearchFilter(book="default")))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Search(rpb.SearchRequest(query=OVER))
        assert refused_fields(caught) == ["query"]
        assert len((await stub.EmbedQueries(rpb.EmbedQueriesRequest(queries=[AT_LIMIT]))).vectors) == 1
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.EmbedQueries(rpb.EmbedQueriesRequest(queries=[OVER]))
        assert refused_fields(caught) == ["queries[0]"]
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ReadChunks(rpb.ReadChunksRequest(book="é" * (limits.BOOK_CHARS + 1)))
        assert refused_fields(caught) == ["book"]


async def test_sessions_takes_a_book_name_at_the_limit_and_refuses_one_more(stack: Stack) -> None:
    async with grpc.aio.insecure_channel(stack.sessions.address) as ch:
        stub = spb_grpc.SessionsServiceStub(ch)
        created = await stub.CreateConversation(spb.CreateConversationRequest(book="é" * limits.BOOK_CHARS))
        assert created.conversation_id
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.CreateConversation(spb.CreateConversationRequest(book="é" * (limits.BOOK_CHARS + 1)))
        assert refused_fields(caught) == ["book"]


@pytest.mark.parametrize("size", [10, limits.QUESTION_CHARS - 5, limits.QUESTION_CHARS])
async def test_a_rewritten_follow_up_is_never_longer_than_retrieval_takes(size: int) -> None:
    """Chat no longer cuts queries on their way to retrieval, so the rewrite must stay within the limit."""
    message = "how do I test it " + "é" * (size - 17)
    history = [PastTurn("How do I calibrate the gyroscope sensor?", "...")]
    query = rewrite(message, history)
    assert len(query) <= limits.QUESTION_CHARS
    assert ("gyroscope" in query) == (size == 10)  # the topic is borrowed when it fits, never cut
