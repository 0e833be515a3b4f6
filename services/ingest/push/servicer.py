"""IngestService with the push RPCs: protobuf in and out, the work in ``store``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from lectern.ingest.v1 import ingest_service_pb2 as pb

from runtime.errors import InvalidArgument
from services.ingest.push.store import FileDigest, PlanRequest, PushOptions, PushStore
from services.ingest.servicer import STATUS, IngestServicer, summary_to_proto
from services.ingest.sync import EmbedEvent, FileEvent, Ingestor, Summary


class PushingIngestServicer(IngestServicer):
    def __init__(self, ingestor: Ingestor, roots: Sequence[Path], pushes: PushStore) -> None:
        super().__init__(ingestor, roots)
        self.pushes = pushes

    async def PlanPush(self, request: pb.PlanPushRequest, context: Any) -> pb.PlanPushResponse:
        files: dict[str, FileDigest] = {}
        for f in request.files:
            if f.path in files:
                raise InvalidArgument.of(f"files[{f.path!r}]", "is listed twice")
            files[f.path] = FileDigest(f.sha256, f.size)
        o = request.options
        plan = self.pushes.plan(PlanRequest(
            request.book or "default", files, request.dry_run, request.holder,
            PushOptions(o.base_url, o.route_base_path, o.trailing_slash, o.include_drafts, o.last_version,
                        tuple(o.only_include_versions))))
        limits = self.pushes.limits
        return pb.PlanPushResponse(
            push_id=plan.push_id, added=plan.added, changed=plan.changed, deleted=plan.deleted,
            unchanged=plan.unchanged, upload=plan.upload, upload_bytes=plan.upload_bytes, up_to_date=plan.up_to_date,
            lease_seconds=limits.lease_seconds,
            limits=pb.PushLimits(max_files=limits.max_files, max_file_bytes=limits.max_file_bytes,
                                 max_total_bytes=limits.max_total_bytes))

    async def UploadPush(self, request_iterator: AsyncIterator[pb.UploadPushRequest],
                         context: Any) -> pb.UploadPushResponse:
        messages = request_iterator.__aiter__()
        first = await anext(messages, None)
        if first is None or first.WhichOneof("part") != "start":
            raise InvalidArgument.of("start", "the first message of an upload must be its start")
        start = first.start

        async def data() -> AsyncIterator[bytes]:
            async for message in messages:
                if message.WhichOneof("part") != "data":
                    raise InvalidArgument.of("start", "only the first message of an upload may be its start")
                yield message.data

        result = await self.pushes.upload(start.book or "default", start.push_id, start.encoding, data())
        return pb.UploadPushResponse(files_received=result.files_received, bytes_received=result.bytes_received,
                                     missing=result.missing)

    async def ApplyPush(self, request: pb.ApplyPushRequest, context: Any) -> AsyncIterator[pb.ApplyPushResponse]:
        async for event in self.pushes.apply(request.book or "default", request.push_id):
            if isinstance(event, FileEvent):
                yield pb.ApplyPushResponse(progress=pb.FileProgress(
                    file_path=event.file_path, status=STATUS[event.status], reason=event.reason,
                    chunks=event.chunks, files_done=event.files_done, files_total=event.files_total))
            elif isinstance(event, EmbedEvent):
                yield pb.ApplyPushResponse(embedding=pb.EmbedProgress(
                    chunks_embedded=event.chunks_embedded, chunks_total=event.chunks_total))
            elif isinstance(event, Summary):
                yield pb.ApplyPushResponse(summary=summary_to_proto(event))
