"""A Docusaurus site root read without Node: the settings that decide where each doc is
served, read from ``docusaurus.config.*`` (see ``literal``), ``versions.json`` and the
folders of versions and translations.

Each rule names the Docusaurus 3 source it follows, under
https://github.com/facebook/docusaurus/blob/main/packages/ :

- the config file: ``docusaurus.config`` + ``.ts .mts .cts .js .mjs .cjs``, first found
  (``findConfig``, ``docusaurus/src/server/config.ts``); a function is called and awaited;
- ``baseUrl`` gains a leading and trailing slash, ``routeBasePath`` a leading one
  (``BaseUrlSchema``, ``docusaurus/src/server/configValidation.ts``; ``RouteBasePathSchema``,
  ``docusaurus-utils-validation/src/validationSchemas.ts``);
- the docs plugin comes from the classic preset's ``docs`` option (``false`` turns it off;
  ``docusaurus-preset-classic/src/index.ts``), from that of a preset that extends the classic one
  (it has a ``docs`` option), or from a ``plugins`` entry; a module may be named through
  ``require.resolve('name')``; short names resolve as
  ``getNamePatterns`` does (``docusaurus/src/server/plugins/moduleShorthand.ts``);
- options and defaults: ``docusaurus-plugin-content-docs/src/options.ts``; versions and their
  routes: ``versions/files.ts`` and ``versions/version.ts`` (``getVersionPathPart``,
  ``getLastVersionName``); translated docs: ``getPluginI18nPath``
  (``docusaurus-utils/src/i18nUtils.ts``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from runtime.errors import InvalidArgument, Violations
from runtime.limits import GIVEN_VERSIONS, VERSION_CHARS
from runtime.text import check_storable
from services.ingest.book import npm2yarn, twoslash
from services.ingest.book.parser import MARKDOWN_FORMATS
from services.ingest.book.site.literal import (
    MAX_SOURCE_BYTES,
    TYPESCRIPT_SUFFIXES,
    UNDEFINED,
    Computed,
    JsArray,
    JsObject,
    JsValue,
    SourceError,
    read_module,
)
from services.ingest.book.site.lock import locked_versions
from services.ingest.book.site.navbar import NavbarLink, read_navbar
from services.ingest.book.site_code import DIRECTIVES
from services.ingest.book.slugs import RouteOptions

CONFIG_NAME = "docusaurus.config"
CONFIG_EXTENSIONS = (".ts", ".mts", ".cts", ".js", ".mjs", ".cjs")  # Docusaurus's search order
CURRENT = "current"  # Docusaurus's name for the docs folder's version
_DEFAULT_ID = "default"
_UNKNOWN_ID = "?"  # a docs plugin instance whose options (id included) cannot be read
_DOCS_PLUGIN_DIR = "docusaurus-plugin-content-docs"
_CLASSIC_PRESETS = {"classic", "@docusaurus/preset-classic", "docusaurus-preset-classic"}
_DOCS_PLUGINS = {"content-docs", "@docusaurus/plugin-content-docs", "docusaurus-plugin-content-docs"}

# Config keys that decide routes, and how a user gives each when the config computes it.
_WHOLE_ROUTE = ("the docs' whole route under baseUrl, version included (e.g. docs/next), with "
                "--route-base-path or the IngestRequest field route_base_path")
_HINTS: dict[str, str] = {
    "baseUrl": "give it with --base-url or the IngestRequest field base_url",
    "trailingSlash": "give it with --trailing-slash (true, false or unset) or the IngestRequest field "
                     "trailing_slash",
    "docs.routeBasePath": "give it with --route-base-path or the IngestRequest field route_base_path",
    "docs.path": "ingest the docs folder itself (its path as source_dir) and give --base-url and "
                 "--route-base-path (IngestRequest fields base_url, route_base_path)",
    "docs.lastVersion": "give the version served at the docs' root with --last-version (IngestRequest field "
                        "last_version), e.g. current or a versions.json name, or " + _WHOLE_ROUTE,
    "docs.onlyIncludeVersions": "give the versions the site publishes with --only-include-versions "
                                "(IngestRequest field only_include_versions), e.g. current,1.0, or " + _WHOLE_ROUTE,
    "docs.disableVersioning": "give " + _WHOLE_ROUTE,
    "docs.includeCurrentVersion": "give " + _WHOLE_ROUTE,
    "docs.versions": "give " + _WHOLE_ROUTE,
    "docs.versions.current.path": "give " + _WHOLE_ROUTE,
    "versions.json": "give " + _WHOLE_ROUTE,
}
# Keys ingest reads but can do without: what it does instead.
_READ_AS_DEFAULT: dict[str, str] = {
    "markdown.format": "pages are read as MDX, Docusaurus's default",
    # Only the config says which locales are built (a translation folder may be one it leaves out),
    # so none is guessed from the folders: pnpm.io's `locales: LOCALE_CI ? [LOCALE_CI] : LOCALES`.
    "i18n.locales": "only the default locale's pages are ingested, no translation",
    "i18n.defaultLocale": "the default locale is taken to be en",
}
_OVERRIDDEN_BY: dict[str, str] = {  # which override makes an unreadable key irrelevant
    "baseUrl": "base_url", "trailingSlash": "trailing_slash", "docs.routeBasePath": "route_base_path",
    "docs.lastVersion": "route_base_path", "docs.onlyIncludeVersions": "route_base_path",
    "docs.disableVersioning": "route_base_path", "docs.includeCurrentVersion": "route_base_path",
    "docs.versions": "route_base_path", "docs.versions.current.path": "route_base_path",
    "versions.json": "route_base_path",
}
_FIELD_OF: dict[str, str] = {"docs.path": "source_dir"}
_PICK_LAST = {"docs.lastVersion", "docs.onlyIncludeVersions", "docs.disableVersioning"}
_VERSION_KEYS = _PICK_LAST | {"docs.includeCurrentVersion", "docs.versions", "docs.versions.current.path",
                              "versions.json"}

TrailingSlash = bool | Literal["unset"]


@dataclass(frozen=True)
class Unreadable:
    """A config value only running the config would give (or one of the wrong type)."""

    key: str  # "baseUrl", "docs.routeBasePath", …
    expression: str
    line: int
    why: str = ""

    @property
    def affects_routes(self) -> bool:
        return self.key in _HINTS

    @property
    def message(self) -> str:
        why = f" ({self.why})" if self.why else ""
        where = f"`{self.expression}` on line {self.line}" if self.line else f"`{self.expression}`"
        hint = _HINTS.get(self.key) or _READ_AS_DEFAULT.get(self.key) or "ingest does not need it"
        return f"could not read {self.key} from the site config: {where}{why}; {hint}"


@dataclass(frozen=True)
class VersionOption:
    """``versions: {name: {label, path}}`` of the docs plugin."""

    name: str
    label: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class DocsPlugin:
    """One instance of @docusaurus/plugin-content-docs, defaults filled in."""

    id: str = _DEFAULT_ID
    declared_in: str = "presets"
    path: str = "docs"
    route_base_path: str = "/docs"
    edit_url: str | None = None
    include: tuple[str, ...] | None = None  # None: Docusaurus's default, **/*.{md,mdx}
    exclude: tuple[str, ...] | None = None  # None: Docusaurus's default, partials excluded
    number_prefixes: bool = True
    last_version: str | None = None
    only_include_versions: tuple[str, ...] | None = None
    include_current_version: bool = True
    disable_versioning: bool = False
    versions: tuple[VersionOption, ...] = ()
    sidebar_path: str | None = None  # None: unset, false or computed (the outline is autogenerated)
    npm2yarn: tuple[str, ...] | None = None  # converters of its npm2yarn remark plugin; None: not used
    twoslash: bool = False  # remark-shiki-twoslash among its remark plugins


@dataclass(frozen=True)
class I18n:
    default_locale: str = "en"
    locales: tuple[str, ...] = ("en",)
    path: str = "i18n"
    locale_paths: tuple[tuple[str, str], ...] = ()  # (locale, its folder under `path`) when set


@dataclass(frozen=True)
class ContentDir:
    """A folder of docs for one version or locale, relative to the site root."""

    path: str
    exists: bool
    version: str = CURRENT
    locale: str = ""


@dataclass(frozen=True)
class SiteConfig:
    root: Path
    config_file: Path
    title: str | None = None
    tagline: str | None = None
    url: str | None = None
    base_url: str = "/"
    trailing_slash: bool | None = None
    docs: DocsPlugin | None = field(default_factory=DocsPlugin)  # None: the site has no docs
    other_docs: tuple[DocsPlugin, ...] = ()  # other docs plugin instances (ids other than default)
    i18n: I18n = field(default_factory=I18n)
    markdown_format: str = "mdx"  # markdown.format: how .md/.mdx pages are compiled
    magic_comments: tuple[str, ...] = DIRECTIVES  # themeConfig.prism.magicComments' directives
    # The language a code block without one is shown in: prism.defaultLanguage, else "text" from
    # Docusaurus 3.8 (theme-common's getLanguage), else none, which keeps magic comments shown.
    plain_code_language: str = ""
    navbar: tuple[NavbarLink, ...] = ()  # themeConfig.navbar's labelled links into the site
    docusaurus_major: int = 3  # of @docusaurus/core in the site's package.json (3 when it does not say)
    npm_to_yarn: npm2yarn.Release = npm2yarn.LATEST  # the npm-to-yarn the npm2yarn plugin converts with
    legacy_admonition_titles: bool = True  # markdown.mdx1Compat.admonitions, as the site's future flags leave it
    mermaid: bool = False  # markdown.mermaid (with @docusaurus/theme-mermaid): ```mermaid blocks are diagrams
    versions: tuple[str, ...] = ()  # versions.json of the default docs plugin, newest first
    version_dirs: tuple[ContentDir, ...] = ()  # versioned_docs/version-X
    locale_dirs: tuple[ContentDir, ...] = ()  # i18n/<locale>/docusaurus-plugin-content-docs/…
    unreadable: tuple[Unreadable, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SiteOverrides:
    """Values the caller gives (CLI flags, IngestRequest fields); each wins over the config."""

    base_url: str | None = None
    route_base_path: str | None = None
    trailing_slash: TrailingSlash | None = None  # "unset": as the docs plugin makes routes
    last_version: str | None = None  # the docs plugin's lastVersion, e.g. when the config computes it
    # The docs plugin's onlyIncludeVersions, e.g. when the config computes it from its deploy's
    # environment (React Native's site: a preview's three versions, else all).
    only_include_versions: tuple[str, ...] | None = None


def with_given(site: SiteConfig, overrides: SiteOverrides) -> SiteConfig:
    """``site`` with the values the caller gives for docs plugin options; a given value replaces
    what the config holds or could not be read (Prettier's site computes ``lastVersion`` from
    an environment variable of its CI). Each given version must be one the site has, as the docs
    plugin's own checks require."""
    if site.docs is None:
        return site
    docs, unreadable, violations = site.docs, site.unreadable, Violations()
    for field_name, key, names in (
            ("last_version", "docs.lastVersion", (overrides.last_version,) if overrides.last_version else None),
            ("only_include_versions", "docs.onlyIncludeVersions", overrides.only_include_versions)):
        if names is None:
            continue
        if unknown := [n for n in names if n != CURRENT and n not in site.versions]:
            violations.add(field_name, f"{', '.join(map(repr, unknown))}: neither {CURRENT!r} nor a version in "
                           f"versions.json ({', '.join(site.versions) or 'none'})")
        unreadable = tuple(u for u in unreadable if u.key != key)
    violations.raise_if_any()
    if overrides.last_version is not None:
        docs = replace(docs, last_version=overrides.last_version)
    if overrides.only_include_versions is not None:
        docs = replace(docs, only_include_versions=overrides.only_include_versions)
    return replace(site, docs=docs, unreadable=unreadable)


