"""The upload's tar archive, read as its bytes arrive (optionally gzip-compressed), and written
by the client one file at a time.

Only regular files (and folders, which are skipped) are accepted: a link, device or FIFO
entry is refused, as is a name that is not UTF-8. Inflated bytes are counted as they come out,
so a small gzip stream that expands without bound (an archive bomb) is cut at the limit."""

from __future__ import annotations

import tarfile
import zlib
from dataclasses import dataclass

from runtime.errors import FieldViolation, InvalidArgument, ResourceExhausted

BLOCK = 512
END_OF_ARCHIVE = b"\0" * (2 * BLOCK)
MAX_HEADER_DATA = 64 * 1024  # a pax or GNU long-name header's own data
_INFLATE_STEP = 256 * 1024
_REGULAR = (b"0", b"\0", b"7")
_LINKS = (b"1", b"2", b"K")


class ArchiveError(InvalidArgument):
    def __init__(self, description: str) -> None:
        super().__init__(f"archive: {description}", [FieldViolation("archive", description)])


class TooLarge(ResourceExhausted):
    """Over a push limit; the gateway answers 413 (not 429: waiting does not help)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retry_after_seconds=0)


@dataclass(frozen=True)
class Begin:
    path: str
    size: int


@dataclass(frozen=True)
class Data:
    data: bytes


@dataclass(frozen=True)
class End:
    path: str


Event = Begin | Data | End


class TarReader:
    """Feed it the archive's bytes; it returns what they completed. ``max_bytes`` bounds the
    archive after inflating."""

    def __init__(self, encoding: str, max_bytes: int) -> None:
        if encoding not in ("", "gzip"):
            raise ArchiveError(f"encoding {encoding!r} is not supported (use none or gzip)")
        self._inflate = zlib.decompressobj(wbits=31) if encoding == "gzip" else None
        self.max_bytes = max_bytes
        self.expanded = 0
        self._buf = bytearray()
        self._entry: str | None = None  # the regular file being read
        self._remaining = 0  # its bytes still to come
        self._pad = 0  # padding to the next block after it
        self._special: bytes | None = None  # b"x" or b"L": a header whose data names the next entry
        self._next_path: str | None = None
        self._zero_blocks = 0
        self.finished = False

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        for plain in self._plain(data):
            self.expanded += len(plain)
            if self.expanded > self.max_bytes:
                raise TooLarge(f"the archive holds more than the {self.max_bytes} bytes the plan allows")
            self._buf += plain
            self._parse(events)
        return events

    def close(self) -> None:
        """The archive's bytes are all in: refuses one that stopped inside an entry."""
        if self._inflate is not None and not self._inflate.eof:
            raise ArchiveError("the gzip stream ended early")
        if self._entry is not None or self._special is not None or self._pad or (self._buf and not self.finished):
            raise ArchiveError(f"the archive ended early{f' inside {self._entry}' if self._entry else ''}")

    def _plain(self, data: bytes) -> list[bytes]:
        if self._inflate is None:
            return [data]
        out: list[bytes] = []
        pending = data
        while pending:
            if self._inflate.eof:
                raise ArchiveError("bytes after the end of the gzip stream")
            try:
                chunk = self._inflate.decompress(pending, _INFLATE_STEP)
            except zlib.error as exc:
                raise ArchiveError(f"not a valid gzip stream ({exc})") from None
            if chunk:
                out.append(chunk)
                if self.expanded + sum(map(len, out)) > self.max_bytes:
                    break  # feed refuses it; inflating further would be the bomb
            pending = self._inflate.unconsumed_tail
            if self._inflate.eof and self._inflate.unused_data:
                raise ArchiveError("bytes after the end of the gzip stream")
        return out

    def _parse(self, events: list[Event]) -> None:
        while True:
            if self._entry is not None:
                if not self._buf:
                    return
                take = bytes(self._buf[:self._remaining])
                del self._buf[:len(take)]
                self._remaining -= len(take)
                if take:
                    events.append(Data(take))
                if self._remaining:
                    return
                events.append(End(self._entry))
                self._entry = None
                continue
            if self._pad:
                drop = min(self._pad, len(self._buf))
                del self._buf[:drop]
                self._pad -= drop
                if self._pad:
                    return
            if self._special is not None:
                if len(self._buf) < self._remaining:
                    return
                body = bytes(self._buf[:self._remaining])
                del self._buf[:self._remaining]
                self._pad = -self._remaining % BLOCK
                self._remaining = 0
                self._next_path = _special_path(self._special, body)
                self._special = None
                continue
            if len(self._buf) < BLOCK:
                return
            block = bytes(self._buf[:BLOCK])
            del self._buf[:BLOCK]
            if self.finished:
                if block.strip(b"\0"):
                    raise ArchiveError("data after the end of the archive")
                continue
            if not block.strip(b"\0"):
                self._zero_blocks += 1
                self.finished = self._zero_blocks >= 2
                continue
            self._zero_blocks = 0
            self._header(block, events)

    def _header(self, block: bytes, events: list[Event]) -> None:
        _check_sum(block)
        kind = block[156:157]
        size = _number(block[124:136])
        name = self._next_path if self._next_path is not None else _name(block)
        self._next_path = None
        if kind in (b"x", b"L"):
            if size > MAX_HEADER_DATA:
                raise ArchiveError(f"an extended header of {size} bytes (the limit is {MAX_HEADER_DATA})")
            self._special, self._remaining = kind, size
            return
        if kind == b"g":
            raise ArchiveError("global pax headers are not accepted")
        if kind in _LINKS:
            raise ArchiveError(f"{name} is a link; only regular files are accepted")
        if kind == b"5":
            if size:
                raise ArchiveError(f"folder {name} has a size")
            return
        if kind not in _REGULAR:
            raise ArchiveError(f"{name} is not a regular file (tar type {kind.decode('latin-1')!r})")
        path = name.removeprefix("./")
        self._entry, self._remaining, self._pad = path, size, -size % BLOCK
        events.append(Begin(path, size))
        if size == 0:
            events.append(End(path))
            self._entry = None


