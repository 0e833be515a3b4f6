"""Reading a Docusaurus site root without Node: configs in every style sites write them, values
only Node could compute reported with the flag that gives them, and the routes that follow.

The fixtures under tests/fixtures/sites were also loaded by @docusaurus/core 3.10.2's own
``loadSiteConfig``; the values it gave are the expectations below."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embedding.tokens import count_tokens
from runtime.errors import InvalidArgument
from services.ingest.book import site as site_mod
from services.ingest.book.chunker import Budget
from services.ingest.book.discovery import discover
from services.ingest.book.pages import read_page
from services.ingest.book.parser import parse_page
from services.ingest.book.site import (
    ContentDir,
    SiteOverrides,
    find_config,
    is_site_root,
    literal,
    parse_trailing_slash,
    read_site,
    site_routes,
)
from services.ingest.book.site_code import DIRECTIVES
from services.ingest.book.slugs import doc_slug
from tests.conftest import FIXTURES

SITES = FIXTURES / "sites"


def write_site(root: Path, config: str, name: str = "docusaurus.config.js", docs: str = "docs") -> Path:
    (root / docs).mkdir(parents=True, exist_ok=True)
    (root / docs / "intro.md").write_text("# Intro\n\nHello.\n", encoding="utf-8")
    (root / name).write_text(config, encoding="utf-8")
    return root


def violations(exc: pytest.ExceptionInfo[InvalidArgument]) -> dict[str, str]:
    return {v.field: v.description for v in exc.value.violations}


# --- Site root or docs folder -----------------------------------------------------------------

def test_site_root_or_docs_folder() -> None:
    assert is_site_root(SITES / "esm-versions")
    assert not is_site_root(SITES / "esm-versions" / "docs")
    assert find_config(SITES / "ts-satisfies") == SITES / "ts-satisfies" / "docusaurus.config.ts"
    assert find_config(SITES / "ts-async") == SITES / "ts-async" / "docusaurus.config.mts"


def test_config_found_in_docusaurus_order(tmp_path: Path) -> None:
    """``.ts`` wins over ``.js`` as in findConfig; a folder named like a config is no config."""
    write_site(tmp_path, "module.exports = {baseUrl: '/js/'};")
    (tmp_path / "docusaurus.config.ts").write_text("export default {baseUrl: '/ts/'};", encoding="utf-8")
    (tmp_path / "docusaurus.config.cjs").mkdir()
    assert read_site(tmp_path).base_url == "/ts/"
    assert not is_site_root(tmp_path / "docs")


# --- Config styles ----------------------------------------------------------------------------

def test_esm_export_default_with_versions_and_locales() -> None:
    site = read_site(SITES / "esm-versions")
    assert (site.title, site.tagline, site.url) == ("Robotics Book", 'Build, "calibrate" and drive',
                                                     "https://books.example.org")
    assert site.base_url == "/robotics/"  # Docusaurus adds the slashes: baseUrl: 'robotics'
    assert site.trailing_slash is False
    assert site.docs is not None
    assert site.docs.route_base_path == "/manual"
    assert site.docs.edit_url == "https://github.com/example/robotics/edit/main/"
    assert site.docs.include == ("**/*.md",) and site.docs.exclude == ("**/drafts/**",)
    assert site.docs.number_prefixes is False
    assert {v.name: v.path for v in site.docs.versions} == {"current": None, "1.0": "v1"}
    assert (site.i18n.default_locale, site.i18n.locales) == ("en", ("en", "fr"))
    assert site.versions == ("1.0",)
    assert site.version_dirs == (ContentDir("versioned_docs/version-1.0", True, "1.0"),)
    assert ContentDir("i18n/fr/docusaurus-plugin-content-docs/current", True, "current", "fr") in site.locale_dirs
    assert ContentDir("i18n/fr/docusaurus-plugin-content-docs/version-1.0", False, "1.0", "fr") in site.locale_dirs
    assert site.unreadable == ()

    found = site_routes(site)
    assert found.docs_dir == (SITES / "esm-versions" / "docs").resolve()
    # A released version exists and lastVersion is not set: the docs folder is "next".
    assert found.routes.version_path == "next"
    assert found.routes.permalink(doc_slug("guides/motion.md")) == "/robotics/manual/next/guides/motion"


def test_commonjs_const_and_several_docs_plugins() -> None:
    """``const config = {…}; module.exports = config``, string concatenation, the preset's docs
    turned off and two docs plugins: the one without an id is the default."""
    site = read_site(SITES / "cjs-plugins")
    assert site.title == "Plugin Site"
    assert site.base_url == "/my-site/"
    assert site.trailing_slash is None
    assert site.docs is not None
    assert (site.docs.id, site.docs.path, site.docs.route_base_path) == ("default", "guide", "/")
    assert site.docs.edit_url is None  # a function: reported, not a route value
    assert [u.key for u in site.unreadable] == ["docs.editUrl"]
    assert not site.unreadable[0].affects_routes
    assert [(p.id, p.path) for p in site.other_docs] == [("api", "api")]
    assert any("api" in note for note in site.notes)
    found = site_routes(site)
    assert found.docs_path == "guide"
    assert found.routes.permalink(doc_slug("start.md")) == "/my-site/start"


def test_typescript_satisfies_and_type_imports() -> None:
    """The shape `create-docusaurus` writes: type-only imports, ``const config: Config``,
    ``satisfies Preset.Options``."""
    site = read_site(SITES / "ts-satisfies")
    assert (site.title, site.base_url, site.trailing_slash) == ("My Site", "/", True)
    assert site.docs is not None
    assert site.docs.edit_url is not None and site.docs.edit_url.startswith("https://github.com/facebook/")
    assert site.unreadable == ()
    assert site_routes(site).routes.permalink(doc_slug("intro.md")) == "/docs/intro/"


def test_site_relative_paths_written_as_node_idioms_are_read(tmp_path: Path) -> None:
    # Configs name folders beside them as Node does; Docusaurus resolves the same folder.
    write_site(tmp_path, """const path = require('path');
