"""Outlines between their protobuf messages and the store's types."""

from __future__ import annotations

from lectern.retrieval.v1 import retrieval_service_pb2 as pb

from services.retrieval.outlines import EditionOutline, Entry


def entry_from_proto(m: pb.OutlineEntry) -> Entry:
    return Entry(m.category, m.label, m.title, m.url, m.file_path, m.description,
                 tuple(entry_from_proto(i) for i in m.items))


def entry_to_proto(e: Entry) -> pb.OutlineEntry:
    return pb.OutlineEntry(category=e.category, label=e.label, title=e.title, url=e.url, file_path=e.file_path,
                           description=e.description, items=[entry_to_proto(i) for i in e.items])


def edition_from_proto(m: pb.EditionOutline) -> EditionOutline:
    return EditionOutline(m.version, m.locale, m.other_version, m.other_locale,
                          tuple(entry_from_proto(i) for i in m.items))


def edition_to_proto(e: EditionOutline) -> pb.EditionOutline:
    return pb.EditionOutline(version=e.version, locale=e.locale, other_version=e.other_version,
                             other_locale=e.other_locale, items=[entry_to_proto(i) for i in e.items])