@dataclass(frozen=True)
class SiteRoutes:
    docs_dir: Path | None  # absolute, resolved; None when the site does not publish the docs folder
    docs_path: str  # as the config names it, relative to the site root
    routes: RouteOptions


def find_config(folder: Path) -> Path | None:
    """The config Docusaurus would load from ``folder``, or None when it is not a site root."""
    for extension in CONFIG_EXTENSIONS:
        candidate = folder / (CONFIG_NAME + extension)
        if candidate.is_file():
            return candidate
    return None


def is_site_root(folder: Path) -> bool:
    return find_config(folder) is not None


def parse_trailing_slash(text: str) -> TrailingSlash | None:
    """``true``/``false``/``unset`` as a CLI flag or request field gives it; ``""`` = not given."""
    value = text.strip().lower()
    if not value:
        return None
    if value in {"true", "false"}:
        return value == "true"
    if value == "unset":
        return "unset"
    raise InvalidArgument.of("trailing_slash", f"must be true, false or unset, not {text!r}")


def check_given_versions(v: Violations, field_name: str, last_version: str, only_include: Sequence[str]) -> None:
    """The version names a request gives (``last_version``, ``only_include_versions``), as text: each
    1 to VERSION_CHARS characters, at most GIVEN_VERSIONS of them (whether the site has them is
    checked when it is read, by ``with_given``). ``field_name`` prefixes the fields ("options.")."""
    if len(last_version) > VERSION_CHARS:
        v.add(f"{field_name}last_version", f"must be at most {VERSION_CHARS} characters")
    check_storable(v, f"{field_name}last_version", last_version)
    if len(only_include) > GIVEN_VERSIONS:
        v.add(f"{field_name}only_include_versions", f"must name at most {GIVEN_VERSIONS} versions")
    for i, name in enumerate(only_include[:GIVEN_VERSIONS]):
        if not name.strip() or len(name) > VERSION_CHARS:
            v.add(f"{field_name}only_include_versions[{i}]", f"must be 1 to {VERSION_CHARS} characters")
        check_storable(v, f"{field_name}only_include_versions[{i}]", name)


