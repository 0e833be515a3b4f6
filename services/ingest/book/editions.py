"""What one ingest reads: a docs folder, or every version and locale of a Docusaurus site as
one book, each with the folder of its pages and the routes Docusaurus serves them at.

The rules follow Docusaurus 3 (sources under
https://github.com/facebook/docusaurus/blob/main/packages/ , checked against the 3.10.2 npm
package):

- versions (``docusaurus-plugin-content-docs/src/versions/files.ts``, ``readVersionNames``):
  ``versions.json`` newest first, with ``current`` (the docs folder) put first unless
  ``includeCurrentVersion: false`` or already listed; ``disableVersioning`` keeps ``current``
  only; ``onlyIncludeVersions`` filters (``versions/version.ts``, ``filterVersions``);
- the last version (``getLastVersionName``): the ``lastVersion`` option, else the first
  released version, else ``current``;
- a version's route (``getVersionPathPart``, ``createVersionMetadata``): ``versions.<name>.path``,
  else ``""`` for the last version, ``next`` for ``current``, the name for the others, joined
  as ``normalizeUrl([baseUrl, routeBasePath, pathPart])``;
- a released version's pages are in ``versioned_docs/version-<name>/`` (``getVersionDocsDirPath``);
- a locale other than the default is served under ``<baseUrl><locale>/``
  (``getInferredBaseUrl``, ``docusaurus/src/server/i18n.ts``); its translated pages are in
  ``i18n/<locale path>/docusaurus-plugin-content-docs/<current|version-<name>>/``
  (``getDocsDirPathLocalized``); Docusaurus builds the pages of the original folder only, each
  from its translation when one exists (``readVersionDocs`` globs the original folder,
  ``readDocFile`` picks the first folder holding the file), so a translation without an original
  is never built, and an untranslated page serves the original text (not ingested twice);
- edit links (``getVersionEditUrls``, ``getDocEditUrl``): ``normalizeUrl([editUrl, <the
  version's folder relative to the site root>, <file>])``; a translation links to its original
  (``editLocalizedFiles`` defaults to false).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from records.edition import SOLE_EDITION, Edition
from runtime.errors import InvalidArgument
from services.ingest.book.globs import GlobError, PageGlobs
from services.ingest.book.site import (
    DocsPlugin,
    SiteConfig,
    SiteOverrides,
    is_site_root,
    read_site,
    site_routes,
    versions_known,
    with_given,
)
from services.ingest.book.slugs import RouteOptions, normalize_url

DEFAULT_DOCS_URL = "/docs/"  # where a docs folder is served when the caller does not say
DOCS_FOLDER_ROUTES = RouteOptions.under(DEFAULT_DOCS_URL)
CURRENT = "current"  # Docusaurus's name for the docs folder's version


@dataclass(frozen=True)
class DocsSource:
    """One version in one locale: the folder of its pages and where they are served."""

    docs_dir: Path  # the version's original pages (absolute)
    routes: RouteOptions
    edition: Edition = SOLE_EDITION
    translated_dir: Path | None = None  # a locale's translations of docs_dir's pages
    label: str = ""  # the folder read, relative to the site root, for progress ("" for a docs folder)
    edit_base: str = ""  # edit link of the folder; a page's is this plus its path
    include: tuple[str, ...] | None = None  # the docs plugin's globs; None: Docusaurus's defaults
    exclude: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Plan:
    sources: tuple[DocsSource, ...]
    warnings: tuple[str, ...] = ()


def plan_source(path: Path, base_url: str | None = None, overrides: SiteOverrides | None = None,
                allowed_roots: Sequence[Path] = ()) -> Plan:
    """The sources of ``path``: a site root's versions and locales, or a docs folder served at
    ``base_url`` (default /docs/). Reads files: run it off the event loop."""
    overrides = overrides or SiteOverrides()
    if is_site_root(path):
        return plan_site(read_site(path), replace(overrides, base_url=base_url), allowed_roots)
    if overrides.route_base_path is not None:
        raise InvalidArgument.of("route_base_path", f"{path} is a docs folder, not a Docusaurus site root (no "
                                 "docusaurus.config.*): give the docs' whole URL with --base-url instead")
    trailing = overrides.trailing_slash
    routes = RouteOptions.under(base_url) if base_url else DOCS_FOLDER_ROUTES
    if trailing is not None:
        routes = replace(routes, trailing_slash=None if trailing == "unset" else trailing)
    return Plan((DocsSource(path, routes),))


def plan_site(site: SiteConfig, overrides: SiteOverrides, allowed_roots: Sequence[Path] = ()) -> Plan:
    site = with_given(site, overrides)
    found = site_routes(site, overrides, allowed_roots)  # raises on what it cannot read and must
    docs = site.docs
    assert docs is not None  # site_routes refuses a site without docs
    warnings = [*site.notes, *(u.message for u in site.unreadable if not u.affects_routes)]
    default_locale = site.i18n.default_locale
    docs_label = Path(os.path.normpath(docs.path)).as_posix()
    try:  # refused here, before any page is read, rather than mid-ingest
        PageGlobs(found.docs_dir, docs.include, docs.exclude)
    except GlobError as exc:
        raise InvalidArgument.of("source_dir", f"the docs plugin's include/exclude in {site.config_file.name}: "
                                 f"{exc}") from None
    if not versions_known(site):
        # The caller's route is the docs folder's whole route; no other version can be placed.
        warnings.append("only the docs folder is ingested: the site's versions could not be read")
        edition = Edition(CURRENT, default_locale)
        return Plan((DocsSource(found.docs_dir, found.routes, edition, label=docs_label,
                                edit_base=_edit_base(docs, docs_label), include=docs.include,
                                exclude=docs.exclude),), tuple(warnings))

    names, last = version_names(docs, site.versions)
    originals: list[tuple[str, Path, str]] = []  # (version, folder, label)
    for name in names:
        if name == CURRENT:
            originals.append((name, found.docs_dir, docs_label))
            continue
        label = f"versioned_docs/version-{name}"
        folder = site.root / label
        if not folder.is_dir():
            warnings.append(f"version {name} is in versions.json but {label} does not exist (Docusaurus "
                            "refuses to build such a site); it is not ingested")
            continue
        originals.append((name, folder.resolve(), label))

    sources: list[DocsSource] = []
    for name, folder, label in originals:
        routes = replace(found.routes, version_path=version_path(docs, name, last))
        edit_base = _edit_base(docs, label)
        sources.append(DocsSource(folder, routes, Edition(name, default_locale, name != last), label=label,
                                  edit_base=edit_base, include=docs.include, exclude=docs.exclude))
        # Translations of this version (site.locale_dirs covers every locale but the default);
        # a locale without any serves the original pages, which are not ingested twice.
        for translated in (d for d in site.locale_dirs if d.version == name and d.exists):
            locale_base = normalize_url(["/", found.routes.base_url, translated.locale, "/"])
            locale_routes = replace(routes, base_url=locale_base)
            sources.append(DocsSource(folder, locale_routes, Edition(name, translated.locale, name != last, True),
                                      (site.root / translated.path).resolve(), Path(translated.path).as_posix(),
                                      edit_base, docs.include, docs.exclude))
    return Plan(tuple(sources), tuple(warnings))


def version_names(docs: DocsPlugin, released: Sequence[str]) -> tuple[list[str], str]:
    """The versions Docusaurus builds, newest first, and the last one (served at the docs
    root unless its ``path`` says otherwise)."""
    names = [] if docs.disable_versioning else list(released)
    if docs.include_current_version and CURRENT not in names:
        names.insert(0, CURRENT)
    if docs.only_include_versions is not None:
        names = [n for n in names if n in docs.only_include_versions]
    last = docs.last_version or next((n for n in names if n != CURRENT), CURRENT)
    return names, last


def version_path(docs: DocsPlugin, name: str, last: str) -> str:
    own = next((v.path for v in docs.versions if v.name == name and v.path is not None), None)
    if own is not None:
        return own
    return "" if name == last else "next" if name == CURRENT else name


def _edit_base(docs: DocsPlugin, label: str) -> str:
    return normalize_url([docs.edit_url, label]) if docs.edit_url else ""