module.exports = {title: 'T', url: 'https://t.example', baseUrl: '/',
  i18n: {defaultLocale: 'en', locales: ['en'], path: path.join(__dirname, 'translations')},
  presets: [['classic', {docs: {path: path.resolve(__dirname, './content')}}]]};
""", docs="content")
    site = read_site(tmp_path)
    assert site.unreadable == ()
    assert site.docs is not None and site.docs.path == "./content" and site.i18n.path == "translations"
    docs_dir = site_routes(site).docs_dir
    assert docs_dir is not None and docs_dir.name == "content"
    # Anything else computed is still reported, as before.
    write_site(tmp_path, "module.exports = {presets: [['classic', {docs: {path: path.resolve(process.cwd(), 'x')}}]]};")
    assert [u.key for u in read_site(tmp_path).unreadable] == ["docs.path"]


def test_typescript_async_function_returning_a_literal() -> None:
    """``export default async function`` whose return uses a local ``const`` (shorthand
    property), a module ``const`` with a type annotation, ``as Config`` and ``as const``."""
    site = read_site(SITES / "ts-async")
    assert (site.title, site.base_url, site.trailing_slash) == ("Async Site", "/async/", None)
    assert site.docs is not None and (site.docs.path, site.docs.route_base_path) == ("content", "/learn")
    found = site_routes(site)
    assert found.docs_dir is not None and found.docs_dir.name == "content"
    assert found.routes.permalink(doc_slug("lesson.md")) == "/async/learn/lesson"


@pytest.mark.parametrize("config", [
    "export default {baseUrl: '/a/'};",
    "module.exports = {baseUrl: '/a/'};",
    "const config = {baseUrl: '/a/'}; export default config;",
    "let config = {baseUrl: '/a/'}; module.exports = config;",
    "module.exports = async () => ({baseUrl: '/a/'});",
    "module.exports = function () { return {baseUrl: `/a/`}; };",
    "const base = '/a'; module.exports = {baseUrl: `${base}/`};",
    "const make = async () => { const c = {baseUrl: '/' + 'a/'}; return c; }; export default make;",
    "export default {...{baseUrl: '/b/'}, baseUrl: '\\x2fa\\u002F'};",
])
def test_literal_styles(tmp_path: Path, config: str) -> None:
    write_site(tmp_path, config)
    site = read_site(tmp_path)
    assert site.unreadable == ()
    assert site.base_url == "/a/"


def test_a_key_assigned_later_is_unknown_but_others_are_read(tmp_path: Path) -> None:
    write_site(tmp_path, "const c = {baseUrl: '/a/', title: 'T'};\nc.title = `${1 + 1}`;\nexport default c;")
    site = read_site(tmp_path)
    assert site.base_url == "/a/" and site.title is None
    assert [(u.key, u.line) for u in site.unreadable] == [("title", 2)]


# --- Values only Node could compute -----------------------------------------------------------

def test_computed_values_name_the_flag_that_gives_them() -> None:
    site = read_site(SITES / "computed")
    messages = {u.key: u.message for u in site.unreadable}
    assert set(messages) == {"baseUrl", "trailingSlash", "docs.routeBasePath"}
    assert messages["baseUrl"].startswith("could not read baseUrl from the site config: "
                                          "`process.env.BASE_URL ?? '/'` on line 8")
    assert "--base-url" in messages["baseUrl"] and "base_url" in messages["baseUrl"]
    assert "--trailing-slash" in messages["trailingSlash"]
    assert "require('./site-settings')" in messages["docs.routeBasePath"]
    assert "--route-base-path" in messages["docs.routeBasePath"]

    with pytest.raises(InvalidArgument) as exc:
        site_routes(site)
    assert set(violations(exc)) == {"base_url", "trailing_slash", "route_base_path"}
    assert "give it with --base-url" in violations(exc)["base_url"]

    # Overrides fill exactly what could not be read; the rest still comes from the config.
    with pytest.raises(InvalidArgument) as exc:
        site_routes(site, SiteOverrides(base_url="/b/"))
    assert set(violations(exc)) == {"trailing_slash", "route_base_path"}
    with pytest.raises(InvalidArgument) as exc:
        site_routes(site, SiteOverrides(base_url="https://example.com/b/", route_base_path="r", trailing_slash=True))
    assert list(violations(exc)) == ["base_url"]
    found = site_routes(site, SiteOverrides(base_url="b", route_base_path="reference", trailing_slash="unset"))
    assert (found.routes.base_url, found.routes.trailing_slash) == ("/b/", None)
    assert found.routes.permalink(doc_slug("page.md")) == "/b/reference/page"


@pytest.mark.parametrize(("config", "key", "text"), [
    ("module.exports = {baseUrl: getBase()};", "baseUrl", "getBase()"),
    ("module.exports = {baseUrl: cond ? '/a/' : '/b/'};", "baseUrl", "cond ? '/a/' : '/b/'"),
    ("import base from './base.json'; export default {baseUrl: base};", "baseUrl", "base"),
    ("module.exports = {baseUrl: `/${process.env.X}/`};", "baseUrl", "`/${process.env.X}/`"),
    ("let b = '/a/'; b = '/c/'; module.exports = {baseUrl: b};", "baseUrl", "b"),
    ("const c = {baseUrl: '/a/'}; c.baseUrl = x; module.exports = c;", "baseUrl", "c.baseUrl = x"),
    ("module.exports = {trailingSlash: 'yes'};", "trailingSlash", '"yes"'),
    ("module.exports = {baseUrl: '/a/'};\nmodule.exports.baseUrl = b;", "baseUrl", "module.exports.baseUrl = b"),
    ("const c = {baseUrl: '/a/'}; c['base' + 'Url'] = '/b/'; export default c;", "baseUrl", "c['base' + 'Url']"),
    ("module.exports = {...shared, title: 'T'};", "baseUrl", "...shared"),
    ("module.exports = require('./config');", "baseUrl", "require('./config')"),
    ("module.exports = () => { if (x) return {}; return {}; };", "baseUrl", "() => {"),
    ("module.exports = {presets: [['classic', {docs: {routeBasePath: r}}]]};", "docs.routeBasePath", "r"),
    ("module.exports = {presets: [['classic', {docs: docsOptions}]]};", "docs.routeBasePath",
     "presets[0] classic › docs"),
    ("module.exports = {presets: [['classic', {docs: {lastVersion: v}}]]};", "docs.lastVersion", "v"),
])
def test_each_computed_value_is_reported(tmp_path: Path, config: str, key: str, text: str) -> None:
    write_site(tmp_path, config)
    (tmp_path / "versions.json").write_text('["1.0"]', encoding="utf-8")
    found = {u.key: u for u in read_site(tmp_path).unreadable}
    assert key in found, found
    assert text in found[key].expression
    assert found[key].message.startswith(f"could not read {key} from the site config")


def test_a_computed_last_version_is_given_as_the_whole_route() -> None:
    """Docusaurus's own site: baseUrl, trailingSlash and the last version come from the
    environment; a second docs plugin (community) is reported, not ingested."""
    site = read_site(SITES / "docusaurus-website")
    assert (site.title, site.url) == ("Docusaurus", "https://docusaurus.io")
    assert site.i18n.default_locale == "en"  # `defaultLocale` shorthand bound to a literal const
    assert site.versions == ("3.6.0",)
    assert [p.id for p in site.other_docs] == ["community"]
    keys = {u.key for u in site.unreadable if u.affects_routes}
    assert keys == {"baseUrl", "trailingSlash", "docs.lastVersion", "docs.onlyIncludeVersions",
                    "docs.disableVersioning"}
    with pytest.raises(InvalidArgument) as exc:
        site_routes(site)
    assert "e.g. docs/next" in violations(exc)["route_base_path"]
    # What @docusaurus/core loads with no environment set: baseUrl "/", trailingSlash false,
    # lastVersion "3.6.0", so the docs folder is served at /docs/next/.
    found = site_routes(site, SiteOverrides(base_url="/", route_base_path="docs/next", trailing_slash=False))
    assert found.routes.permalink(doc_slug("introduction.md")) == "/docs/next/introduction"


def test_last_version_options_do_not_matter_without_versions(tmp_path: Path) -> None:
    write_site(tmp_path, "module.exports = {presets: [['classic', {docs: {lastVersion: v}}]]};")
    site = read_site(tmp_path)
    assert [u.key for u in site.unreadable] == ["docs.lastVersion"]
    assert site_routes(site).routes.version_path == ""



def _versions_site(tmp_path: Path, docs_option: str, version_option: str = "") -> Path:
    """The esm-versions site with one more docs option, and one more entry in its versions map."""
    import shutil

    shutil.copytree(SITES / "esm-versions", tmp_path / "site", dirs_exist_ok=True)
    config = tmp_path / "site" / "docusaurus.config.mjs"
    v1 = "'1.0': {label: 'v1', path: 'v1'},"
    config.write_text((SITES / "esm-versions" / "docusaurus.config.mjs").read_text()
                      .replace("numberPrefixParser: false,", f"numberPrefixParser: false,\n          {docs_option}")
                      .replace(v1, f"{v1} {version_option}"))
    return tmp_path / "site"


def test_a_computed_last_version_alone_is_given_with_last_version(tmp_path: Path) -> None:
    """Prettier's site shape: lastVersion depends on its CI's environment. --last-version gives
    it without giving up the site's other versions (a route override would keep only one)."""
    from services.ingest.book.editions import plan_site

    site = read_site(_versions_site(
        tmp_path, "lastVersion: process.env.PULL_REQUEST === 'true' ? 'current' : undefined,"))
    assert [u.key for u in site.unreadable if u.affects_routes] == ["docs.lastVersion"]
    with pytest.raises(InvalidArgument) as exc:
        plan_site(site, SiteOverrides())
    assert "--last-version" in violations(exc)["route_base_path"]
    with pytest.raises(InvalidArgument) as exc:
        plan_site(site, SiteOverrides(last_version="2.0"))
    assert "versions.json" in violations(exc)["last_version"]
    released = plan_site(site, SiteOverrides(last_version="1.0"))  # what its build does without the variable
    current = plan_site(site, SiteOverrides(last_version="current"))
    by_version = {s.edition.version: s.routes.version_path for s in released.sources if not s.edition.locale
                  or s.edition.locale == "en"}
    assert by_version == {"current": "next", "1.0": "v1"}
    assert {s.routes.version_path for s in current.sources if s.edition.version == "current"} == {""}