# --- Reading ------------------------------------------------------------------------------------

class _Collector:
    """Reads typed values out of the config, recording what it cannot read."""

    def __init__(self) -> None:
        self.unreadable: list[Unreadable] = []
        self.notes: list[str] = []

    def miss(self, key: str, value: JsValue, why: str = "") -> None:
        if isinstance(value, Computed):
            self.unreadable.append(Unreadable(key, value.expression, value.line, why or value.why))
        else:
            self.unreadable.append(Unreadable(key, _show(value), 0, why))

    def string(self, key: str, value: JsValue, default: str | None = None) -> str | None:
        if value is UNDEFINED:
            return default
        if isinstance(value, str):
            return value
        self.miss(key, value, "" if isinstance(value, Computed) else "not a string")
        return default

    def site_file(self, key: str, value: JsValue, default: str | None = None) -> str | None:
        """A file or folder relative to the site root: a string, or a Node path idiom naming one
        beside the config (``path.resolve(__dirname, 'docs')``, see ``beside_config``)."""
        beside = beside_config(value)
        return beside if beside is not None else self.string(key, value, default)

    def boolean(self, key: str, value: JsValue, default: bool) -> bool:
        if value is UNDEFINED:
            return default
        if isinstance(value, bool):
            return value
        self.miss(key, value, "" if isinstance(value, Computed) else "not true or false")
        return default

    def strings(self, key: str, value: JsValue) -> tuple[str, ...] | None:
        if value is UNDEFINED:
            return None
        if isinstance(value, JsArray) and all(isinstance(i, str) for i in value.items):
            return tuple(i for i in value.items if isinstance(i, str))
        bad = next((i for i in value.items if isinstance(i, Computed)), value) \
            if isinstance(value, JsArray) else value
        self.miss(key, bad, "" if isinstance(bad, Computed) else "not a list of strings")
        return None

    def object(self, key: str, value: JsValue) -> JsObject | None:
        if value is UNDEFINED:
            return JsObject()
        if isinstance(value, JsObject):
            return value
        self.miss(key, value, "" if isinstance(value, Computed) else "not an object")
        return None


def _show(value: JsValue) -> str:
    if isinstance(value, (JsObject, JsArray)):
        return "{…}" if isinstance(value, JsObject) else "[…]"
    return json.dumps(value) if value is not UNDEFINED else "undefined"


def read_site(root: Path, allowed_roots: Sequence[Path] = ()) -> SiteConfig:
    """Read the site at ``root`` (a folder with ``docusaurus.config.*``). A config that is
    not JavaScript, too large or too slow to parse is an InvalidArgument on ``source_dir``;
    values it computes are listed in ``unreadable``. The packages the site builds with may be
    declared by a workspace root above it, read only inside ``allowed_roots`` when given."""
    config_file = find_config(root)
    if config_file is None:
        raise InvalidArgument.of("source_dir", f"{root} has no {CONFIG_NAME}{{{','.join(CONFIG_EXTENSIONS)}}}")
    try:
        with config_file.open("rb") as handle:
            source = handle.read(MAX_SOURCE_BYTES + 1)
        module = read_module(source, config_file.suffix in TYPESCRIPT_SUFFIXES)
    except SourceError as exc:
        raise InvalidArgument.of("source_dir", f"{config_file.name} {exc}") from None
    except OSError as exc:
        raise InvalidArgument.of("source_dir", f"{config_file.name} cannot be read ({exc.strerror})") from None

    out = _Collector()
    config = module.exported
    if not isinstance(config, JsObject):
        # Nothing in it can be read: say so once for each value routes need.
        why = "the config as a whole is not a literal object"
        for key in ("baseUrl", "trailingSlash", "docs.path", "docs.routeBasePath"):
            out.miss(key, config if isinstance(config, Computed) else Computed(_show(config), module.export_line), why)
        config = JsObject()

    site = SiteConfig(
        root=root, config_file=config_file,
        title=out.string("title", config.get("title")),
        tagline=out.string("tagline", config.get("tagline")),
        url=out.string("url", config.get("url")),
        base_url=_base_url(out.string("baseUrl", config.get("baseUrl"), "/") or "/"),
        trailing_slash=_trailing_slash(out, config.get("trailingSlash")),
        i18n=_i18n(out, config.get("i18n")),
        magic_comments=_magic_comments(out, config.get("themeConfig")),
    )
    site = replace(site, navbar=read_navbar(config.get("themeConfig")))
    markdown = out.object("markdown", config.get("markdown"))
    projects = project_dirs(root, allowed_roots)
    version = _docusaurus_version(projects)
    site = replace(site, markdown_format=_markdown_format(out, markdown), docusaurus_major=version[0],
                   legacy_admonition_titles=_legacy_admonition_titles(out, markdown, config.get("future"), version),
                   mermaid=markdown is not None and out.boolean("markdown.mermaid", markdown.get("mermaid"), False))
    locked = [v for folder in projects for v in locked_versions(folder, "npm-to-yarn")]
    site = replace(site, plain_code_language=_plain_code_language(config.get("themeConfig"), version),
                   npm_to_yarn=npm2yarn.release(version, locked))
    plugins = _docs_plugins(out, config, version)
    default = [p for p in plugins if p.id == _DEFAULT_ID]
    if len(default) > 1:
        out.notes.append("several docs plugin instances have the id 'default' (Docusaurus refuses that); "
                         f"the one in {default[0].declared_in} is used")
    others = tuple(p for p in plugins if p.id != _DEFAULT_ID)
    if others:
        out.notes.append("other docs plugin instances are not ingested: "
                         + ", ".join(f"{p.id} ({p.path})" for p in others))
    versions = _versions(out, root)
    docs = default[0] if default else None
    site = replace(site, docs=docs, other_docs=others, versions=versions, version_dirs=_version_dirs(root, versions),
                   locale_dirs=_locale_dirs(root, site.i18n, versions) if docs is not None else ())
    return replace(site, unreadable=tuple(out.unreadable), notes=tuple(out.notes))


