"""Sources, turns and gap questions against their messages, their rows and their HTTP JSON: a
field added to a record, its message, a converter or a stored form, and not to all of them, fails
here. (tests/test_sessions.py reads every field of stored turns back from Postgres.)

Records are filled by `filled`, which gives every field a value unlike its default and unlike
the other fields' from the field's type, so a new field is filled without editing these tests.
"""

from __future__ import annotations

import dataclasses
import json
import re
import typing
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from google.protobuf.message import Message
from lectern.chat.v1 import chat_service_pb2 as cpb
from lectern.common.v1 import common_pb2
from lectern.sessions.v1 import sessions_service_pb2 as spb

from gateway import schemas
from gateway.routes.chat import SOURCE_FIELDS_NOT_SENT, event_payload, source_json
from records.gap import GapQuestion
from records.proto import (
    gap_question_from_proto,
    gap_question_to_proto,
    source_from_proto,
    source_to_proto,
    turn_from_proto,
    turn_to_proto,
)
from records.source import Source
from records.turn import Turn
from services.chat.evidence import Evidence
from services.sessions.store import APPEND_TURNS, ConversationStore, _NewTurn, source_from_row, source_row
from tests.test_records import assert_every_field_set, message_fields


def sample(kind: object, name: str, i: int) -> object:
    """A value of type ``kind`` for the ``i``-th field, ``name``."""
    if kind is str:
        return f"{name} {i} é"
    if kind is int:
        return 11 + i
    if kind is float:
        return 0.125 + i  # exact in binary, and in the six decimals of the HTTP JSON
    if kind is bool:
        return True
    if kind is datetime:
        return datetime(2026, 3, 4, 5, 6, 7, 890_000 + i, tzinfo=UTC)
    if kind == tuple[str, ...]:
        return (f"{name} a", f"{name} b")
    if kind == dict[str, float]:
        return {f"{name} a": 1.5 + i, f"{name} b": 2.25}
    if typing.get_origin(kind) is Sequence:
        (item,) = typing.get_args(kind)
        return (filled(item), filled(item, start=20))
    raise AssertionError(f"no sample of {kind} for {name}: add one to sample()")


def filled(cls: type[Any], start: int = 0) -> Any:
    """The record with every field set, unlike its default; ``start`` makes a second one unlike the first."""
    hints = typing.get_type_hints(cls)
    record = cls(**{f.name: sample(hints[f.name], f.name, start + i) for i, f in enumerate(dataclasses.fields(cls))})
    for f in dataclasses.fields(cls):
        assert f.default is dataclasses.MISSING or getattr(record, f.name) != f.default, f.name
    return record


def one_flag_each(record: Any) -> list[Any]:
    """The record with each of its booleans alone true: two flags exchanged by a converter show."""
    flags = [f.name for f in dataclasses.fields(record) if isinstance(getattr(record, f.name), bool)]
    return [dataclasses.replace(record, **{f: f == flag for f in flags}) for flag in flags]


RECORDS: dict[type[Any], tuple[type[Message], Callable[[Any], Message], Callable[[Any], Any]]] = {
    Source: (common_pb2.SourceReference, source_to_proto, source_from_proto),
    Turn: (spb.AppendTurnRequest, turn_to_proto, turn_from_proto),
    GapQuestion: (spb.GapQuestion, gap_question_to_proto, gap_question_from_proto),
}
# The one field a message names otherwise: a turn's latencies, (stage, ms) pairs in the contract.
MESSAGE_NAMES = {"latencies_ms": "latencies"}


def names(cls: type[Any]) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


@pytest.mark.parametrize("record", list(RECORDS), ids=lambda r: r.__name__)
def test_a_record_has_the_fields_of_its_message(record: type[Any]) -> None:
    message = RECORDS[record][0]
    assert {MESSAGE_NAMES.get(n, n) for n in names(record)} == message_fields(message)


@pytest.mark.parametrize("record", list(RECORDS), ids=lambda r: r.__name__)
def test_a_record_round_trips_through_its_message(record: type[Any]) -> None:
    message, to_proto, from_proto = RECORDS[record]
    full = filled(record)
    assert_every_field_set(to_proto(full))
    for value in (full, *one_flag_each(full)):
        assert from_proto(message.FromString(to_proto(value).SerializeToString())) == value


def test_a_turn_without_a_mode_is_a_general_one() -> None:
    assert turn_from_proto(spb.AppendTurnRequest(conversation_id="c", turn_id="t")).mode == "general"


def test_evidence_is_sent_as_the_source_it_is_cited_as() -> None:
    evidence = Evidence(**{**dataclasses.asdict(filled(Source)), "content": "The text.", "kind": "outline"})
    assert source_from_proto(source_to_proto(evidence)) == filled(Source)


def test_a_source_has_the_fields_of_its_http_json() -> None:
    source = filled(Source)
    body = source_json(source)
    assert set(body) == names(Source) - SOURCE_FIELDS_NOT_SENT == set(schemas.Source.model_fields)
    assert body == {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(source).items()
                    if k in body}
    # The gateway gives a chat stream's sources event in that form.
    event = cpb.ChatResponse(sources=cpb.SourcesEvent(sources=[source_to_proto(source)]))
    assert event_payload(event) == ("sources", {"sources": [body]})


def columns(call: str) -> list[str]:
    """The columns APPEND_TURNS reads from the JSON that ``call`` unpacks."""
    found = re.search(re.escape(call) + r"\s+AS \w+\(([^)]*)\)", APPEND_TURNS)
    assert found, call
    return [c.split()[0] for c in found.group(1).split(",")]


def test_a_source_has_the_fields_of_its_row() -> None:
    source = filled(Source)
    row = source_row(source)
    assert len(row) == len(names(Source))  # one column a field
    assert sorted(row) == sorted(columns("jsonb_to_recordset(n.sources)"))
    assert source_from_row(json.loads(json.dumps(row))) == source  # as APPEND_TURNS receives it
    for key in row:
        with pytest.raises(KeyError):
            source_from_row({k: v for k, v in row.items() if k != key})


def test_a_turn_is_written_with_the_columns_the_statement_reads() -> None:
    store = ConversationStore(typing.cast(asyncpg.Pool, None))
    row = store._batch_row(_NewTurn(0, filled(Turn), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()))
    assert sorted(row) == sorted(columns("jsonb_to_recordset($1::jsonb)"))
