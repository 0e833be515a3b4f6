"""Docusaurus's npm2yarn remark plugin as ingest follows it: which config turns it on, which
blocks it converts, and the tabs a page then shows. The conversions themselves are compared
with the npm package `npm-to-yarn` in tests/test_docusaurus_build.py, where Node and the
sample site's node_modules are at hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.ingest.book import npm2yarn
from services.ingest.book.editions import plan_source
from services.ingest.book.parser import SiteMarkdown, parse_page
from services.ingest.book.site import read_site
from services.ingest.book.site.lock import locked_versions
from tests.test_site_config import write_site

PAGE = "# Install\n\n```bash npm2yarn\nnpm install --save-dev jest\n```\n"


def shown(text: str, converters: tuple[str, ...] | None) -> list[tuple[str, str]]:
    return [(b.kind, b.text) for b in parse_page(text, site=SiteMarkdown(npm2yarn=converters)).blocks
            if b.kind != "heading"]


def test_a_marked_block_shows_a_tab_per_package_manager_npm_first() -> None:
    assert shown(PAGE, npm2yarn.DEFAULT_CONVERTERS) == [
        ("text", "npm:"), ("code", "npm install --save-dev jest"),
        ("text", "Yarn:"), ("code", "yarn add --dev jest"),
        ("text", "pnpm:"), ("code", "pnpm add --save-dev jest"),
        ("text", "Bun:"), ("code", "bun add --dev jest"),
    ]
    blocks = parse_page(PAGE, site=SiteMarkdown(npm2yarn=("pnpm",))).blocks
    assert [b.text for b in blocks if b.label] == ["npm:", "pnpm:"]
    assert {b.info for b in blocks if b.kind == "code"} == {"bash"}  # the tabs' code keeps the language only


@pytest.mark.parametrize("fence", [
    "```bash npm2yarn title=\"install\"",  # the plugin wants the meta to be exactly npm2yarn
    "```npm2yarn",  # that is the language here, with no meta
    "```bash",
])
def test_only_a_block_whose_meta_is_exactly_npm2yarn_is_converted(fence: str) -> None:
    text = f"{fence}\nnpm install jest\n```\n"
    assert [kind for kind, _ in shown(text, npm2yarn.DEFAULT_CONVERTERS)] == ["code"]


def test_without_the_plugin_a_marked_block_is_one_block() -> None:
    assert shown(PAGE, None) == [("code", "npm install --save-dev jest")]


def test_an_unconvertible_command_shows_what_the_plugin_shows() -> None:
    # npm-to-yarn keeps npm's command with a comment saying so (checked against the package).
    assert npm2yarn.convert("npm ci", "yarn") == "npm ci\n# couldn't auto-convert command"
    assert npm2yarn.convert("npx create-docusaurus@latest site classic", "pnpm") == \
        "pnpm dlx create-docusaurus@latest site classic"


@pytest.mark.parametrize(("plugins", "converters", "note"), [
    ("", None, ""),
    ("remarkPlugins: [npm2yarn],", ("yarn", "pnpm"), ""),  # no package.json: Docusaurus 3.0's defaults
    ("remarkPlugins: [[npm2yarn, {sync: true}], other],", ("yarn", "pnpm"), ""),
    ("remarkPlugins: [[require('@docusaurus/remark-plugin-npm2yarn'), {converters: ['pnpm', 'yarn']}]],",
     ("pnpm", "yarn"), ""),
    ("remarkPlugins: [[npm2yarn, {converters: ['yarn', ['turbo', (code) => code]]}]],", ("yarn",),
     "are not followed"),
    ("remarkPlugins: [[npm2yarn, {converters: process.env.X}]],", (), "could not be read"),
    ("remarkPlugins: [other],", None, ""),
])
def test_the_plugin_and_its_converters_are_read_from_the_docs_options(
        tmp_path: Path, plugins: str, converters: tuple[str, ...] | None, note: str) -> None:
    root = write_site(tmp_path, "import npm2yarn from '@docusaurus/remark-plugin-npm2yarn';\n"
                                "import other from 'remark-other';\n"
                                f"export default {{title: 'T', presets: [['classic', {{docs: {{{plugins}}}}}]]}};")
    site = read_site(root)
    assert site.docs is not None and site.docs.npm2yarn == converters
    assert {s.markdown.npm2yarn for s in plan_source(root).sources} == {converters}  # what pages are read with
    assert any(note in n for n in site.notes) if note else not [n for n in site.notes if "npm2yarn" in n]


@pytest.mark.parametrize(("dependencies", "converters"), [
    ({"@docusaurus/core": "3.10.2"}, ("yarn", "pnpm", "bun")),  # Bun is a default since 3.8
    ({"@docusaurus/core": "~3.7.0", "@docusaurus/remark-plugin-npm2yarn": "3.10.0"}, ("yarn", "pnpm")),
    # Stencil installs core through Ionic's preset and names only the plugin; its build shows no Bun tab.
    ({"@ionic-docs/preset-classic": "1.0.0", "@docusaurus/remark-plugin-npm2yarn": "~3.5.0"}, ("yarn", "pnpm")),
    ({"@docusaurus/core": "2.4.3"}, ("yarn", "pnpm")),  # pnpm came with 2.4
    ({"@docusaurus/core": "2.3.1"}, ("yarn",)),
    # The lowest of the other packages, not the first in text order ("3.8.1" < "~3.5.0" as strings).
    ({"@docusaurus/preset-classic": "~3.5.0", "@docusaurus/module-type-aliases": "3.8.1"}, ("yarn", "pnpm")),
])
def test_the_default_converters_are_those_of_the_sites_docusaurus(
        tmp_path: Path, dependencies: dict[str, str], converters: tuple[str, ...]) -> None:
    root = write_site(tmp_path, "import npm2yarn from '@docusaurus/remark-plugin-npm2yarn';\n"
                                "export default {presets: [['classic', {docs: {remarkPlugins: [npm2yarn]}}]]};")
    (root / "package.json").write_text(json.dumps({"dependencies": dependencies}), encoding="utf-8")
    assert {s.markdown.npm2yarn for s in plan_source(root).sources} == {converters}


def test_a_named_import_of_the_package_is_not_the_plugin(tmp_path: Path) -> None:
    root = write_site(tmp_path, "import {helper} from '@docusaurus/remark-plugin-npm2yarn';\n"
                                "export default {presets: [['classic', {docs: {remarkPlugins: [helper]}}]]};")
    site = read_site(root)
    assert site.docs is not None and site.docs.npm2yarn is None


def test_a_block_that_would_grow_without_bound_keeps_only_npms_tab() -> None:
    """Each "npm" npm-to-yarn cannot convert becomes a comment line: "npmnpm…" would grow about
    fifteen-fold per tab. Such tabs are not read, so a hostile page stays a small multiple of itself."""
    code = "npmnpm" * 10_000
    assert [label for label, _ in npm2yarn.tabs(code, npm2yarn.DEFAULT_CONVERTERS)] == ["npm"]
    assert len(npm2yarn.convert(code, "yarn")) > 10 * len(code)  # what the package itself would show
    assert [label for label, _ in npm2yarn.tabs("npm ci", npm2yarn.DEFAULT_CONVERTERS)] == \
        ["npm", "Yarn", "pnpm", "Bun"]


# --- Which npm-to-yarn a site converts with -------------------------------------------------------

LOCKS = {
    "package-lock.json": json.dumps({"lockfileVersion": 3, "packages": {
        "node_modules/@docusaurus/remark-plugin-npm2yarn": {"version": "2.0.1",
                                                            "dependencies": {"npm-to-yarn": "^1.0.1"}},
        "node_modules/npm-to-yarn-2": {"name": "npm-to-yarn", "version": "2.2.1"},  # an alias: another name
        "node_modules/npm-to-yarn": {"version": "1.0.1", "resolved": "https://registry.npmjs.org/x.tgz"}}},
        indent=2),
    "yarn.lock": 'npm-to-yarn@^1.0.1, npm-to-yarn@^1.0.0:\n  version "1.0.1"\n  resolved "x"\n',
    "pnpm-lock.yaml": "packages:\n\n  /npm-to-yarn@1.0.1:\n    resolution: {integrity: x}\n",
}


@pytest.mark.parametrize("lock", list(LOCKS))
def test_a_lock_file_names_the_npm_to_yarn_a_site_builds_with(tmp_path: Path, lock: str) -> None:
    (tmp_path / lock).write_text(LOCKS[lock], encoding="utf-8")
    assert locked_versions(tmp_path, "npm-to-yarn") == [(1, 0)]
    assert locked_versions(tmp_path, "react") == []


def test_yarn_berry_and_nested_npm_copies_are_read(tmp_path: Path) -> None:
    (tmp_path / "yarn.lock").write_text('"npm-to-yarn@npm:^3.0.0":\n  version: 3.2.0\n  resolution: "x"\n',
                                        encoding="utf-8")
    nested = {"packages": {"node_modules/a/node_modules/npm-to-yarn": {"version": "2.0.0"}}}
    (tmp_path / "package-lock.json").write_text(json.dumps(nested, indent=2), encoding="utf-8")
    assert sorted(locked_versions(tmp_path, "npm-to-yarn")) == [(2, 0), (3, 2)]


@pytest.mark.parametrize(("docusaurus", "locked", "release"), [
    ((2, 0), [(1, 0)], (1, 0)),  # Testing Library's lock: `npm run x` stays `yarn run x`
    ((2, 0), [], (1, 3)),  # what ^1.0.1 installs today
    ((2, 3), [(3, 2), (1, 2)], (1, 3)),  # a copy of another major belongs to some other package
    ((2, 4), [], (2, 2)), ((3, 5), [(2, 0)], (2, 2)), ((3, 6), [], (3, 2)), ((3, 10), [(3, 0)], (3, 2)),
])
def test_the_release_is_the_sites_docusaurus_major_pinned_by_its_lock(
        docusaurus: tuple[int, int], locked: list[tuple[int, int]], release: tuple[int, int]) -> None:
    assert npm2yarn.release(docusaurus, locked) == release


def test_a_docusaurus_2_0_site_shows_the_yarn_tab_its_npm_to_yarn_made(tmp_path: Path) -> None:
    """Testing Library (Docusaurus 2.0.1, npm-to-yarn 1.0.1 in its lock): a Yarn tab only, where
    `npm run` stays and `npm i -D` is not converted (compared with the built site)."""
    root = write_site(tmp_path, "module.exports = {presets: [['classic', {docs: {remarkPlugins: "
                                "[[require('@docusaurus/remark-plugin-npm2yarn'), {sync: true}]]}}]]};")
    (root / "package.json").write_text(json.dumps({"dependencies": {"@docusaurus/core": "^2.0.1"}}), encoding="utf-8")
    (root / "package-lock.json").write_text(LOCKS["package-lock.json"], encoding="utf-8")
    markdown = plan_source(root).sources[0].markdown
    assert (markdown.npm2yarn, markdown.npm_to_yarn) == (("yarn",), (1, 0))
    text = "```bash npm2yarn\nnpm run qwik add vitest\nnpm i -D vitest\n```\n"
    assert [b.text for b in parse_page(text, site=markdown).blocks if b.kind != "heading"] == [
        "npm:", "npm run qwik add vitest\nnpm i -D vitest",
        "Yarn:", "yarn run qwik add vitest\nyarn i -D vitest\n# couldn't auto-convert command"]


def test_a_hostile_lock_line_is_read_in_one_pass(tmp_path: Path) -> None:
    """A yarn.lock line of repeated "npm-to-yarn@" once took the entry pattern's nested repeats
    into exponential backtracking (26 repeats: 27 s); the pattern now has none, so this returns."""
    (tmp_path / "yarn.lock").write_text("npm-to-yarn@" * 10_000 + "x\n" + "npm-to-yarn@^1.0.1:\n  version \"1.3.0\"\n",
                                        encoding="utf-8")
    assert locked_versions(tmp_path, "npm-to-yarn") == [(1, 3)]


def test_a_lock_file_linked_from_outside_is_not_read(tmp_path: Path) -> None:
    outside = tmp_path / "outside.lock"
    outside.write_text("npm-to-yarn@^1.0.1:\n  version \"1.0.1\"\n", encoding="utf-8")
    site = tmp_path / "site"
    site.mkdir()
    (site / "yarn.lock").symlink_to(outside)
    assert locked_versions(site, "npm-to-yarn") == []
    (site / "yarn.lock").unlink()
    (site / "yarn.lock").write_text(outside.read_text(encoding="utf-8"), encoding="utf-8")
    assert locked_versions(site, "npm-to-yarn") == [(1, 0)]