def _base_url(value: str) -> str:
    """``addLeadingSlash(addTrailingSlash(baseUrl))``."""
    value = value if value.endswith("/") else value + "/"
    return value if value.startswith("/") else "/" + value


def _trailing_slash(out: _Collector, value: JsValue) -> bool | None:
    if value is UNDEFINED:
        return None
    if isinstance(value, bool):
        return value
    out.miss("trailingSlash", value, "" if isinstance(value, Computed) else "not true or false")
    return None


def _markdown_format(out: _Collector, markdown: JsObject | None) -> str:
    """``markdown.format``: "mdx" (Docusaurus's default), "md" (CommonMark) or "detect" (by the
    file's extension). One that cannot be read is taken as the default, with a note."""
    if markdown is None:
        return "mdx"
    found = out.string("markdown.format", markdown.get("format"), "mdx")
    if found not in MARKDOWN_FORMATS:
        out.miss("markdown.format", markdown.get("format"), f"not one of {', '.join(MARKDOWN_FORMATS)}")
        return "mdx"
    return found or "mdx"


# Docusaurus 3.10 added future.v4.mdx1CompatDisabledByDefault (`v4: true` sets it), checked in the
# 3.9.2 and 3.10.0 npm packages' server/configValidation.js.
_MDX1_COMPAT_FLAG_SINCE = (3, 10)


def _legacy_admonition_titles(out: _Collector, markdown: JsObject | None, future: JsValue,
                              version: tuple[int, int]) -> bool:
    """``markdown.mdx1Compat.admonitions``: whether ":::note Its title" is an admonition titled
    "Its title" (the preprocessor's admonitionTitleToDirectiveLabel), else text as written. On
    unless the site says so, or from Docusaurus 3.10 its ``future.v4`` turns the MDX 1 compat
    options off by default (postProcessDocusaurusConfig). A value it cannot read counts as on."""
    compat = out.object("markdown.mdx1Compat", markdown.get("mdx1Compat")) if markdown is not None else None
    if compat is not None and compat.get("admonitions") is not UNDEFINED:
        return out.boolean("markdown.mdx1Compat.admonitions", compat.get("admonitions"), True)
    if version < _MDX1_COMPAT_FLAG_SINCE:
        return True
    flags = out.object("future", future)
    v4 = flags.get("v4") if flags is not None else UNDEFINED
    if isinstance(v4, bool):
        return not v4
    v4_flags = out.object("future.v4", v4)
    disabled = v4_flags.get("mdx1CompatDisabledByDefault") if v4_flags is not None else UNDEFINED
    return not out.boolean("future.v4.mdx1CompatDisabledByDefault", disabled, False)


def _magic_comments(out: _Collector, theme: JsValue) -> tuple[str, ...]:
    """The directives of ``themeConfig.prism.magicComments`` (each entry's ``line``, and its
    ``block``'s ``start`` and ``end``), which replace theme-classic's default entry; the
    default's when unset or unreadable, with a note for the latter."""
    prism = theme.get("prism") if isinstance(theme, JsObject) else UNDEFINED
    value = prism.get("magicComments") if isinstance(prism, JsObject) else UNDEFINED
    if value is UNDEFINED:
        return DIRECTIVES
    directives: list[str] = []
    for entry in value.items if isinstance(value, JsArray) else (value,):
        block = entry.get("block") if isinstance(entry, JsObject) else UNDEFINED
        names = [entry.get("line") if isinstance(entry, JsObject) else entry,
                 *((block.get("start"), block.get("end")) if isinstance(block, JsObject) else ())]
        readable = [n for n in names if n is not UNDEFINED]
        if not all(isinstance(n, str) for n in readable) or not isinstance(entry, JsObject):
            out.notes.append(f"themeConfig.prism.magicComments could not be read ({_show_computed(entry)}); "
                             "code is read with Docusaurus's default magic comments")
            return DIRECTIVES
        directives += [n for n in readable if isinstance(n, str) and n]
    return tuple(directives)


TEXT_BY_DEFAULT = (3, 8)  # the first Docusaurus whose code blocks without a language are "text"


def _plain_code_language(theme: JsValue, version: tuple[int, int]) -> str:
    prism = theme.get("prism") if isinstance(theme, JsObject) else UNDEFINED
    given = prism.get("defaultLanguage") if isinstance(prism, JsObject) else UNDEFINED
    if isinstance(given, str) and given.strip():
        return given.strip().lower()
    return "text" if version >= TEXT_BY_DEFAULT else ""


