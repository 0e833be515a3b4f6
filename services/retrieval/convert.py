"""Protobuf messages <-> retrieval's domain records."""

from __future__ import annotations

from lectern.common.v1 import common_pb2

from embedding.base import EmbedderSpec
from services.retrieval.index.base import Filter, StoredChunk


def chunk_from_proto(msg: common_pb2.Chunk) -> StoredChunk:
    return StoredChunk(
        chunk_id=msg.chunk_id, book=msg.book, file_path=msg.file_path, module=msg.module,
        heading_path=tuple(msg.heading_path), section_depth=msg.section_depth, content=msg.content,
        token_count=msg.token_count, content_hash=msg.content_hash, title=msg.title, tags=tuple(msg.tags),
        position=msg.position, url=msg.url, version=msg.version, locale=msg.locale,
        other_version=msg.other_version, other_locale=msg.other_locale, edit_url=msg.edit_url,
    )


def chunk_to_proto(chunk: StoredChunk) -> common_pb2.Chunk:
    return common_pb2.Chunk(
        chunk_id=chunk.chunk_id, book=chunk.book, file_path=chunk.file_path, module=chunk.module,
        heading_path=list(chunk.heading_path), section_depth=chunk.section_depth, content=chunk.content,
        token_count=chunk.token_count, content_hash=chunk.content_hash, title=chunk.title,
        tags=list(chunk.tags), position=chunk.position, url=chunk.url, version=chunk.version,
        locale=chunk.locale, other_version=chunk.other_version, other_locale=chunk.other_locale,
        edit_url=chunk.edit_url,
    )


def filter_from_proto(msg: common_pb2.SearchFilter) -> Filter:
    return Filter(book=msg.book, file_path=msg.file_path, file_path_prefix=msg.file_path_prefix,
                  module=msg.module, max_section_depth=msg.max_section_depth, version=msg.version,
                  locale=msg.locale, default_version=msg.default_version, default_locale=msg.default_locale)


def embedder_to_proto(spec: EmbedderSpec | None) -> common_pb2.EmbedderInfo:
    if spec is None:
        return common_pb2.EmbedderInfo()
    return common_pb2.EmbedderInfo(name=spec.name, dimension=spec.dimension)
