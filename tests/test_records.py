"""Each record against its protobuf message and its stored forms: a field added to a record, its
message, its converters or its stored form, and not to all of them, fails here.

Records are filled by `populated`, which gives every field a value unlike its default from the
field's type, so a new field is filled without editing these tests, and a converter that drops
it fails the round trips.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf.message import Message
from lectern.common.v1 import common_pb2
from lectern.retrieval.v1 import retrieval_service_pb2 as rpb

from records.chunk import Chunk
from records.edition import SOLE_EDITION, Edition
from records.outline import EditionOutline, OutlineEntry
from records.proto import (
    chunk_from_proto,
    chunk_to_proto,
    entry_from_proto,
    entry_to_proto,
    outline_from_proto,
    outline_to_proto,
)
from runtime.errors import Internal
from services.retrieval.index.payload import LEGACY_DEFAULTS, from_payload, to_payload
from services.retrieval.outlines import entry_from_json, entry_to_json, outline_from_json, outline_to_json

# Records the contracts and stores hold flat: their fields stand in the place of the record's field.
FLATTENED: tuple[type[Any], ...] = (Edition,)


def flat_fields(cls: type[Any]) -> set[str]:
    """A record's field names as its message and its stored form name them."""
    hints = typing.get_type_hints(cls)
    names: set[str] = set()
    for f in dataclasses.fields(cls):
        names |= flat_fields(hints[f.name]) if hints[f.name] in FLATTENED else {f.name}
    return names


def populated(cls: type[Any], depth: int = 1) -> Any:
    """An instance of the record with every field unlike its default; nested outline entries
    ``depth`` levels deep."""
    hints = typing.get_type_hints(cls)
    samples: dict[object, Callable[[str, int], object]] = {
        str: lambda name, i: f"{name} {i} é",
        int: lambda name, i: i + 7,
        bool: lambda name, i: True,
        tuple[str, ...]: lambda name, i: (f"{name} a", f"{name} b"),
        Edition: lambda name, i: populated(Edition),
        tuple[OutlineEntry, ...]: lambda name, i: (
            (populated(OutlineEntry, depth - 1), populated(OutlineEntry, depth - 1)) if depth > 0 else ()),
    }
    values: dict[str, object] = {}
    for i, f in enumerate(dataclasses.fields(cls)):
        kind = hints[f.name]
        assert kind in samples, f"no sample value for {cls.__name__}.{f.name} ({kind}): add one to populated()"
        values[f.name] = samples[kind](f.name, i)
        if depth > 0 and f.default is not dataclasses.MISSING:
            assert values[f.name] != f.default, f"{cls.__name__}.{f.name}"
    return cls(**values)


def message_fields(message: type[Message]) -> set[str]:
    return set(message.DESCRIPTOR.fields_by_name)


def assert_every_field_set(msg: Message, leaf_empty: frozenset[str] = frozenset()) -> None:
    """Every field of the message differs from its default, nested messages included (but for
    ``leaf_empty``, which the innermost ones leave empty)."""
    unset = {f.name for f in msg.DESCRIPTOR.fields} - {f.name for f, _ in msg.ListFields()} - leaf_empty
    assert not unset, f"{msg.DESCRIPTOR.name}: the converter leaves {sorted(unset)} unset"
    for f, value in msg.ListFields():
        if f.message_type is not None:
            for item in value if f.is_repeated else [value]:
                assert_every_field_set(item, leaf_empty)


# --- Chunk ------------------------------------------------------------------------------------


def test_a_chunk_has_the_same_fields_in_the_record_the_message_and_the_payload() -> None:
    payload = to_payload(populated(Chunk))
    assert flat_fields(Chunk) == message_fields(common_pb2.Chunk) == set(payload)
    # Only the keys added after the first release may be missing from a stored payload.
    assert set(LEGACY_DEFAULTS) == {"version", "locale", "other_version", "other_locale", "edit_url"}


