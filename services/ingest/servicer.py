"""IngestService over gRPC: validate, run the sync, stream its events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from lectern.ingest.v1 import ingest_service_pb2 as pb
from lectern.ingest.v1 import ingest_service_pb2_grpc as pb_grpc

from runtime import limits
from runtime.errors import InvalidArgument, Violations
from runtime.text import check_storable
from services.ingest.book.site import SiteOverrides, check_given_versions, parse_trailing_slash
from services.ingest.sync import EmbedEvent, FileEvent, Ingestor, Summary, plan_job

STATUS = {"ingested": pb.FILE_STATUS_INGESTED, "skipped": pb.FILE_STATUS_SKIPPED, "failed": pb.FILE_STATUS_FAILED}


def summary_to_proto(s: Summary) -> pb.IngestSummary:
    return pb.IngestSummary(
        files_seen=s.files_seen, files_skipped=s.files_skipped,
        failed=[pb.FailedFile(file_path=p, reason=r) for p, r in s.failed],
        chunks_new=s.chunks_new, chunks_changed=s.chunks_changed, chunks_deleted=s.chunks_deleted,
        chunks_unchanged=s.chunks_unchanged, tokens_embedded=s.tokens_embedded, seconds=s.seconds,
        dry_run=s.dry_run, embed_seconds=s.embed_seconds, chunks_reused=s.chunks_reused, warnings=s.warnings,
    )


class IngestServicer(pb_grpc.IngestServiceServicer):
    def __init__(self, ingestor: Ingestor, roots: Sequence[Path]) -> None:
        self.ingestor = ingestor
        self.roots = roots

    async def Ingest(self, request: pb.IngestRequest, context: Any) -> AsyncIterator[pb.IngestResponse]:
        v = Violations()
        book = request.book or "default"
        if len(book) > limits.BOOK_CHARS or not book.strip():
            v.add("book", f"must be 1 to {limits.BOOK_CHARS} characters")
        base_url = request.base_url  # "" = not given: a site's own baseUrl, or /docs/ for a docs folder
        if base_url and not (base_url.startswith("/") or base_url.startswith(("http://", "https://"))):
            v.add("base_url", "must start with / or http(s)://")
        for field, value, most in (("route_base_path", request.route_base_path, limits.URL_CHARS),
                                   ("base_url", base_url, limits.URL_CHARS),
                                   ("source_dir", request.source_dir, limits.SOURCE_PATH_CHARS),
                                   ("manifest", request.manifest, limits.SOURCE_PATH_CHARS)):
            if len(value) > most:
                v.add(field, f"must be at most {most} characters")
        if not request.source_dir.strip():
            v.add("source_dir", "must not be empty")
        versions = tuple(request.only_include_versions)
        check_given_versions(v, "", request.last_version, versions)
        for field, value in (("book", book), ("base_url", base_url), ("source_dir", request.source_dir),
                             ("route_base_path", request.route_base_path), ("manifest", request.manifest)):
            check_storable(v, field, value)
        trailing_slash = None
        try:
            trailing_slash = parse_trailing_slash(request.trailing_slash)
        except InvalidArgument as exc:
            v.items += exc.violations
        v.raise_if_any()
        overrides = SiteOverrides(route_base_path=request.route_base_path or None, trailing_slash=trailing_slash,
                                  last_version=request.last_version or None,
                                  only_include_versions=versions or None)
        job = await plan_job(request.source_dir, self.roots, book, base_url or None, overrides, request.dry_run,
                             request.reindex, request.include_drafts, request.manifest)
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
