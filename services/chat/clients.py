"""Chat's ports implemented over gRPC: retrieval for evidence, sessions for the record."""

from __future__ import annotations

import grpc
from lectern.common.v1 import common_pb2
from lectern.retrieval.v1 import retrieval_service_pb2 as rpb
from lectern.retrieval.v1 import retrieval_service_pb2_grpc as rpb_grpc
from lectern.sessions.v1 import sessions_service_pb2 as spb
from lectern.sessions.v1 import sessions_service_pb2_grpc as spb_grpc

from records.outline import OutlineEntry
from records.proto import entry_from_proto, turn_to_proto
from runtime import limits
from runtime.status import domain_errors
from services.chat.evidence import Evidence
from services.chat.ports import WHOLE_BOOK, PastTurn, Scope, SearchOutcome, TurnRecord


class RetrievalSearch:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.stub = rpb_grpc.RetrievalServiceStub(channel)

    async def search(self, query: str, book: str, top_k: int, module: str = "",
                     scope: Scope = WHOLE_BOOK) -> SearchOutcome:
        with domain_errors():
            response = await self.stub.Search(rpb.SearchRequest(query=query, top_k=top_k,
                                                                filter=_filter(book, scope, module=module)))
        return SearchOutcome(_evidence(response), response.out_of_scope, response.degraded)

    async def pieces(self, query: str, book: str, file_path: str, scope: Scope) -> list[Evidence]:
        with domain_errors():  # dense only, never reranked: the page's chunks nearest the question
            response = await self.stub.Search(rpb.SearchRequest(
                query=query, top_k=limits.TOP_K, filter=_filter(book, scope, file_path=file_path),
                mode=rpb.SEARCH_MODE_DENSE, rerank=False))
        return _evidence(response)


def _filter(book: str, scope: Scope, module: str = "", file_path: str = "") -> common_pb2.SearchFilter:
    return common_pb2.SearchFilter(book=book, module=module, file_path=file_path, version=scope.version,
                                   locale=scope.locale, default_version=scope.default_version,
                                   default_locale=scope.default_locale)


def _evidence(response: rpb.SearchResponse) -> list[Evidence]:
    return [Evidence(i, r.chunk.chunk_id, r.chunk.file_path, tuple(r.chunk.heading_path), r.chunk.url, r.score,
                     r.chunk.content, position=r.chunk.position)
            for i, r in enumerate(response.results, start=1)]


class RetrievalOutlines:
    """Books' outlines, as retrieval keeps them."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.stub = rpb_grpc.RetrievalServiceStub(channel)

    async def outline(self, book: str, version: str, locale: str) -> tuple[OutlineEntry, ...] | None:
        try:
            reply = await self.stub.GetOutline(rpb.GetOutlineRequest(book=book, version=version, locale=locale))
        except grpc.aio.AioRpcError:
            return None  # the question is then searched, and the search reports what is wrong
        return tuple(entry_from_proto(i) for i in reply.outline.items) if reply.found else None


class SessionsConversations:
    def __init__(self, channel: grpc.aio.Channel, timeout_seconds: float = 5.0) -> None:
        self.stub = spb_grpc.SessionsServiceStub(channel)
        self.timeout = timeout_seconds

    async def create(self, book: str) -> tuple[str, str]:
        with domain_errors():
            r = await self.stub.CreateConversation(spb.CreateConversationRequest(book=book), timeout=self.timeout)
        return r.conversation_id, r.conversation_token

    async def history(self, conversation_id: str, token: str, pairs: int) -> list[PastTurn]:
        """The last ``pairs`` question/answer pairs, oldest first."""
        messages: list[spb.Message] = []
        page = ""
        with domain_errors():
            while True:
                r = await self.stub.ListMessages(spb.ListMessagesRequest(
                    conversation_id=conversation_id, conversation_token=token, page_size=500, page_token=page,
                ), timeout=self.timeout)
                messages += list(r.messages)
                page = r.next_page_token
                if not page:
                    break
        turns: list[PastTurn] = []
        for i in range(0, len(messages) - 1):
            if messages[i].role == spb.ROLE_USER and messages[i + 1].role == spb.ROLE_ASSISTANT:
                turns.append(PastTurn(messages[i].content, messages[i + 1].content))
        return turns[-pairs:]

    async def append(self, turn: TurnRecord) -> None:
        with domain_errors():
            await self.stub.AppendTurn(turn_to_proto(turn), timeout=self.timeout)