def test_a_chunk_round_trips_through_its_message_and_its_payload() -> None:
    chunk = populated(Chunk)
    msg = chunk_to_proto(chunk)
    assert_every_field_set(msg)
    assert chunk_from_proto(common_pb2.Chunk.FromString(msg.SerializeToString())) == chunk
    # Through JSON, as pgvector keeps it (the Qdrant backends keep the same values).
    assert from_payload(json.loads(json.dumps(to_payload(chunk)))) == chunk


def test_a_payload_without_a_key_is_refused_unless_an_old_writer_left_it_out() -> None:
    chunk = populated(Chunk)
    payload = to_payload(chunk)
    for key in payload:
        partial = {k: v for k, v in payload.items() if k != key}
        if key in LEGACY_DEFAULTS:
            assert to_payload(from_payload(partial)) == {**payload, key: LEGACY_DEFAULTS[key]}, key
        else:
            with pytest.raises(Internal, match=f"no '{key}'"):
                from_payload(partial)
    # A chunk stored before versions, locales and edit links were read: the book's only edition.
    old = from_payload({k: v for k, v in payload.items() if k not in LEGACY_DEFAULTS})
    assert (old.edition, old.edit_url) == (SOLE_EDITION, "")
    assert dataclasses.replace(old, edition=chunk.edition, edit_url=chunk.edit_url) == chunk


def test_the_texts_a_chunk_is_searched_by() -> None:
    chunk = dataclasses.replace(populated(Chunk), heading_path=("Page", "", "Section"), content="Body.")
    assert chunk.embed_text == "Page > Section\n\nBody."
    assert chunk.keyword_text == "Page  Section Body."


# --- Outline ----------------------------------------------------------------------------------


def test_an_outline_has_the_same_fields_in_the_record_the_message_and_the_file() -> None:
    outline = populated(EditionOutline)
    assert flat_fields(OutlineEntry) == message_fields(rpb.OutlineEntry) == set(entry_to_json(outline.items[0]))
    assert flat_fields(EditionOutline) == message_fields(rpb.EditionOutline) == set(outline_to_json(outline))


def test_an_outline_round_trips_through_its_message_and_its_file() -> None:
    outline = populated(EditionOutline, depth=2)
    msg = outline_to_proto(outline)
    assert msg.items[0].items[0].label  # a category's entries come through too
    assert_every_field_set(msg, leaf_empty=frozenset({"items"}))
    assert outline_from_proto(rpb.EditionOutline.FromString(msg.SerializeToString())) == outline
    assert outline_from_json(json.loads(json.dumps(outline_to_json(outline)))) == outline
    entry = outline.items[1]
    assert entry_from_proto(entry_to_proto(entry)) == entry == entry_from_json(entry_to_json(entry))


def test_an_outline_file_missing_a_key_is_refused() -> None:
    data = outline_to_json(populated(EditionOutline))
    for key in data:
        with pytest.raises(KeyError):
            outline_from_json({k: v for k, v in data.items() if k != key})
    for key in set(data["items"][0]) - {"part"}:
        with pytest.raises(KeyError):
            entry_from_json({k: v for k, v in data["items"][0].items() if k != key})
    # Files written before parts were kept hold none.
    assert not entry_from_json({k: v for k, v in data["items"][0].items() if k != "part"}).part


# --- Edition ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("edition", "version", "locale", "matches"), [
    (SOLE_EDITION, "", "", True),  # a book without versions or locales: its only edition is the default
    (Edition("2.0", "en"), "", "", True),
    (Edition("next", "en", other_version=True), "", "", False),
    (Edition("next", "en", other_version=True), "next", "", True),
    (Edition("2.0", "fr", other_locale=True), "", "", False),
    (Edition("2.0", "fr", other_locale=True), "", "fr", True),
    (Edition("2.0", "fr", other_locale=True), "1.0", "fr", False),
])
def test_which_edition_a_reader_asking_for_a_version_and_locale_gets(edition: Edition, version: str, locale: str,
                                                                     matches: bool) -> None:
    assert edition.matches(version, locale) is matches