def test_computed_only_include_versions_are_given_with_only_include_versions(tmp_path: Path) -> None:
    """React Native's site shape: a deploy preview publishes three versions, production all of
    them, decided by the deploy's environment; and the last version's options sit under a computed
    key. --only-include-versions names the versions; the computed key sets no route, so it is no
    obstacle, while one that sets a path still is."""
    from services.ingest.book.editions import plan_site

    computed = "onlyIncludeVersions: process.env.PREVIEW ? ['current'] : undefined,"
    _versions_site(tmp_path, computed, "[lastVersion]: {badge: false},")
    site = read_site(tmp_path / "site")
    assert [u.key for u in site.unreadable if u.affects_routes] == ["docs.onlyIncludeVersions"]
    with pytest.raises(InvalidArgument) as exc:
        plan_site(site, SiteOverrides())
    assert "--only-include-versions" in violations(exc)["route_base_path"]
    with pytest.raises(InvalidArgument) as exc:
        plan_site(site, SiteOverrides(only_include_versions=("current", "0.9")))
    assert "'0.9'" in violations(exc)["only_include_versions"]
    both = plan_site(site, SiteOverrides(only_include_versions=("current", "1.0")))
    assert {s.edition.version: s.routes.version_path for s in both.sources if s.edition.locale in ("", "en")} \
        == {"current": "next", "1.0": "v1"}
    released = plan_site(site, SiteOverrides(only_include_versions=("1.0",)))
    assert {s.edition.version for s in released.sources} == {"1.0"}

    routed = read_site(_versions_site(tmp_path, computed, "[lastVersion]: {path: 'latest'},"))
    assert "docs.versions" in [u.key for u in routed.unreadable if u.affects_routes]