def _i18n(out: _Collector, value: JsValue) -> I18n:
    i18n = out.object("i18n", value)
    if i18n is None or not (i18n.entries or i18n.opaque):
        return I18n()
    default = out.string("i18n.defaultLocale", i18n.get("defaultLocale"), "en") or "en"
    locales = out.strings("i18n.locales", i18n.get("locales")) or (default,)
    configs = out.object("i18n.localeConfigs", i18n.get("localeConfigs")) or JsObject()
    paths: list[tuple[str, str]] = []
    for locale in locales:
        locale_config = out.object(f"i18n.localeConfigs.{locale}", configs.get(locale)) or JsObject()
        path = out.string(f"i18n.localeConfigs.{locale}.path", locale_config.get("path"))
        if path is not None:
            paths.append((locale, path))
    return I18n(default, locales, out.site_file("i18n.path", i18n.get("path"), "i18n") or "i18n", tuple(paths))


def _docs_plugins(out: _Collector, config: JsObject, version: tuple[int, int]) -> list[DocsPlugin]:
    """Every docs plugin instance, presets first (Docusaurus loads presets' plugins before
    ``plugins``, which does not matter for which one is 'default')."""
    found: list[DocsPlugin] = []
    for index, name, options in _entries(out, "presets", config.get("presets")):
        wraps_classic = isinstance(options, JsObject) and options.get("docs") is not UNDEFINED
        if name not in _CLASSIC_PRESETS:
            if not wraps_classic:
                out.notes.append(f"preset {name!r} is not read (only the classic preset's docs options are)")
                continue
            # Presets that extend the classic one pass it their `docs` options, as Meta's
            # docusaurus-plugin-internaldocs-fb does for Metro, Buck2 and others.
            out.notes.append(f"preset {name!r} is read as the classic preset it extends: its docs options")
        preset = out.object(f"presets[{index}]", options)
        if preset is None:
            continue
        docs = preset.get("docs")
        if docs is not False:
            found.append(_docs_plugin(out, docs, f"presets[{index}] {name} › docs", version))
    for index, name, options in _entries(out, "plugins", config.get("plugins")):
        if name in _DOCS_PLUGINS:
            found.append(_docs_plugin(out, options, f"plugins[{index}] {name}", version))
    unknown = [p for p in found if p.id == _UNKNOWN_ID]
    if unknown and not any(p.id == _DEFAULT_ID for p in found):
        # Options that cannot be read may belong to the default instance: then its folder and
        # route are unknown too.
        for key in ("docs.path", "docs.routeBasePath"):
            out.unreadable.append(Unreadable(key, unknown[0].declared_in, 0, "its options could not be read"))
        found[found.index(unknown[0])] = replace(unknown[0], id=_DEFAULT_ID)
    return found


def _docs_plugin(out: _Collector, options: JsValue, where: str, version: tuple[int, int]) -> DocsPlugin:
    if isinstance(options, JsObject):
        return _docs_options(out, options, where, version)
    if options is UNDEFINED:
        return DocsPlugin(declared_in=where)
    out.notes.append(f"the options of {where} could not be read ({_show_computed(options)})")
    return DocsPlugin(id=_UNKNOWN_ID, declared_in=where)


def _entries(out: _Collector, key: str, value: JsValue) -> list[tuple[int, str, JsValue]]:
    """``presets``/``plugins`` items as (index, module name, options): an item is a name, a
    ``[name, options]`` pair, or false/null (skipped). An item that cannot be read might be a
    docs plugin; it is noted."""
    if value is UNDEFINED:
        return []
    if not isinstance(value, JsArray):
        out.notes.append(f"{key} could not be read ({_show_computed(value)}); "
                         "if it declares a docs plugin, that plugin is missed")
        return []
    entries: list[tuple[int, str, JsValue]] = []
    for index, item in enumerate(value.items):
        if item is False or item is None:
            continue
        if (name := _module_name(item)) is not None:
            entries.append((index, name, UNDEFINED))
        elif isinstance(item, JsArray) and item.items and (name := _module_name(item.items[0])) is not None:
            entries.append((index, name, item.items[1] if len(item.items) > 1 else UNDEFINED))
        else:
            out.notes.append(f"{key}[{index}] could not be read ({_show_computed(item)}); "
                             "if it is a docs plugin, it is missed")
    return entries


def _module_name(value: JsValue) -> str | None:
    """A preset's or plugin's module: its name, or the package ``require.resolve('name')``
    resolves (Docusaurus loads the file that gives; the package is what identifies it)."""
    if isinstance(value, str):
        return value
    if isinstance(value, Computed) and (required := _REQUIRE_RESOLVE.fullmatch(value.expression.strip())):
        return _quoted(required)
    return None


def _show_computed(value: JsValue) -> str:
    if isinstance(value, Computed):
        return f"`{value.expression}` on line {value.line}"
    return _show(value)


def _docs_options(out: _Collector, options: JsObject, where: str, version: tuple[int, int]) -> DocsPlugin:
    plugin_id = out.string(f"{where}.id", options.get("id"), _DEFAULT_ID) or _DEFAULT_ID
    # Only the default instance's values decide routes; another instance's are informative.
    prefix = "docs." if plugin_id == _DEFAULT_ID else f"{where}."
    edit_url = options.get("editUrl")
    number_prefixes = options.get("numberPrefixParser")
    if isinstance(number_prefixes, Computed):
        out.notes.append(f"{where}: numberPrefixParser is a custom function (line {number_prefixes.line}); "
                         "routes follow Docusaurus's default parser")
        number_prefixes = UNDEFINED
    if plugin_id == _DEFAULT_ID:  # another instance is not ingested (said once for all of them)
        _note_unfollowed_plugins(out, where, options)
    return DocsPlugin(
        id=plugin_id, declared_in=where,
        path=out.site_file(prefix + "path", options.get("path"), "docs") or "docs",
        route_base_path=_route_base_path(out.string(prefix + "routeBasePath", options.get("routeBasePath"), "docs")),
        edit_url=_edit_url(out, prefix + "editUrl", edit_url),
        include=out.strings(prefix + "include", options.get("include")),
        exclude=out.strings(prefix + "exclude", options.get("exclude")),
        number_prefixes=out.boolean(prefix + "numberPrefixParser", number_prefixes, True),
        last_version=out.string(prefix + "lastVersion", options.get("lastVersion")),
        only_include_versions=out.strings(prefix + "onlyIncludeVersions", options.get("onlyIncludeVersions")),
        include_current_version=out.boolean(prefix + "includeCurrentVersion",
                                            options.get("includeCurrentVersion"), True),
        disable_versioning=out.boolean(prefix + "disableVersioning", options.get("disableVersioning"), False),
        versions=_version_options(out, prefix + "versions", options.get("versions")),
        sidebar_path=_sidebar_path(out, where, options.get("sidebarPath")),
        npm2yarn=_npm2yarn(out, where, options.get("remarkPlugins"), version),
        twoslash=any(_is_module(p, twoslash.PLUGIN) for p in _plugins(options.get("remarkPlugins"))),
    )


