"""The docs plugin's include/exclude globs, matched as Docusaurus (globby -> fast-glob ->
micromatch) matches them, and applied to every content folder of a site."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from runtime.errors import InvalidArgument
from services.ingest.book.discovery import discover
from services.ingest.book.editions import plan_source
from services.ingest.book.globs import (
    DEFAULT_EXCLUDE,
    DEFAULT_INCLUDE,
    GlobError,
    PageGlobs,
    compile_glob,
    expand_braces,
)
from services.ingest.sync import _pages
from tests.conftest import FIXTURES

ROOT = Path(__file__).resolve().parents[1]
NODE_MODULES = ROOT / "examples" / "book" / "node_modules"
SITE = FIXTURES / "sites" / "esm-versions"


def match(path: str, pattern: str, dot: bool = False) -> bool:
    return compile_glob(pattern, dot).match(path) is not None


# (pattern, path, dot, micromatch's answer under fast-glob's options) — from micromatch's
# documented semantics, each checked against micromatch 4.0.8 by test_agrees_with_micromatch.
CASES = [
    ("**/*.{md,mdx}", "a.md", False, True),
    ("**/*.{md,mdx}", "a/b/c.mdx", False, True),
    ("**/*.{md,mdx}", "a.MD", False, False),  # case-sensitive
    ("**/*.{md,mdx}", ".a.md", False, False),  # * never matches a leading dot ...
    ("**/*.{md,mdx}", ".a.md", True, True),  # ... unless dot
    ("**/*.{md,mdx}", ".x/a.md", False, False),  # ** never enters a dot-folder without dot
    ("**/*.{md,mdx}", "a/.x/b.md", False, False),
    ("**/.x/*.md", "a/.x/b.md", False, True),  # a literal dot does
    ("*.md", "a/b.md", False, False),  # * stays in one segment
    ("a/**/b.md", "a/b.md", False, True),  # ** is zero or more segments
    ("a/*/b.md", "a/b.md", False, False),
    ("a/**", "a", False, True),  # a trailing /** also matches the folder itself ...
    ("**/drafts/**", "drafts", False, True),
    ("**/_*/**", "_a", False, False),  # ... but not after a segment ending in *
    ("**/_*/**", "_a/b.md", False, True),
    ("**/drafts/**", "x/drafts/.a.md", False, False),
    ("**/drafts/**", "x/drafts/.a.md", True, True),
    ("a**b.md", "axyb.md", False, True),  # ** inside a segment is *
    ("a**b.md", "ax/yb.md", False, False),
    ("?.md", "a.md", False, True),
    ("?.md", ".md", False, False),
    ("a?b.md", "a/b.md", False, False),
    ("[!a]b.md", "cb.md", False, True),
    ("[!a]b.md", "ab.md", False, False),
    ("[^a]b.md", "!b.md", False, True),
    ("[a-c]b.md", "bb.md", False, True),
    ("[a-c]b.md", "-x.md", False, False),
    ("**/[!_]*.md", ".a.md", False, True),  # picomatch guards a leading dot only after * or ?
    ("**/v[0-9].md", "x/v4.md", False, True),
    ("[[:alpha:]].md", "b.md", False, True),
    ("v{1..3}.md", "v2.md", False, True),
    ("v{1..3}.md", "v4.md", False, False),
    ("v{01..10}.md", "v05.md", False, True),
    ("{a..c}.md", "b.md", False, True),
    ("{a,b/{c,d}}/*.md", "b/d/x.md", False, True),
    ("{a,}b.md", "b.md", False, True),
    ("a/{b}/c.md", "a/{b}/c.md", False, True),  # one choice is no brace set
    ("@(a|b).md", "b.md", False, True),
    ("+(a|b).md", "abab.md", False, True),
    ("*(a|b).md", ".md", False, True),
    ("?(a).md", "b.md", False, False),
    ("./a/*.md", "a/b.md", False, True),
    ("\\*.md", "*.md", False, True),
    ("\\*.md", "a.md", False, False),
]


@pytest.mark.parametrize(("pattern", "path", "dot", "expected"), CASES)
def test_micromatch_semantics(pattern: str, path: str, dot: bool, expected: bool) -> None:
    assert match(path, pattern, dot) is expected


def test_brace_expansion_like_micromatch_braces() -> None:
    assert expand_braces("**/*.{md,mdx}") == ["**/*.md", "**/*.mdx"]
    assert expand_braces("{a,b/{c,d}}") == ["a", "b/c", "b/d"]
    assert expand_braces("v{08..10}") == ["v08", "v09", "v10"]
    assert expand_braces("{1..7..3}") == ["1", "4", "7"]
    assert expand_braces("\\{a,b}") == ["\\{a,b}"]
    with pytest.raises(GlobError):
        expand_braces("{1..100000}")
    with pytest.raises(GlobError):
        compile_glob("!(draft).md")


def test_docusaurus_defaults() -> None:
    pages = PageGlobs(Path("/nowhere"))
    assert (DEFAULT_INCLUDE, len(DEFAULT_EXCLUDE)) == (("**/*.{md,mdx}",), 4)
    for page in ("intro.md", "guides/a.mdx", "a/b/c/d.md", "my_page.md"):
        assert pages.matches(page), page
    for not_page in ("_partial.md", "guides/_snippet.mdx", "_shared/a.md", "x/_y/z.md", "__tests__/a.md",
                     "a/__tests__/b.md", "a.txt", ".hidden.md", ".github/a.md", "a.test.md.js"):
        assert not pages.matches(not_page), not_page


def test_include_negations_and_folders_as_globby(tmp_path: Path) -> None:
    (tmp_path / "guides").mkdir()
    pages = PageGlobs(tmp_path, ["guides", "*.md", "!secret.md"], [])
    assert pages.matches("guides/a.txt")  # a folder named in include is everything under it
    assert pages.matches("intro.md") and not pages.matches("secret.md")
    absolute = PageGlobs(tmp_path, None, [f"{tmp_path.as_posix()}/old/**"])  # matched against the full path
    assert absolute.matches("new/a.md") and not absolute.matches("old/a.md")


def _tree(root: Path, *files: str) -> None:
    for rel in files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f"# {rel}\n", encoding="utf-8")


def test_discover_applies_include_and_exclude(tmp_path: Path) -> None:
    _tree(tmp_path, "intro.md", "a/b.mdx", "_partial.md", "_shared/x.md", ".hidden/h.md", "node_modules/p/r.md",
          "drafts/d.md", "notes.txt", "a/__tests__/t.md", ".well/known.md")

    def rels(include: list[str] | None = None, exclude: list[str] | None = None) -> list[str]:
        return [f.rel for f in discover(tmp_path, include, exclude)]

    # Defaults: what the docs folder ingest always took.
    assert rels() == ["intro.md", "a/b.mdx", "drafts/d.md"]
    # A replaced exclude drops Docusaurus's partial rules too (as Docusaurus does).
    assert rels(include=["**/*.md"], exclude=["**/drafts/**"]) == ["_partial.md", "intro.md", "_shared/x.md",
                                                                      "a/__tests__/t.md"]
    assert rels(include=["**/*.txt"]) == ["notes.txt"]
    assert rels(include=[".well/*.md"]) == [".well/known.md"]  # a dot-folder named by a pattern is walked


def test_a_sites_include_and_exclude_apply_to_every_content_folder() -> None:
    plan = plan_source(SITE)
    assert {(s.include, s.exclude) for s in plan.sources} == {(("**/*.md",), ("**/drafts/**",))}
    taken: set[str] = set()
    orphans: list[str] = []
    for source in plan.sources:
        files, missing = _pages(source)
        taken |= {f.path.relative_to(SITE.resolve()).as_posix() for f in files}
        orphans += missing
    # The fixture holds drafts/ in every folder and an .mdx page: none is a page.
    assert (SITE / "docs" / "drafts" / "wip.md").is_file() and (SITE / "docs" / "widgets.mdx").is_file()
    assert taken == {
        "docs/intro.md", "docs/calibration.md", "docs/guides/motion.md",
        "versioned_docs/version-1.0/intro.md", "versioned_docs/version-1.0/calibration.md",
        "i18n/fr/docusaurus-plugin-content-docs/current/intro.md",
        "i18n/fr/docusaurus-plugin-content-docs/current/calibration.md",
    }
    assert orphans == ["orphan.md"]  # the excluded French draft is no orphan either


def test_a_pattern_not_reproduced_is_refused_before_ingest(tmp_path: Path) -> None:
    shutil.copytree(SITE, tmp_path / "site")
    config = tmp_path / "site" / "docusaurus.config.mjs"
    config.write_text(config.read_text(encoding="utf-8").replace("'**/drafts/**'", "'**/!(keep)/**'"),
                      encoding="utf-8")
    with pytest.raises(InvalidArgument) as caught:
        plan_source(tmp_path / "site")
    assert caught.value.violations[0].field == "source_dir"
    assert "include/exclude" in str(caught.value) and "!(...)" in str(caught.value)


def _fast_glob_answers(cases: list[tuple[str, str, bool]]) -> list[bool]:
    script = """