# --- Real-world shapes ------------------------------------------------------------------------

def test_redux_docs_beside_the_site() -> None:
    """reduxjs/redux: ``path: '../docs'`` served at ``/``; ``require`` in themeConfig does not
    matter. The docs lie outside the site root, so they are read only where ingest may read."""
    root = SITES / "redux" / "website"
    site = read_site(root)
    assert (site.title, site.base_url, site.url) == ("Redux", "/", "https://redux.js.org")
    assert site.docs is not None and (site.docs.path, site.docs.route_base_path) == ("../docs", "/")
    assert site.unreadable == ()
    with pytest.raises(InvalidArgument) as exc:
        site_routes(site)
    assert "outside the site root" in violations(exc)["source_dir"]
    found = site_routes(site, allowed_roots=[SITES / "redux"])
    assert found.docs_dir == (SITES / "redux" / "docs").resolve()
    # Docusaurus serves index docs and docs named like their folder at the folder's route.
    assert found.routes.permalink(doc_slug("usage/index.md")) == "/usage/"
    assert found.routes.permalink(doc_slug("style-guide/style-guide.md")) == "/style-guide/"


def test_routes_reach_read_page() -> None:
    """The RouteOptions built from a site are what read_page stamps on every chunk."""
    found = site_routes(read_site(SITES / "esm-versions"))
    assert found.docs_dir is not None
    files = {f.rel: f for f in discover(found.docs_dir)}
    page = read_page(files["guides/motion.md"], "robotics", "/ignored/", Budget(count_tokens, 512), False,
                     routes=found.routes)
    assert page.chunks
    assert {c.url.split("#")[0] for c in page.chunks} == {"/robotics/manual/next/guides/motion"}


# --- Bad input ----------------------------------------------------------------------------------