def _npm2yarn(out: _Collector, where: str, plugins: JsValue, version: tuple[int, int]) -> tuple[str, ...] | None:
    """The converters of the npm2yarn plugin among the docs' ``remarkPlugins`` (an item is the
    plugin, or ``[plugin, options]``; the plugin is a default import or a ``require`` of its
    package), or None when it is not among them; without options, the defaults of the site's
    Docusaurus version."""
    if not isinstance(plugins, JsArray):
        return None
    for item in plugins.items:
        plugin, options = (item.items[0], item.items[1] if len(item.items) > 1 else UNDEFINED) \
            if isinstance(item, JsArray) and item.items else (item, UNDEFINED)
        if not _is_module(plugin, npm2yarn.PLUGIN):
            continue
        given = options.get("converters") if isinstance(options, JsObject) else UNDEFINED
        if given is UNDEFINED:
            return npm2yarn.default_converters(version)
        if not isinstance(given, JsArray):
            out.notes.append(f"{where}: the npm2yarn plugin's converters could not be read "
                             f"({_show_computed(given)}); its blocks show the npm command only")
            return ()
        known = tuple(c for c in given.items if isinstance(c, str) and c in npm2yarn.KNOWN_CONVERTERS)
        if len(known) < len(given.items):
            out.notes.append(f"{where}: npm2yarn converters other than {', '.join(sorted(npm2yarn.KNOWN_CONVERTERS))} "
                             "are not followed; their tabs are not read")
        return known
    return None


# The docs' own MDX plugins: each may change what a page shows (Redux's transpileCodeblocks adds a
# JavaScript tab to every TypeScript block), and only npm2yarn and twoslash are followed.
_PAGE_PLUGIN_KEYS = ("beforeDefaultRemarkPlugins", "remarkPlugins", "rehypePlugins")


def _plugins(plugins: JsValue) -> list[JsValue]:
    """The plugins of a ``remarkPlugins``-like option: each item, or its first when it is
    ``[plugin, options]``."""
    items = plugins.items if isinstance(plugins, JsArray) else [] if plugins is UNDEFINED else [plugins]
    return [i.items[0] if isinstance(i, JsArray) and i.items else i for i in items]


def _note_unfollowed_plugins(out: _Collector, where: str, options: JsObject) -> None:
    for key in _PAGE_PLUGIN_KEYS:
        names = [_plugin_name(p) for p in _plugins(options.get(key))
                 if not (_is_module(p, npm2yarn.PLUGIN) or (key == "remarkPlugins" and _is_module(p, twoslash.PLUGIN)))]
        if names:
            out.notes.append(f"{where}: {key} {', '.join(names)} are not followed; what they change on a page "
                             "is read as the page's source has it")


def _plugin_name(value: JsValue) -> str:
    if isinstance(value, Computed):
        return _default_export_of(value) or f"`{value.expression}`"
    return _show(value)


def _default_export_of(value: JsValue) -> str:
    """The module ``value`` is the default export of: its default import's, or its require's, of a
    CommonJS module or, with ``.default``, of an ES one (tRPC's `require('remark-shiki-twoslash').default`)
    ("" for anything else)."""
    if not isinstance(value, Computed):
        return ""
    required = _REQUIRE.fullmatch(value.expression.strip())
    return value.module or (_quoted(required) if required is not None else "")


def _is_module(value: JsValue, module: str) -> bool:
    """Whether ``value`` is what ``module`` exports by default: its default import, or its require."""
    found = _default_export_of(value)
    return bool(found) and found == module


# A string literal in a call's arguments, single- or double-quoted, without escapes.
_STRING_ARG = r"""\s*(?:'([^'\\]*)'|"([^"\\]*)")\s*"""
_REQUIRE_RESOLVE = re.compile(rf"require\.resolve\({_STRING_ARG}\)")
_REQUIRE = re.compile(rf"require\({_STRING_ARG}\)(?:\.default)?")
_BESIDE_CONFIG = re.compile(r"path\.(resolve|join)\(\s*__dirname\s*,(.*)\)", re.DOTALL)


def _quoted(literal: re.Match[str]) -> str:
    """The text of a _STRING_ARG match, whichever quotes it used."""
    single, double = literal.group(1), literal.group(2)
    return single if single is not None else double


def file_beside_config(expression: str) -> str | None:
    """The file a Node path idiom names beside the config (the site root), read without running
    it: ``require.resolve('./sidebars.js')`` (``@site/`` is the site root too),
    ``path.resolve(__dirname, './sidebars.json')``, ``path.join(__dirname, 'a', 'b.js')``.
    None for anything else, such as a package's module name."""
    text = expression.strip()
    if (required := _REQUIRE_RESOLVE.fullmatch(text)) is not None:
        name = _quoted(required)
        if name.startswith("@site/"):
            return "./" + name.removeprefix("@site/")
        return name if name.startswith(("./", "../")) else None
    beside = _BESIDE_CONFIG.fullmatch(text)
    if beside is None:
        return None
    parts: list[str] = []
    for argument in beside.group(2).split(","):
        literal = re.fullmatch(_STRING_ARG, argument)
        if literal is None:
            return None
        part = _quoted(literal)
        if beside.group(1) == "resolve" and part.startswith("/"):
            parts = []  # path.resolve starts again at an absolute segment
        parts.append(part)
    return "/".join(parts) if parts else None


