"""Routes and anchors from the site's own build: the manifest docusaurus-plugin-lectern writes.

When a site publishes ``lectern-manifest.json`` with its docs (clients/docusaurus-plugin-lectern
writes one per locale at ``postBuild``: ``build/lectern-manifest.json`` for the default locale,
``build/<locale>/lectern-manifest.json`` for the others), its permalinks and heading ids are
the ones Docusaurus actually built, so ingest takes a chunk's URL from it instead of
recomputing it, and reports every chunk whose anchor the built page lacks.

Everything here is pure except ``load_manifest``, which reads the files.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

from records.chunk import Chunk
from runtime.errors import FieldViolation, InvalidArgument
from services.ingest.book.chunker import PageInfo, content_hash

MANIFEST_FILE = "lectern-manifest.json"
MANIFEST_SCHEMA = 1
MAX_MANIFEST_BYTES = 32 * 1024 * 1024  # one locale's manifest; ~200 bytes a heading id
CURRENT_VERSION = "current"  # Docusaurus's name for the docs folder's own version
DEFAULT_PLUGIN = "default"  # the docs plugin instance whose docs Lectern ingests


class ManifestError(InvalidArgument):
    """The manifest cannot be used; the message says which part and why."""

    def __init__(self, description: str) -> None:
        super().__init__(f"manifest: {description}", [FieldViolation("manifest", description)])


@dataclass(frozen=True)
class ManifestDoc:
    permalink: str  # the route Docusaurus built, baseUrl included, no anchor
    ids: frozenset[str]  # ids of the page's headings in the built HTML
    source: str  # the source file, relative to the site root
    unlisted: bool = False


class DocKey(NamedTuple):
    file: str  # relative to its version's (or translation's) docs folder, as chunks' file_path
    version: str  # "current" or a versions.json name
    locale: str


class ChunkRef(NamedTuple):
    """What ``resolve`` needs of a chunk; ``""`` version/locale mean the current version and
    the site's default locale."""

    file: str
    version: str
    locale: str
    anchor: str  # "" for a page's intro chunk


@dataclass(frozen=True)
class Manifest:
    default_locale: str
    docs: Mapping[DocKey, ManifestDoc] = field(default_factory=dict)

    def key(self, file: str, version: str, locale: str) -> DocKey:
        return DocKey(file, version or CURRENT_VERSION, locale or self.default_locale)

    def doc(self, file: str, version: str, locale: str) -> ManifestDoc | None:
        return self.docs.get(self.key(file, version, locale))


def resolve(manifest: Manifest, chunk: ChunkRef) -> str | None:
    """The URL path of ``chunk`` on the built site (``permalink#anchor``), or None when the
    manifest has no such doc (a draft, another plugin, a page added since the build). The
    anchor is kept even when the page lacks it: ``missing_anchors`` reports those."""
    doc = manifest.doc(chunk.file, chunk.version, chunk.locale)
    if doc is None:
        return None
    return f"{doc.permalink}#{chunk.anchor}" if chunk.anchor else doc.permalink


def missing_anchors(manifest: Manifest, chunks: Iterable[ChunkRef]) -> list[ChunkRef]:
    """Chunks whose page the manifest lists but whose anchor that built page does not have,
    in the order given; pages the manifest lacks are ``resolve``'s None, not listed here."""
    missing: list[ChunkRef] = []
    for chunk in chunks:
        doc = manifest.doc(chunk.file, chunk.version, chunk.locale)
        if doc is not None and chunk.anchor and chunk.anchor not in doc.ids:
            missing.append(chunk)
    return missing


def anchor_of(url: str) -> str:
    """The fragment of a chunk URL, ``""`` when it has none."""
    return url.partition("#")[2]


def chunk_ref(chunk: Chunk) -> ChunkRef:
    return ChunkRef(chunk.file_path, chunk.edition.version, chunk.edition.locale, anchor_of(chunk.url))


