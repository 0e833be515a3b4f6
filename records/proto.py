"""Records <-> their protobuf messages: the one converter each way for every service.

The contracts keep a record's edition flat (``version``, ``locale``, ``other_version``,
``other_locale`` beside the other fields); the records nest it as an `Edition`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from google.protobuf import timestamp_pb2
from lectern.common.v1 import common_pb2
from lectern.retrieval.v1 import retrieval_service_pb2 as rpb
from lectern.sessions.v1 import sessions_service_pb2 as spb

from records.chunk import Chunk
from records.edition import Edition
from records.gap import GapQuestion
from records.outline import EditionOutline, OutlineEntry
from records.source import Source
from records.turn import Turn


class _FlatEdition(Protocol):
    @property
    def version(self) -> str: ...
    @property
    def locale(self) -> str: ...
    @property
    def other_version(self) -> bool: ...
    @property
    def other_locale(self) -> bool: ...


def _edition(msg: _FlatEdition) -> Edition:
    return Edition(msg.version, msg.locale, msg.other_version, msg.other_locale)


def chunk_to_proto(chunk: Chunk) -> common_pb2.Chunk:
    e = chunk.edition
    return common_pb2.Chunk(
        chunk_id=chunk.chunk_id, book=chunk.book, file_path=chunk.file_path, module=chunk.module,
        heading_path=list(chunk.heading_path), section_depth=chunk.section_depth, content=chunk.content,
        token_count=chunk.token_count, content_hash=chunk.content_hash, title=chunk.title, tags=list(chunk.tags),
        position=chunk.position, url=chunk.url, version=e.version, locale=e.locale,
        other_version=e.other_version, other_locale=e.other_locale, edit_url=chunk.edit_url,
    )


def chunk_from_proto(msg: common_pb2.Chunk) -> Chunk:
    return Chunk(
        chunk_id=msg.chunk_id, book=msg.book, file_path=msg.file_path, module=msg.module,
        heading_path=tuple(msg.heading_path), section_depth=msg.section_depth, content=msg.content,
        token_count=msg.token_count, content_hash=msg.content_hash, title=msg.title, tags=tuple(msg.tags),
        position=msg.position, url=msg.url, edition=_edition(msg), edit_url=msg.edit_url,
    )


def entry_to_proto(entry: OutlineEntry) -> rpb.OutlineEntry:
    return rpb.OutlineEntry(category=entry.category, label=entry.label, title=entry.title, url=entry.url,
                            file_path=entry.file_path, description=entry.description,
                            items=[entry_to_proto(i) for i in entry.items], part=entry.part)


def entry_from_proto(msg: rpb.OutlineEntry) -> OutlineEntry:
    return OutlineEntry(category=msg.category, label=msg.label, title=msg.title, url=msg.url,
                        file_path=msg.file_path, description=msg.description,
                        items=tuple(entry_from_proto(i) for i in msg.items), part=msg.part)


def outline_to_proto(outline: EditionOutline) -> rpb.EditionOutline:
    e = outline.edition
    return rpb.EditionOutline(version=e.version, locale=e.locale, other_version=e.other_version,
                              other_locale=e.other_locale, items=[entry_to_proto(i) for i in outline.items])


def outline_from_proto(msg: rpb.EditionOutline) -> EditionOutline:
    return EditionOutline(_edition(msg), tuple(entry_from_proto(i) for i in msg.items))


def timestamp_to_proto(value: datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def source_to_proto(source: Source) -> common_pb2.SourceReference:
    return common_pb2.SourceReference(n=source.n, chunk_id=source.chunk_id, file_path=source.file_path,
                                      heading_path=list(source.heading_path), url=source.url, score=source.score)


def source_from_proto(msg: common_pb2.SourceReference) -> Source:
    return Source(n=msg.n, chunk_id=msg.chunk_id, file_path=msg.file_path, heading_path=tuple(msg.heading_path),
                  url=msg.url, score=msg.score)


def turn_to_proto(turn: Turn) -> spb.AppendTurnRequest:
    return spb.AppendTurnRequest(
        conversation_id=turn.conversation_id, turn_id=turn.turn_id, question=turn.question, answer=turn.answer,
        mode=turn.mode, rewritten_query=turn.rewritten_query, sources=[source_to_proto(s) for s in turn.sources],
        latencies=[spb.StageLatency(stage=k, ms=v) for k, v in turn.latencies_ms.items()], tokens=turn.tokens,
        out_of_scope=turn.out_of_scope, grounded=turn.grounded, answer_message_id=turn.answer_message_id,
    )


def turn_from_proto(msg: spb.AppendTurnRequest) -> Turn:
    return Turn(
        conversation_id=msg.conversation_id, turn_id=msg.turn_id, question=msg.question, answer=msg.answer,
        mode=msg.mode or Turn.mode,  # unset: the record's default
        rewritten_query=msg.rewritten_query, sources=tuple(source_from_proto(s) for s in msg.sources),
        latencies_ms={lat.stage: lat.ms for lat in msg.latencies}, tokens=msg.tokens,
        out_of_scope=msg.out_of_scope, grounded=msg.grounded, answer_message_id=msg.answer_message_id,
    )


def gap_question_to_proto(q: GapQuestion) -> spb.GapQuestion:
    return spb.GapQuestion(question=q.question, book=q.book, asked_at=timestamp_to_proto(q.asked_at),
                           out_of_scope=q.out_of_scope, ungrounded=q.ungrounded, downvoted=q.downvoted)


def gap_question_from_proto(msg: spb.GapQuestion) -> GapQuestion:
    return GapQuestion(question=msg.question, book=msg.book, asked_at=msg.asked_at.ToDatetime(tzinfo=UTC),
                       out_of_scope=msg.out_of_scope, ungrounded=msg.ungrounded, downvoted=msg.downvoted)