const mm = require(process.argv[1] + "/micromatch");
const cases = JSON.parse(require("fs").readFileSync(0, "utf8"));
// fast-glob 3.3: braces expanded first, then micromatch.makeRe with its options.
const opts = {matchBase: false, nobrace: false, nocase: false, noext: false, noglobstar: false,
              posix: true, strictSlashes: false};
console.log(JSON.stringify(cases.map(([p, s, dot]) =>
  mm.braces(p, {expand: true, nodupes: true, keepEscaping: true}).filter(x => x !== "")
    .some(q => mm.makeRe(q, {...opts, dot}).test(s)))));
"""
    node = shutil.which("node")
    assert node
    out = subprocess.run([node, "-e", script, str(NODE_MODULES)], input=json.dumps(cases), capture_output=True,
                         text=True, check=True, timeout=60).stdout
    answers = json.loads(out)
    assert isinstance(answers, list)
    return [bool(a) for a in answers]


@pytest.mark.skipif(shutil.which("node") is None or not (NODE_MODULES / "micromatch").is_dir(),
                    reason="needs node and examples/book/node_modules (npm ci)")
def test_agrees_with_micromatch() -> None:
    patterns = sorted({c[0] for c in CASES} | set(DEFAULT_EXCLUDE) | {
        "**/*.md", "**/drafts/**", "a/**", "*.md/**", "a?/**", "[ab]/**", "@(a)/**", "**/*a/**", "**/**/*.md",
        "guides/**/*.mdx", "**/x*y/**", "[]]x.md", "[a-]x.md", "*", "a/b", "**/*.test.{js,jsx,ts,tsx}"})
    paths = sorted({c[1] for c in CASES} | {
        "a", "a/b", "a/b.md", "a/b/c.md", "_a.md", "x/_a.md", "x/_a/b/c.md", "drafts/a.md", "v2.md", "b/c/x.md",
        "guides/x.mdx", "guides/a/b.mdx", "p/xzy/q.md", "]x.md", "-x.md", "a.test.ts", "q/__tests__/a.md",
        "a/x/y/c.md", "a/.b", ".md", "ab", "a.md/x"})
    cases = [(p, s, d) for p in patterns for s in paths for d in (False, True)]
    expected = _fast_glob_answers(cases)
    wrong = [(p, s, d, want) for (p, s, d), want in zip(cases, expected, strict=True) if match(s, p, d) != want]
    assert wrong == [], wrong[:20]
    assert len(cases) > 2000