def apply_manifest(manifest: Manifest, chunks: Sequence[Chunk], origin: str = "") -> tuple[list[Chunk], list[Chunk]]:
    """``chunks`` with the URLs the build gave their pages (``origin``, such as
    ``https://docs.example.com``, put before them), and the chunks whose anchor the built page
    lacks. A chunk whose page the manifest does not list keeps its computed URL. A changed URL
    changes the content hash, as every stored field does (chunker.content_hash)."""
    out: list[Chunk] = []
    for chunk in chunks:
        path = resolve(manifest, chunk_ref(chunk))
        url = origin.rstrip("/") + path if path is not None else chunk.url
        if url != chunk.url:
            info = PageInfo(chunk.book, chunk.file_path, chunk.module, chunk.title, chunk.tags, "", chunk.edition,
                            chunk.edit_url)
            chunk = replace(chunk, url=url, content_hash=content_hash(chunk.embed_text, info, url, chunk.section_depth))
        out.append(chunk)
    lacking = {r for r in missing_anchors(manifest, [chunk_ref(c) for c in chunks])}
    return out, [c for c in out if chunk_ref(c) in lacking]


# --- Reading ------------------------------------------------------------------------------

def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise ManifestError(f"{where} must be a string")
    return value


def parse_manifest(data: object, plugin: str = DEFAULT_PLUGIN) -> Manifest:
    """One locale's manifest (the JSON the plugin writes) -> its docs of ``plugin``."""
    if not isinstance(data, dict):
        raise ManifestError("not a JSON object")
    if data.get("lectern_manifest") != MANIFEST_SCHEMA:
        raise ManifestError(f"lectern_manifest is {data.get('lectern_manifest')!r}; this Lectern reads "
                            f"version {MANIFEST_SCHEMA} (update docusaurus-plugin-lectern or Lectern)")
    default_locale = _text(data.get("defaultLocale"), "defaultLocale")
    entries = data.get("docs")
    if not isinstance(entries, list):
        raise ManifestError("docs must be a list")
    docs: dict[DocKey, ManifestDoc] = {}
    for i, entry in enumerate(entries):
        where = f"docs[{i}]"
        if not isinstance(entry, dict):
            raise ManifestError(f"{where} must be an object")
        if entry.get("plugin", DEFAULT_PLUGIN) != plugin:
            continue
        ids = entry.get("ids")
        if ids is None:  # the page's HTML was not written: no anchor can land on it
            ids = []
        if not isinstance(ids, list) or not all(isinstance(x, str) for x in ids):
            raise ManifestError(f"{where}.ids must be a list of strings")
        permalink = _text(entry.get("permalink"), f"{where}.permalink")
        if not permalink.startswith("/") or "#" in permalink:
            raise ManifestError(f"{where}.permalink must be a path starting with / and without #")
        key = DocKey(_text(entry.get("file"), f"{where}.file"), _text(entry.get("version"), f"{where}.version"),
                     _text(entry.get("locale"), f"{where}.locale"))
        docs[key] = ManifestDoc(permalink, frozenset(ids), _text(entry.get("source", ""), f"{where}.source"),
                                entry.get("unlisted") is True)
    return Manifest(default_locale, docs)


def _read_json(path: Path) -> object:
    try:
        size = path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise ManifestError(f"{path.name} is {size} bytes; the limit is {MAX_MANIFEST_BYTES}")
        return json.loads(path.read_bytes())
    except OSError as exc:
        raise ManifestError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ManifestError(f"{path} is not JSON: {exc}") from exc


def load_manifest(path: Path, plugin: str = DEFAULT_PLUGIN) -> Manifest:
    """A site's manifest from its build folder (or the default locale's manifest file), with
    every other locale's ``<locale>/lectern-manifest.json`` beside it merged in; a locale
    whose manifest is absent (built separately) is left out."""
    root = path / MANIFEST_FILE if path.is_dir() else path
    data = _read_json(root)
    manifest = parse_manifest(data, plugin)
    docs = dict(manifest.docs)
    assert isinstance(data, dict)  # parse_manifest checked it
    locales = data.get("locales", [])
    if not isinstance(locales, list) or not all(isinstance(x, str) for x in locales):
        raise ManifestError("locales must be a list of strings")
    for locale in locales:
        other = root.parent / locale / MANIFEST_FILE
        if locale != data.get("locale") and "/" not in locale and other.is_file():
            docs.update(parse_manifest(_read_json(other), plugin).docs)
    return Manifest(manifest.default_locale, docs)
