"""Protobuf messages <-> retrieval's own domain types (chunks and outlines convert in `records.proto`)."""

from __future__ import annotations

from lectern.common.v1 import common_pb2

from embedding.base import EmbedderSpec
from services.retrieval.index.base import Filter


def filter_from_proto(msg: common_pb2.SearchFilter) -> Filter:
    return Filter(book=msg.book, file_path=msg.file_path, file_path_prefix=msg.file_path_prefix,
                  module=msg.module, max_section_depth=msg.max_section_depth, version=msg.version,
                  locale=msg.locale, default_version=msg.default_version, default_locale=msg.default_locale)


def embedder_to_proto(spec: EmbedderSpec | None) -> common_pb2.EmbedderInfo:
    if spec is None:
        return common_pb2.EmbedderInfo()
    return common_pb2.EmbedderInfo(name=spec.name, dimension=spec.dimension)