def _check_sum(block: bytes) -> None:
    try:
        stored = int(block[148:156].strip(b"\0 ").decode("ascii") or "-1", 8)
    except ValueError:
        raise ArchiveError("a header's checksum is not a number") from None
    unsigned = sum(block[:148]) + 8 * 32 + sum(block[156:])
    signed = unsigned - sum(256 for b in (*block[:148], *block[156:]) if b > 127)
    if stored not in (unsigned, signed):
        raise ArchiveError("a header's checksum does not match (not a tar archive, or a damaged one)")


def _number(field: bytes) -> int:
    if field[:1] and field[0] & 0x80:
        raise ArchiveError("a size in base-256 (over 8 GiB) is not accepted")
    try:
        return int(field.strip(b"\0 ").decode("ascii") or "0", 8)
    except ValueError:
        raise ArchiveError("a header's size is not a number") from None


def _utf8(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ArchiveError(f"{what} is not UTF-8") from None


def _name(block: bytes) -> str:
    name = block[0:100].split(b"\0", 1)[0]
    if block[257:262] == b"ustar" and block[345:346] != b"\0":
        name = block[345:500].split(b"\0", 1)[0] + b"/" + name
    return _utf8(name, "an entry's name")


def _special_path(kind: bytes, body: bytes) -> str | None:
    """The next entry's name from a GNU long-name header (``L``) or a pax header's ``path``."""
    if kind == b"L":
        return _utf8(body.split(b"\0", 1)[0], "an entry's long name")
    path = None
    rest = body
    while rest:
        head, _, _ = rest.partition(b" ")
        try:
            length = int(head)
        except ValueError:
            raise ArchiveError("a pax header is malformed") from None
        record, rest = rest[:length], rest[length:]
        if length <= len(head) or not record.endswith(b"\n"):
            raise ArchiveError("a pax header is malformed")
        key, _, value = record[len(head) + 1:-1].partition(b"=")
        if key == b"path":
            path = _utf8(value, "an entry's pax path")
        elif key in (b"linkpath", b"size"):
            raise ArchiveError(f"pax {key.decode()} records are not accepted")
    return path


def entry_header(path: str, size: int) -> bytes:
    """A regular file's tar header (pax for a long or non-ASCII path), for the client."""
    info = tarfile.TarInfo(path)
    info.size, info.mode, info.mtime = size, 0o644, 0
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict")


def padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)
