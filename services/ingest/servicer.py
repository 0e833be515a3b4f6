"""IngestService over gRPC: validate, run the sync, stream its events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from lectern.ingest.v1 import ingest_service_pb2 as pb
from lectern.ingest.v1 import ingest_service_pb2_grpc as pb_grpc

from runtime.errors import Violations
from runtime.text import check_storable
from services.ingest.sync import EmbedEvent, FileEvent, IngestJob, Ingestor, Summary, resolve_source

STATUS = {"ingested": pb.FILE_STATUS_INGESTED, "skipped": pb.FILE_STATUS_SKIPPED, "failed": pb.FILE_STATUS_FAILED}


def summary_to_proto(s: Summary) -> pb.IngestSummary:
    return pb.IngestSummary(
        files_seen=s.files_seen, files_skipped=s.files_skipped,
        failed=[pb.FailedFile(file_path=p, reason=r) for p, r in s.failed],
        chunks_new=s.chunks_new, chunks_changed=s.chunks_changed, chunks_deleted=s.chunks_deleted,
        chunks_unchanged=s.chunks_unchanged, tokens_embedded=s.tokens_embedded, seconds=s.seconds,
        dry_run=s.dry_run, embed_seconds=s.embed_seconds, chunks_reused=s.chunks_reused,
    )


class IngestServicer(pb_grpc.IngestServiceServicer):
    def __init__(self, ingestor: Ingestor, roots: Sequence[Path]) -> None:
        self.ingestor = ingestor
        self.roots = roots

    async def Ingest(self, request: pb.IngestRequest, context: Any) -> AsyncIterator[pb.IngestResponse]:
        v = Violations()
        book = request.book or "default"
        if len(book) > 200 or not book.strip():
            v.add("book", "must be 1 to 200 characters")
        base_url = request.base_url or "/docs/"
        if not (base_url.startswith("/") or base_url.startswith(("http://", "https://"))):
            v.add("base_url", "must start with / or http(s)://")
        if not request.source_dir.strip():
            v.add("source_dir", "must not be empty")
        for field, value in (("book", book), ("base_url", base_url), ("source_dir", request.source_dir)):
            check_storable(v, field, value)
        v.raise_if_any()
        job = IngestJob(resolve_source(request.source_dir, self.roots), book, base_url, request.dry_run,
                        request.reindex, request.include_drafts)
        async for event in self.ingestor.run(job):
            if isinstance(event, FileEvent):
                yield pb.IngestResponse(progress=pb.FileProgress(
                    file_path=event.file_path, status=STATUS[event.status], reason=event.reason,
                    chunks=event.chunks, files_done=event.files_done, files_total=event.files_total,
                ))
            elif isinstance(event, EmbedEvent):
                yield pb.IngestResponse(embedding=pb.EmbedProgress(
                    chunks_embedded=event.chunks_embedded, chunks_total=event.chunks_total))
            else:
                yield pb.IngestResponse(summary=summary_to_proto(event))