def test_docs_path_escaping_the_site_is_refused(tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    write_site(tmp_path / "site", "module.exports = {presets: [['classic', {docs: {path: '../outside'}}]]};")
    with pytest.raises(InvalidArgument) as exc:
        site_routes(read_site(tmp_path / "site"))
    assert "'../outside'" in violations(exc)["source_dir"]
    write_site(tmp_path / "abs", "module.exports = {presets: [['classic', {docs: {path: '/etc'}}]]};")
    with pytest.raises(InvalidArgument):
        site_routes(read_site(tmp_path / "abs"))


def test_missing_docs_folder_and_docs_turned_off(tmp_path: Path) -> None:
    write_site(tmp_path / "a", "module.exports = {presets: [['classic', {docs: {path: 'nowhere'}}]]};")
    with pytest.raises(InvalidArgument) as exc:
        site_routes(read_site(tmp_path / "a"))
    assert "does not exist" in violations(exc)["source_dir"]
    write_site(tmp_path / "b", "module.exports = {presets: [['classic', {docs: false}]]};")
    with pytest.raises(InvalidArgument, match="no docs plugin"):
        site_routes(read_site(tmp_path / "b"))
    write_site(tmp_path / "d", "module.exports = {title: 'No presets'};")
    with pytest.raises(InvalidArgument, match="no docs plugin"):
        site_routes(read_site(tmp_path / "d"))
    write_site(tmp_path / "c", "module.exports = {presets: [['classic', {docs: {includeCurrentVersion: false}}]]};")
    with pytest.raises(InvalidArgument, match="publishes no version"):
        site_routes(read_site(tmp_path / "c"))


def test_a_site_that_publishes_only_released_versions(tmp_path: Path) -> None:
    """react-navigation's site shape: includeCurrentVersion false and no docs folder at all; its
    released versions are the book, the last one at the docs root."""
    from services.ingest.book.editions import plan_site

    root = tmp_path / "site"
    root.mkdir()
    (root / "docusaurus.config.js").write_text(
        "module.exports = {presets: [['classic', {docs: {includeCurrentVersion: false, lastVersion: '7.x'}}]]};",
        encoding="utf-8")
    (root / "versions.json").write_text('["8.x", "7.x", "6.x"]', encoding="utf-8")
    for version in ("8.x", "7.x"):
        folder = root / "versioned_docs" / f"version-{version}"
        folder.mkdir(parents=True)
        (folder / "intro.md").write_text("# Intro\n\nHello.\n", encoding="utf-8")
    found = site_routes(read_site(root))
    assert found.docs_dir is None
    plan = plan_site(read_site(root), SiteOverrides())
    assert [(s.edition.version, s.routes.version_path, s.label) for s in plan.sources] == [
        ("8.x", "8.x", "versioned_docs/version-8.x"), ("7.x", "", "versioned_docs/version-7.x")]
    assert any("6.x" in w and "does not exist" in w for w in plan.warnings)
    # The version served by default without its folder: nothing readers search by default would be
    # there (pnpm.io's build copies docs/ to versioned_docs/version-11.x first). Refused, naming
    # the field that chose it.
    with pytest.raises(InvalidArgument) as exc:
        plan_site(read_site(root), SiteOverrides(last_version="6.x"))
    assert "serves by default" in violations(exc)["last_version"] and "make it first" in violations(exc)["last_version"]
    (root / "docusaurus.config.js").write_text(
        "module.exports = {presets: [['classic', {docs: {includeCurrentVersion: false, lastVersion: '9.x'}}]]};",
        encoding="utf-8")
    (root / "versions.json").write_text('["9.x", "8.x"]', encoding="utf-8")
    with pytest.raises(InvalidArgument) as exc:
        plan_site(read_site(root), SiteOverrides())
    assert "version 9.x, which the site serves by default" in violations(exc)["source_dir"]


@pytest.mark.parametrize(("config", "message"), [
    ("module.exports = {baseUrl: '/a/'", "syntax error on line 1"),
    ("const x = 1;\nconst y = ;\n", "syntax error on line 2"),
    ("const x = {baseUrl: '/a/'};", "exports nothing"),
])
def test_unreadable_config_is_invalid_argument(tmp_path: Path, config: str, message: str) -> None:
    write_site(tmp_path, config)
    with pytest.raises(InvalidArgument, match=message) as exc:
        read_site(tmp_path)
    assert [v.field for v in exc.value.violations] == ["source_dir"]


def test_config_size_and_parse_time_are_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = "module.exports = {a: [" + "1," * (literal.MAX_SOURCE_BYTES // 2) + "]};"
    write_site(tmp_path / "big", big)
    with pytest.raises(InvalidArgument, match="more than the"):
        read_site(tmp_path / "big")
    monkeypatch.setattr(literal, "MAX_PARSE_SECONDS", 0.0)
    write_site(tmp_path / "slow", "module.exports = {a: [" + "{b: 'c'}," * 20000 + "]};")
    with pytest.raises(InvalidArgument, match="to parse"):
        read_site(tmp_path / "slow")


def test_deep_nesting_is_reported_not_a_crash(tmp_path: Path) -> None:
    write_site(tmp_path, "module.exports = {baseUrl: '/a/', x: " + "[" * 5000 + "]" * 5000 + ", t: "
               + " + ".join(["'a'"] * 5000) + "};")
    site = read_site(tmp_path)
    assert site.base_url == "/a/"


def test_a_cancelled_parse_leaves_the_next_one_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_site(tmp_path / "slow", "module.exports = {a: [" + "{b: 'c'}," * 20000 + "]};")
    with monkeypatch.context() as patch:
        patch.setattr(literal, "MAX_PARSE_SECONDS", 0.0)
        with pytest.raises(InvalidArgument):
            read_site(tmp_path / "slow")
    assert read_site(SITES / "esm-versions").base_url == "/robotics/"


def test_versions_json_must_list_names(tmp_path: Path) -> None:
    write_site(tmp_path, "module.exports = {presets: ['classic']};")
    (tmp_path / "versions.json").write_text('{"not": "a list"}', encoding="utf-8")
    site = read_site(tmp_path)
    assert [u.key for u in site.unreadable] == ["versions.json"]
    with pytest.raises(InvalidArgument) as exc:
        site_routes(site)
    assert "versions.json" in violations(exc)["route_base_path"]


def test_parse_trailing_slash() -> None:
    assert [parse_trailing_slash(t) for t in ("", "true", "False", " unset ")] == [None, True, False, "unset"]
    with pytest.raises(InvalidArgument) as exc:
        parse_trailing_slash("maybe")
    assert exc.value.violations[0].field == "trailing_slash"


def test_package_exports_what_the_lead_wires() -> None:
    assert set(site_mod.__all__) >= {"read_site", "site_routes", "is_site_root", "SiteOverrides"}


def test_presets_named_by_require_resolve_and_presets_that_extend_the_classic_one(tmp_path: Path) -> None:
    """Metro's, Buck2's and other Meta sites' configs read
    `[require.resolve('docusaurus-plugin-internaldocs-fb/docusaurus-preset'), {docs: {...}}]`: a
    preset that extends the classic one and passes it its `docs` options. A preset without docs
    options stays unread, and is said so."""
    write_site(tmp_path / "fb", "module.exports = {presets: [[require.resolve('docusaurus-plugin-internaldocs-fb/"
               "docusaurus-preset'), {docs: {path: 'guides', routeBasePath: 'manual'}}]]};", docs="guides")
    site = read_site(tmp_path / "fb")
    assert site.docs is not None and (site.docs.path, site.docs.route_base_path) == ("guides", "/manual")
    assert any("read as the classic preset it extends" in n for n in site.notes)
    write_site(tmp_path / "classic", "module.exports = {presets: [[require.resolve('@docusaurus/preset-classic'), "
               "{docs: {routeBasePath: '/'}}]]};")
    classic = read_site(tmp_path / "classic").docs
    assert classic is not None and classic.route_base_path == "/"
    write_site(tmp_path / "other", "module.exports = {presets: [['some-preset', {theme: {}}]]};")
    with pytest.raises(InvalidArgument, match="no docs plugin"):
        site_routes(read_site(tmp_path / "other"))
    assert any("'some-preset' is not read" in n for n in read_site(tmp_path / "other").notes)


# --- markdown.format ----------------------------------------------------------------------------

@pytest.mark.parametrize(("markdown", "found", "note"), [
    ("", "mdx", ""), ("markdown: {mermaid: true},", "mdx", ""), ("markdown: {format: 'detect'},", "detect", ""),
    ("markdown: {format: 'md'},", "md", ""),
    ("markdown: {format: process.env.FORMAT},", "mdx", "pages are read as MDX, Docusaurus's default"),
    ("markdown: {format: 'rst'},", "mdx", "not one of mdx, md, detect"),
])
def test_markdown_format_is_read_from_the_config(tmp_path: Path, markdown: str, found: str, note: str) -> None:
    from services.ingest.book.editions import plan_source

    root = write_site(tmp_path, f"export default {{title: 'T', {markdown} presets: [['classic', {{}}]]}};")
    site = read_site(root)
    assert site.markdown_format == found
    assert {s.markdown.format for s in plan_source(root).sources} == {found}  # what ingest reads pages with
    notes = [u.message for u in site.unreadable if u.key == "markdown.format"]
    assert (note in notes[0]) if note else not notes


def test_computed_locales_say_that_no_translation_is_ingested(tmp_path: Path) -> None:
    """pnpm.io: `locales: LOCALE_CI ? [LOCALE_CI] : LOCALES`. Only the default locale is read, and
    the note says translations are left out rather than that ingest does not need the value."""
    from services.ingest.book.editions import plan_source

    root = write_site(tmp_path, "export default {title: 'T', i18n: {defaultLocale: process.env.L, "
                                "locales: process.env.CI ? ['en'] : LOCALES}, presets: [['classic', {}]]};")
    translated = root / "i18n" / "fr" / "docusaurus-plugin-content-docs" / "current"
    translated.mkdir(parents=True)
    (translated / "intro.md").write_text("# Intro\n\nBonjour.\n")
    site = read_site(root)
    notes = {u.key: u.message for u in site.unreadable}
    assert notes["i18n.locales"].endswith("only the default locale's pages are ingested, no translation")
    assert notes["i18n.defaultLocale"].endswith("the default locale is taken to be en")
    assert {s.edition.locale for s in plan_source(root).sources} == {"en"}


def test_under_detect_a_md_page_is_commonmark_and_a_mdx_page_is_mdx(tmp_path: Path) -> None:
    """Docusaurus compiles a .md page as CommonMark under markdown.format 'detect': an indented
    block is code, braces are text and an import shows as text (it imports nothing)."""
    from services.ingest.book.discovery import SourceFile
    from services.ingest.book.parser import SiteMarkdown

    page = ("import Note from './_note.md';\n\n# P\n\nLiteral {braces} here.\n\n    indented code\n\n"
            "<Note />\n")
    (tmp_path / "_note.md").write_text("The partial's text.\n", encoding="utf-8")
    for name in ("a.md", "b.mdx"):
        (tmp_path / name).write_text(page, encoding="utf-8")

    def content(name: str, markdown_format: str) -> str:
        file = SourceFile(tmp_path / name, name, "")
        return " ".join(c.content for c in read_page(file, "b", "/docs/", Budget(count_tokens), False,
                                                      markdown=SiteMarkdown(markdown_format)).chunks)

    assert content("a.md", "detect") == "import Note from './_note.md';\n\nLiteral {braces} here.\n\n" \
        "```\nindented code\n```"
    assert content("b.mdx", "detect") == content("a.md", "mdx") == \
        "Literal here.\n\nindented code\n\nThe partial's text."
    assert content("b.mdx", "md") == content("a.md", "detect")


# --- themeConfig.prism.magicComments ------------------------------------------------------------

@pytest.mark.parametrize(("theme", "found", "note"), [
    ("", DIRECTIVES, False),
    ("themeConfig: {prism: {theme: x}},", DIRECTIVES, False),
    ("themeConfig: {prism: {magicComments: [{className: 'a', line: 'This will error'}, "
     "{className: 'b', block: {start: 'err-start', end: 'err-end'}}]}},",
     ("This will error", "err-start", "err-end"), False),
    ("themeConfig: {prism: {magicComments: []}},", (), False),
    ("themeConfig: {prism: {magicComments: [{className: 'a', line: process.env.X}]}},", DIRECTIVES, True),
    ("themeConfig: {prism: {magicComments: comments()}},", DIRECTIVES, True),
])
def test_magic_comments_are_read_from_the_theme_config(tmp_path: Path, theme: str, found: tuple[str, ...],
                                                       note: bool) -> None:
    from services.ingest.book.editions import plan_source

    root = write_site(tmp_path, f"export default {{title: 'T', {theme} presets: [['classic', {{}}]]}};")
    site = read_site(root)
    assert site.magic_comments == found
    assert {s.markdown.magic_comments for s in plan_source(root).sources} == {found}
    assert any("magicComments" in n for n in site.notes) == note


# --- The Docusaurus that builds the site --------------------------------------------------------

@pytest.mark.parametrize(("package", "major"), [
    (None, 3), ('{"dependencies": {"@docusaurus/core": "2.4.3"}}', 2),
    ('{"devDependencies": {"@docusaurus/core": "^2.0.0-beta.21"}}', 2),
    ('{"dependencies": {"@docusaurus/core": "3.10.2"}}', 3), ('{"dependencies": {"@docusaurus/core": "latest"}}', 3),
    ("not json", 3), ('["a list"]', 3),
])
def test_the_docusaurus_major_version_is_read_from_package_json(tmp_path: Path, package: str | None,
                                                                major: int) -> None:
    from services.ingest.book.editions import plan_source

    root = write_site(tmp_path, "export default {title: 'T', presets: [['classic', {}]]};")
    if package is not None:
        (root / "package.json").write_text(package, encoding="utf-8")
    assert read_site(root).docusaurus_major == major
    assert {s.markdown.docusaurus_major for s in plan_source(root).sources} == {major}


@pytest.mark.parametrize(("core", "options", "titled", "unreadable"), [
    # React Native's site: Docusaurus 3.10.1 with `future: {v4: true}` shows ":::warning Caution" as text.
    ("3.10.1", "future: {v4: true},", False, ""),
    ("3.9.2", "future: {v4: true},", True, ""),  # the flag came with 3.10
    ("^3.10.0", "future: {v4: {mdx1CompatDisabledByDefault: true}},", False, ""),
    ("3.10.2", "future: {v4: {removeLegacyPostBuildHeadAttribute: true}},", True, ""),  # pnpm's site
    ("3.10.1", "future: {v4: true}, markdown: {mdx1Compat: {admonitions: true}},", True, ""),
    ("3.8.0", "markdown: {mdx1Compat: {admonitions: false}},", False, ""),
    ("3.10.1", "future: {v4: process.env.V4},", True, "future.v4"),
    ("3.10.1", "markdown: {mdx1Compat: {admonitions: process.env.A}},", True, "markdown.mdx1Compat.admonitions"),
    (None, "future: {v4: true},", True, ""),  # no package.json: not known to be 3.10
])
def test_legacy_admonition_titles_follow_the_sites_mdx1_compat(tmp_path: Path, core: str | None, options: str,
                                                               titled: bool, unreadable: str) -> None:
    """markdown.mdx1Compat.admonitions, as Docusaurus 3.10's postProcessDocusaurusConfig resolves it:
    off by default under future.v4, when ":::note Its title" is text as written."""
    from services.ingest.book.editions import plan_source

    root = write_site(tmp_path, f"export default {{title: 'T', {options} presets: [['classic', {{}}]]}};")
    if core is not None:
        (root / "package.json").write_text(f'{{"dependencies": {{"@docusaurus/core": "{core}"}}}}', encoding="utf-8")
    site = read_site(root)
    assert site.legacy_admonition_titles is titled
    assert [u.key for u in site.unreadable] == ([unreadable] if unreadable else [])
    [source] = plan_source(root).sources
    assert source.markdown.legacy_admonition_titles is titled
    shown = [b.text for b in parse_page(":::warning Caution\n\nBe careful.\n\n:::\n", site=source.markdown).blocks]
    assert shown == (["Warning: Caution", "Be careful."] if titled else [":::warning Caution", "Be careful.", ":::"])


def test_the_docs_page_plugins_ingest_does_not_follow_are_named(tmp_path: Path) -> None:
    """Redux's site runs remark-typescript-tools' transpileCodeblocks (a JavaScript tab beside each
    TypeScript block); Docusaurus's own, remark-math and rehype-katex. What they change is read as
    the source has it, and the plan says so; npm2yarn, which ingest follows, is not named, nor
    the plugins of a docs instance that is not ingested."""
    from services.ingest.book.editions import plan_source

    root = write_site(tmp_path, "import npm2yarn from '@docusaurus/remark-plugin-npm2yarn';\n"
                                "import math from 'remark-math';\nimport {transpile} from 'remark-typescript-tools';\n"
                                "export default {title: 'T', presets: [['classic', {docs: {remarkPlugins: [npm2yarn, "
                                "math, [transpile, {x: 1}]], rehypePlugins: [require('rehype-katex')]}}]], plugins: "
                                "[['@docusaurus/plugin-content-docs', {id: 'community', path: 'community', "
                                "remarkPlugins: [math]}]]};")
    notes = [n for n in plan_source(root).warnings if "not followed" in n]
    assert notes == [
        "presets[0] classic › docs: remarkPlugins remark-math, `transpile` are not followed; what they change "
        "on a page is read as the page's source has it",
        "presets[0] classic › docs: rehypePlugins rehype-katex are not followed; what they change on a page is "
        "read as the page's source has it"]


def test_twoslash_blocks_show_what_remark_shiki_twoslash_shows(tmp_path: Path) -> None:
    """tRPC's site: `require('remark-shiki-twoslash').default` among the docs' remark plugins.
    Its blocks show what the plugin shows (checked by running remark-shiki-twoslash 3 on each
    case): the code after `// ---cut---` and before `// ---cut-after---`, without compiler flags
    and type queries, `// @filename:` lines kept, `// @include:` standing for an include block
    above, which itself shows nothing. A site without the plugin shows its blocks as written."""
    from services.ingest.book.editions import plan_source
    from services.ingest.book.parser import parse_page

    root = write_site(tmp_path, "export default {title: 'T', presets: [['classic', {docs: {remarkPlugins: "
                                "[[require('remark-shiki-twoslash').default, {themes: ['min-light']}]]}}]]};")
    plan = plan_source(root)
    assert not [n for n in plan.warnings if "not followed" in n]
    markdown = plan.sources[0].markdown
    assert markdown.twoslash
    page = ("```twoslash include lib\nexport const greet = 1;\n```\n\n"
            "```ts twoslash title=\"a.ts\"\n// @target: esnext\n// @include: lib\n// ---cut---\nconst n = 1;\n"
            "//    ^?\nconsole.log(n);\n```\n\n"
            "```ts twoslash\n// @noErrors\n// @filename: a.ts\nexport const x = 1;\n// @include: lib\n"
            "// ---cut-after---\nhidden();\n```\n\n```ts\n// @target: esnext\nconst plain = 1;\n```\n")
    assert [(b.info, b.text) for b in parse_page(page, site=markdown).blocks] == [
        ('ts title="a.ts"', "const n = 1;\nconsole.log(n);"),
        ("ts", "// @filename: a.ts\nexport const x = 1;\nexport const greet = 1;"),
        ("ts", "// @target: esnext\nconst plain = 1;")]
    assert len([b for b in parse_page(page).blocks if b.kind == "code"]) == 4  # without the plugin: as written
    # `.default` names an ES module's default export for any plugin, npm2yarn's too.
    other = write_site(tmp_path / "other", "export default {title: 'T', presets: [['classic', {docs: {remarkPlugins: "
                       "[require('@docusaurus/remark-plugin-npm2yarn').default]}}]]};")
    assert plan_source(other).sources[0].markdown.npm2yarn is not None


def test_a_code_block_without_a_language_is_shown_as_the_sites_docusaurus_shows_it(tmp_path: Path) -> None:
    """Docusaurus 3.8 and later show such a block as "text" and drop its magic comments (the sample
    site's build checks it); 3.7 and before show it without a language and keep them;
    prism.defaultLanguage, when given, is the language on any version."""
    from services.ingest.book.editions import plan_source
    from services.ingest.book.parser import parse_page

    block = "```\n// highlight-next-line\nstatus();\n```\n"
    config = "export default {title: 'T', presets: [['classic', {docs: {}}]]{theme}};"
    for core, theme, shown in (("^3.8.0", "", "status();"), ("3.7.0", "", "// highlight-next-line\nstatus();"),
                               ("3.5.2", ", themeConfig: {prism: {defaultLanguage: 'js'}}", "status();")):
        root = write_site(tmp_path / core, config.replace("{theme}", theme))
        (root / "package.json").write_text(json.dumps({"dependencies": {"@docusaurus/core": core}}))
        markdown = plan_source(root).sources[0].markdown
        assert [b.text for b in parse_page(block, site=markdown).blocks] == [shown], core


# --- A site inside a monorepo's workspace -----------------------------------------------------------

def _workspace(tmp_path: Path, marker: str = "workspaces") -> Path:
    """Babel's layout: website/ holds the config and a package.json of scripts only; the
    repository's root declares the workspace, its Docusaurus packages and their lock."""
    site = write_site(tmp_path / "website", "module.exports = {presets: [['classic', {docs: {remarkPlugins: "
                                            "[require('@docusaurus/remark-plugin-npm2yarn')]}}]]};")
    (site / "package.json").write_text(json.dumps({"scripts": {"build": "docusaurus build"}}), encoding="utf-8")
    root: dict[str, object] = {"devDependencies": {"@docusaurus/core": "^3.9.2"}}
    if marker == "workspaces":
        root["workspaces"] = ["./website"]
    else:
        (tmp_path / "pnpm-workspace.yaml").write_text("packages:\n  - website\n", encoding="utf-8")
    (tmp_path / "package.json").write_text(json.dumps(root), encoding="utf-8")
    (tmp_path / "yarn.lock").write_text('"npm-to-yarn@npm:^3.0.0":\n  version: 3.0.1\n', encoding="utf-8")
    return site


@pytest.mark.parametrize("marker", ["workspaces", "pnpm-workspace.yaml"])
def test_a_workspace_root_declares_the_sites_docusaurus(tmp_path: Path, marker: str) -> None:
    site = read_site(_workspace(tmp_path, marker))
    assert (site.docusaurus_major, site.plain_code_language, site.npm_to_yarn) == (3, "text", (3, 2))
    assert site.docs is not None and site.docs.npm2yarn == ("yarn", "pnpm", "bun")  # Bun since 3.8, as built


def test_a_workspace_root_is_not_read_outside_the_ingest_roots_or_the_repository(tmp_path: Path) -> None:
    site = _workspace(tmp_path)
    assert read_site(site, [tmp_path]).plain_code_language == "text"
    outside = read_site(site, [site])  # the server may read the site's folder only: Docusaurus 3.0 assumed
    assert (outside.plain_code_language, outside.npm_to_yarn) == ("", (2, 2))
    (site / ".git").mkdir()  # the site is a repository of its own
    assert read_site(site).plain_code_language == ""
    (site / ".git").rmdir()
    (tmp_path / "package.json").write_text(json.dumps({"devDependencies": {"@docusaurus/core": "3.9.2"}}),
                                           encoding="utf-8")
    assert read_site(site).plain_code_language == ""  # a package.json above that is no workspace root


def test_a_package_json_linked_from_outside_is_not_read(tmp_path: Path) -> None:
    site = write_site(tmp_path / "site", "module.exports = {};")
    outside = tmp_path / "elsewhere.json"
    outside.write_text(json.dumps({"dependencies": {"@docusaurus/core": "2.4.3"}}), encoding="utf-8")
    (site / "package.json").symlink_to(outside)
    assert read_site(site).docusaurus_major == 3  # as if it named no version
    (site / "package.json").unlink()
    (site / "package.json").write_text(outside.read_text(encoding="utf-8"), encoding="utf-8")
    assert read_site(site).docusaurus_major == 2