def beside_config(value: JsValue) -> str | None:
    """The file a computed option names beside the config (file_beside_config), else None."""
    return file_beside_config(value.expression) if isinstance(value, Computed) else None


def _sidebar_path(out: _Collector, where: str, value: JsValue) -> str | None:
    """``sidebarPath``: a file, or false for no sidebars; only the outline depends on it. A
    Node path idiom naming a file beside the config is read as that file, as for every
    site-relative file option (``_Collector.site_file``); anything else computed is noted, not
    reported as unreadable, since routes do not depend on it."""
    if isinstance(value, str):
        return value
    if (beside := beside_config(value)) is not None:
        return beside
    if isinstance(value, Computed):
        out.notes.append(f"{where}: sidebarPath could not be read (`{value.expression}` on line {value.line}); "
                         "the outline follows the autogenerated sidebar")
    return None


def _edit_url(out: _Collector, key: str, value: JsValue) -> str | None:
    """A string ``editUrl``; a function one makes each link in code, so none is kept."""
    if isinstance(value, Computed):
        out.miss(key, value, "edit links are made by code; none are kept")
        return None
    return out.string(key, value)


def _route_base_path(value: str | None) -> str:
    """``addLeadingSlash(routeBasePath)``; no trailing slash is added."""
    value = "docs" if value is None else value
    return value if value.startswith("/") else "/" + value


def _version_options(out: _Collector, key: str, value: JsValue) -> tuple[VersionOption, ...]:
    versions = out.object(key, value)
    if versions is None:
        return ()
    # A version's options under a computed key name no route when they set no path (a badge, a
    # banner): whichever version the key names, its route is the default one.
    if versions.opaque is not None and not all(isinstance(options, JsObject) and options.opaque is None
                                               and "path" not in options.entries for options in versions.unkeyed):
        out.miss(key, versions.opaque)
    found: list[VersionOption] = []
    for name, item in versions.entries.items():
        options = out.object(f"{key}.{name}", item)
        if options is None:
            continue
        label_value = options.get("label")
        label = label_value if isinstance(label_value, str) else None  # a label is only shown
        found.append(VersionOption(name, label, out.string(f"{key}.{name}.path", options.get("path"))))
    return tuple(found)


# --- Versions and translations on disk ----------------------------------------------------------

def _json_file(path: Path) -> object:
    """A JSON file of the site, read within MAX_SOURCE_BYTES; None when it cannot be read, is
    larger or is not JSON."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_SOURCE_BYTES + 1)
        return json.loads(raw) if len(raw) <= MAX_SOURCE_BYTES else None
    except (OSError, ValueError):
        return None


def _versions(out: _Collector, root: Path) -> tuple[str, ...]:
    """``versions.json`` of the default docs plugin: version names, newest first."""
    path = root / "versions.json"
    if not path.is_file():
        return ()
    names = _json_file(path)
    if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
        out.unreadable.append(Unreadable("versions.json", "versions.json", 0,
                                         "not a JSON list of version names"))
        return ()
    return tuple(names)


WORKSPACE_LEVELS = 3  # how far above the site its workspace root is looked for (DocSearch's packages/website)


def project_dirs(root: Path, allowed_roots: Sequence[Path] = ()) -> tuple[Path, ...]:
    """The site root, then the workspace root above it if there is one (a folder whose
    ``package.json`` has ``workspaces`` or that holds ``pnpm-workspace.yaml``), where a monorepo
    declares and locks the site's packages (Babel's ``website/`` names none itself). Not looked for
    past a repository's top (``.git``), outside ``allowed_roots`` when given, or more than
    WORKSPACE_LEVELS folders up."""
    here = root.resolve()
    bounds = [r.resolve() for r in allowed_roots]
    for _ in range(WORKSPACE_LEVELS):
        if (here / ".git").exists() or here.parent == here:
            break
        here = here.parent
        if bounds and not any(here == b or here.is_relative_to(b) for b in bounds):
            break
        package = _package_json(here)
        if (here / "pnpm-workspace.yaml").is_file() or (isinstance(package, dict) and "workspaces" in package):
            return (root, here)
    return (root,)


_VERSION = re.compile(r"^\s*(?:[\^~=v]|>=)?\s*(\d+)\.(\d+)")


def _package_json(folder: Path) -> object:
    """The folder's ``package.json``, unless it is a link out of the folder (ingest reads only
    inside its roots)."""
    path = folder / "package.json"
    try:
        inside = path.resolve().is_relative_to(folder.resolve())
    except OSError:
        return None
    return _json_file(path) if inside else None


def _docusaurus_version(projects: Sequence[Path]) -> tuple[int, int]:
    """(major, minor) of the lowest ``@docusaurus/core`` the site's ``package.json`` admits
    ("^3.10.1" is 3.10), or its workspace root's when the site's names no Docusaurus package: 2
    or 3, then the minor. A site that installs core through another package
    (Ionic's preset) is read by its ``@docusaurus/*`` packages, which are released together
    (Stencil names only ``@docusaurus/remark-plugin-npm2yarn ~3.5.0``). Ingest follows Docusaurus
    3, and where 2 builds pages differently it follows 2 (heading ids, admonition labels), and
    where later 3.x do, those (admonition titles under future.v4, npm2yarn's tabs). A spec it
    cannot read ("latest", no package.json) is 3.0."""
    for folder in projects:
        package = _package_json(folder)
        core: list[tuple[int, int]] = []
        others: list[tuple[int, int]] = []
        for key in ("dependencies", "devDependencies"):
            deps = package.get(key) if isinstance(package, dict) else None
            for name, spec in deps.items() if isinstance(deps, dict) else ():
                if name.startswith("@docusaurus/") and isinstance(spec, str) \
                        and (found := _VERSION.match(spec)) and found.group(1) in {"2", "3"}:
                    (core if name == "@docusaurus/core" else others).append((int(found.group(1)), int(found.group(2))))
        if core or others:
            return core[0] if core else min(others)
    return (3, 0)


def _version_dirs(root: Path, versions: tuple[str, ...]) -> tuple[ContentDir, ...]:
    return tuple(ContentDir(f"versioned_docs/version-{v}", (root / "versioned_docs" / f"version-{v}").is_dir(), v)
                 for v in versions)


def _locale_dirs(root: Path, i18n: I18n, versions: tuple[str, ...]) -> tuple[ContentDir, ...]:
    """Translated docs of the default plugin, for each locale other than the default one."""
    paths = dict(i18n.locale_paths)
    found: list[ContentDir] = []
    for locale in i18n.locales:
        if locale == i18n.default_locale:
            continue
        base = f"{i18n.path}/{paths.get(locale, locale)}/{_DOCS_PLUGIN_DIR}"
        for version in (CURRENT, *versions):
            rel = f"{base}/{CURRENT if version == CURRENT else 'version-' + version}"
            found.append(ContentDir(os.path.normpath(rel), (root / rel).is_dir(), version, locale))
    return tuple(found)


# --- Routes ---------------------------------------------------------------------------------

def site_routes(site: SiteConfig, overrides: SiteOverrides | None = None,
                allowed_roots: Sequence[Path] = ()) -> SiteRoutes:
    """The docs folder to ingest and the routes of its pages, from the site's config and the
    caller's overrides. Every route value the config computes and no override gives is an
    InvalidArgument field violation saying how to give it. The docs folder must lie inside
    the site root or one of ``allowed_roots`` (e.g. LECTERN_INGEST_ROOTS: some sites, such as
    Redux's, keep docs beside the site, ``path: '../docs'``)."""
    overrides = overrides or SiteOverrides()
    given = {name for name in ("base_url", "route_base_path", "trailing_slash")
             if getattr(overrides, name) is not None}
    violations = Violations()
    if overrides.base_url is not None and ("://" in overrides.base_url or overrides.base_url.startswith("//")):
        violations.add("base_url", "with a site root, base_url is the site's baseUrl, a path such as /book/ "
                       f"(the host comes from the config's url), not {overrides.base_url!r}")
    for item in _route_unreadable(site):
        if _OVERRIDDEN_BY.get(item.key) not in given:
            violations.add(_OVERRIDDEN_BY.get(item.key) or _FIELD_OF.get(item.key, "source_dir"), item.message)
    docs = site.docs
    if docs is None:
        raise InvalidArgument.of("source_dir", f"{site.config_file.name} declares no docs plugin (the classic "
                                 "preset with docs, or @docusaurus/plugin-content-docs); there are no docs to ingest")
    known = versions_known(site)
    names, last = version_names(docs, site.versions)
    if known and not names:
        violations.add("source_dir", "the docs plugin publishes no version (includeCurrentVersion: false, and "
                       "versions.json or onlyIncludeVersions leaves none); there are no docs to ingest")
    # A site whose docs folder is not published (includeCurrentVersion: false) is read from its
    # released versions; the folder need not exist. When the versions cannot be read, a
    # --route-base-path given is taken as the docs folder's whole route.
    publishes_folder = not known or CURRENT in names
    docs_dir = _docs_dir(site.root, docs.path, allowed_roots, violations) if publishes_folder else None
    violations.raise_if_any()
    trailing = overrides.trailing_slash if overrides.trailing_slash is not None else site.trailing_slash
    routes = RouteOptions(
        base_url=_base_url(overrides.base_url) if overrides.base_url is not None else site.base_url,
        route_base_path=overrides.route_base_path if overrides.route_base_path is not None else docs.route_base_path,
        trailing_slash=None if trailing == "unset" else trailing,
        number_prefixes=docs.number_prefixes,
        version_path=version_path(docs, CURRENT, last) if known and publishes_folder else "",
    )
    return SiteRoutes(docs_dir, docs.path, routes)


def versions_known(site: SiteConfig) -> bool:
    """False when a value that decides which versions exist or where they are served could not
    be read (then only the docs folder is ingested, at the route the caller gives)."""
    return not any(u.key in _VERSION_KEYS for u in _route_unreadable(site))


def _route_unreadable(site: SiteConfig) -> list[Unreadable]:
    """Unreadable values that change routes: the options that pick the last version only
    matter when versions.json lists released versions."""
    return [u for u in site.unreadable if u.affects_routes and (site.versions or u.key not in _PICK_LAST)]


def version_names(docs: DocsPlugin, released: Sequence[str]) -> tuple[list[str], str]:
    """The versions Docusaurus builds, newest first, and the last one (served at the docs
    root unless its ``path`` says otherwise): ``readVersionNames``, ``filterVersions`` and
    ``getLastVersionName``."""
    names = [] if docs.disable_versioning else list(released)
    if docs.include_current_version and CURRENT not in names:
        names.insert(0, CURRENT)
    if docs.only_include_versions is not None:
        names = [n for n in names if n in docs.only_include_versions]
    last = docs.last_version or next((n for n in names if n != CURRENT), CURRENT)
    return names, last


def version_path(docs: DocsPlugin, name: str, last: str) -> str:
    """Where a version is served under routeBasePath (``getVersionPathPart``): its
    ``versions.<name>.path``, else ``""`` for the last version, ``next`` for the docs folder, its
    name for the others."""
    own = next((v.path for v in docs.versions if v.name == name and v.path is not None), None)
    if own is not None:
        return own
    return "" if name == last else "next" if name == CURRENT else name


def _docs_dir(root: Path, path: str, allowed_roots: Sequence[Path], violations: Violations) -> Path | None:
    docs_dir = (root / path).resolve()
    bounds = [root.resolve(), *(r.resolve() for r in allowed_roots)]
    if not any(docs_dir == b or docs_dir.is_relative_to(b) for b in bounds):
        violations.add("source_dir", f"the docs path {path!r} of the site config leads outside the site root "
                       "and the folders ingest may read")
        return None
    if not docs_dir.is_dir():
        violations.add("source_dir", f"the docs folder {path!r} named by the site config does not exist")
        return None
    return docs_dir
