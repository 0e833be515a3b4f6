"""Markdown partials are read where the page shows them, as the built page holds them: their text
in place, their headings with ids of their own slugger. Anything that cannot be shown safely is
reported and left out, never a crash. (tests/test_docusaurus_build.py checks the sample book's
partials against a real build.)"""

from __future__ import annotations

from pathlib import Path

from embedding.tokens import count_tokens
from services.ingest.book.chunker import Budget
from services.ingest.book.discovery import SourceFile
from services.ingest.book.pages import read_page
from services.ingest.book.parser import SiteMarkdown
from services.ingest.book.partials import MAX_DEPTH, parse_with_partials, partial_files

NOTE = ":::info\n\nImport the APIs explicitly:\n\n```ts\nimport {expect} from '@jest/globals';\n```\n\n:::\n"


def _page(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _texts(root: Path, rel: str) -> tuple[list[str], list[str]]:
    page, notes = parse_with_partials((root / rel).read_text(), root / rel, root)
    return [b.text for b in page.blocks], notes


def test_a_partial_is_read_where_the_page_shows_it(tmp_path: Path) -> None:
    _page(tmp_path, "_note.md", "---\ntitle: ignored\n---\n" + NOTE)
    _page(tmp_path, "shared/_steps.mdx", "import Note from '../_note.md';\n\nFirst step.\n\n<Note />\n")
    _page(tmp_path, "api.md", "import Note from './_note.md';\nimport Steps from \"./shared/_steps.mdx\"\n\n"
          "# API\n\n<Note />\n\nBody.\n\n```mdx\n<Note />\n```\n\n<Steps/>\n")
    texts, notes = _texts(tmp_path, "api.md")
    assert texts == ["API", "Info:", "Import the APIs explicitly:", "import {expect} from '@jest/globals';", "Body.",
                     "<Note />",  # inside a code example it is code
                     "First step.", "Info:", "Import the APIs explicitly:", "import {expect} from '@jest/globals';"]
    assert notes == []


def test_imports_are_read_as_javascript_reads_them(tmp_path: Path) -> None:
    """React Native's docs: `import X from './\\_name.md'` (Prettier escapes the underscore; in
    JavaScript '\\_' is '_'), and statements that share a line or run onto the next one. MDX reads a
    page's ESM up to a blank line as JavaScript; a broken one is no import, and no crash."""
    _page(tmp_path, "_ios.md", "iOS steps.\n")
    _page(tmp_path, "_android.md", "Android steps.\n")
    _page(tmp_path, "_banner.mdx", "Experimental API.\n")
    _page(tmp_path, "guide.md", "import Banner from './\\_banner.mdx';\n\nimport IOS from './_ios.md'; import\n"
          "  Android from './\\u005fandroid.md';\nimport Tabs from '@theme/Tabs';\n\n# Guide\n\n<Banner />\n\n"
          "<IOS />\n\n<Android />\n\nimport Broken from './_ios.md\n\n<Broken />\n")
    texts, notes = _texts(tmp_path, "guide.md")
    assert texts == ["Guide", "Experimental API.", "iOS steps.", "Android steps."]
    assert notes == []
    assert sorted(p.name for p in partial_files(tmp_path / "guide.md", tmp_path)) == [
        "_android.md", "_banner.mdx", "_ios.md"]  # what `lectern push` sends
    # MDX's ESM opens on the keyword and a space only (micromark-extension-mdxjs-esm): after a
    # tab the line is text, and imports nothing.
    _page(tmp_path, "tabbed.md", "import\tIOS from './_ios.md';\n\n# T\n\n<IOS />\n")
    assert _texts(tmp_path, "tabbed.md")[0] == ["import IOS from './_ios.md';", "T"]


def test_a_partials_headings_take_ids_from_their_own_slugger(tmp_path: Path) -> None:
    """Docusaurus compiles a partial on its own: its "Setup" is #setup even when the page has a
    "Setup" before it, and the page's later "Setup" is #setup-1 whatever the partial holds."""
    _page(tmp_path, "_part.md", "## Setup\n\nPartial setup.\n\n## Setup\n\nAgain.\n")
    _page(tmp_path, "p.md", "import Part from './_part.md';\n\n# P\n\n## Setup\n\nOwn.\n\n<Part />\n\n"
          "## Setup\n\nOwn again.\n")
    page, _ = parse_with_partials((tmp_path / "p.md").read_text(), tmp_path / "p.md", tmp_path)
    assert [(b.text, b.anchor) for b in page.blocks if b.kind == "heading"] == [
        ("P", ""), ("Setup", ""), ("Setup", "setup"), ("Setup", "setup-1"), ("Setup", "")]
    result = read_page(SourceFile(tmp_path / "p.md", "p.md", ""), "b", "/docs/", Budget(count_tokens), False)
    assert [c.url for c in result.chunks] == ["/docs/p#setup", "/docs/p#setup", "/docs/p#setup-1",
                                              "/docs/p#setup-1"]
    assert [c.content for c in result.chunks] == ["Own.", "Partial setup.", "Again.", "Own again."]


def test_what_cannot_be_shown_is_reported_and_left_out(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    _page(outside, "_secret.md", "The server password is hunter2.\n")
    docs = tmp_path / "docs"
    _page(docs, "_self.md", "import Self from './_self.md';\n\nLoop text.\n\n<Self />\n")
    _page(docs, "_binary.md", "")
    (docs / "_binary.md").write_bytes(b"\x00\xff\xfe")
    for k in range(1, MAX_DEPTH + 3):  # _p1 shows _p2, which shows _p3, …
        _page(docs, f"_p{k}.md", f"import Next from './_p{k + 1}.md';\n\nLevel {k}.\n\n<Next />\n")
    _page(docs, "page.md", "import Secret from '../outside/_secret.md';\nimport Gone from './_gone.md';\n"
          "import Self from './_self.md';\nimport Bin from './_binary.md';\nimport Pkg from 'some-package/x.md';\n"
          "import P from './_p1.md';\n\n# Page\n\n<Secret />\n\n<Gone />\n\n<Self />\n\n<Bin />\n\n<Pkg />\n\n<P />\n")
    texts, notes = _texts(docs, "page.md")
    assert "hunter2" not in " ".join(texts)
    assert texts[:3] == ["Page", "Loop text.", "Level 1."] and f"Level {MAX_DEPTH}." in texts
    assert f"Level {MAX_DEPTH + 1}." not in texts
    assert [n.split(" ")[1] for n in notes] == ["'../outside/_secret.md'", "'./_gone.md'", "'some-package/x.md'",
                                                 "_self.md", "_binary.md", "_p6.md"]
    assert "outside the docs folder" in notes[0] and "binary content" in notes[4]
    result = read_page(SourceFile(docs / "page.md", "page.md", ""), "b", "/docs/", Budget(count_tokens), False)
    assert result.chunks and not result.failed and result.notes == tuple(notes)
    # `lectern push` sends what ingest read: the partials shown, never one outside or one not shown.
    assert [f.name for f in partial_files(docs / "page.md", docs)] == [
        "_self.md", "_binary.md", *(f"_p{k}.md" for k in range(1, MAX_DEPTH + 1))]


TAB_SETS = ("import ExecutionEnvironment from '@docusaurus/ExecutionEnvironment';\n"
            "const isMac = ExecutionEnvironment.canUseDOM ? navigator.platform.startsWith('Mac') : false;\n"
            "const androidLanguages = [\n  {label: 'Java', value: 'java'},\n  {label: 'Kotlin', value: 'kotlin'},\n];\n"
            "const pick = (tabs) => tabs.map((t) => ({label: t, value: t}));\n"
            "export default {androidLanguages, defaultPlatform: isMac ? 'ios' : 'android', pick};\n")
TABBED = ("import Tabs from '@theme/Tabs'; import TabItem from '@theme/TabItem'; {import_line}\n\n"
          "# Setup\n\n<Tabs groupId=\"language\" values={{constants.{member}}}>\n<TabItem value=\"kotlin\">\n\n"
          "```kotlin\nval x = 1\n```\n\n</TabItem>\n</Tabs>\n")


def _tab_label(tmp_path: Path, import_line: str, member: str = "androidLanguages") -> tuple[str, list[Path]]:
    """The label the page's tab gets, and the files a push sends for the page, on a site whose
    tab sets live in src/core/TabsConstants.ts (React Native's site's shape)."""
    site = tmp_path / "site"
    _page(site, "src/core/TabsConstants.ts", TAB_SETS)
    page = _page(site, "docs/setup.mdx", TABBED.format(import_line=import_line, member=member))
    markdown = SiteMarkdown(site_dir=str(site))
    parsed, _ = parse_with_partials(page.read_text(), page, site / "docs", markdown)
    label = next(b.text for b in parsed.blocks if b.label)
    return label, partial_files(page, site / "docs", markdown)


def test_tab_labels_come_from_the_module_the_page_imports(tmp_path: Path) -> None:
    """`values={constants.androidLanguages}` names its labels in an imported module; the built
    page's button reads "Kotlin", and a push sends the module with the page."""
    constants = tmp_path / "site" / "src" / "core" / "TabsConstants.ts"
    assert _tab_label(tmp_path, "import constants from '@site/src/core/TabsConstants';") == ("Kotlin:", [constants])
    assert _tab_label(tmp_path, "import constants from '../src/core/TabsConstants.ts';")[0] == "Kotlin:"


def test_tab_labels_the_module_cannot_give_leave_the_value(tmp_path: Path) -> None:
    """A member that is computed, a module that is missing, outside the site or a package, and a
    docs folder read without its site: the button shows the value, as before, and nothing fails."""
    line = "import constants from '@site/src/core/TabsConstants';"
    assert _tab_label(tmp_path, line, "pick")[0] == "kotlin:"
    assert _tab_label(tmp_path, "import constants from '@site/src/core/Missing';")[0] == "kotlin:"
    outside = tmp_path / "elsewhere.js"
    outside.write_text(TAB_SETS.replace("Kotlin", "Stolen"))
    assert _tab_label(tmp_path, f"import constants from '../../{outside.name}';") == ("kotlin:", [])
    assert _tab_label(tmp_path, "import constants from 'tab-constants';")[0] == "kotlin:"
    page = tmp_path / "site" / "docs" / "setup.mdx"
    parsed, _ = parse_with_partials(page.read_text(), page, page.parent)  # no site: no module read
    assert next(b.text for b in parsed.blocks if b.label) == "kotlin:"


def test_a_tsx_module_with_jsx_gives_its_labels(tmp_path: Path) -> None:
    """A .tsx module is read with the TSX grammar, JSX and all, as webpack resolves it without an
    extension."""
    site = tmp_path / "site"
    _page(site, "src/tabs.tsx", "const hint = <b>pick one</b>;\n"
          "export default {langs: [{label: 'Kotlin', value: 'kotlin'}], hint};\n")
    page = _page(site, "docs/setup.mdx", TABBED.format(import_line="import constants from '@site/src/tabs';",
                                                       member="langs"))
    parsed, _ = parse_with_partials(page.read_text(), page, site / "docs", SiteMarkdown(site_dir=str(site)))
    assert next(b.text for b in parsed.blocks if b.label) == "Kotlin:"


def test_a_partial_in_a_list_item_is_read_where_it_stands(tmp_path: Path) -> None:
    """Sequelize's hooks page shows a partial indented in a numbered list's item."""
    _page(tmp_path, "_note.md", NOTE)
    _page(tmp_path, "hooks.mdx", "import Note from './_note.md';\n\n# Hooks\n\n1. Use a decorator.\n\n   <Note />\n\n"
          "   ```ts\n   class A {}\n   ```\n\n2. Done.\n")
    texts, notes = _texts(tmp_path, "hooks.mdx")
    assert texts == ["Hooks", "1. Use a decorator.", "Info:", "Import the APIs explicitly:",
                     "import {expect} from '@jest/globals';", "class A {}", "2. Done."]
    assert notes == []


RAW = ("import CodeBlock from '@theme/CodeBlock';\n{imports}\n\n# Models\n\nThe model:\n\n{element}\n\nAfter.\n")
SNIPPET = "// highlight-next-line\nclass User extends Model {}\n\tdeclare id: number;\n"


def _raw_code(tmp_path: Path, imports: str, element: str, site: bool = True) -> tuple[list[tuple[str, str]], list[str],
                                                                                     list[Path]]:
    """The blocks (kind, info or text) a page shows with a code element, its notes and the files a
    push sends, on a site whose docs keep their snippets in docs/_snippets and src/examples."""
    root = tmp_path / "site"
    _page(root, "docs/_snippets/model.txt", SNIPPET)
    _page(root, "src/examples/Button.tsx", "export const Button = () => <button />;\n")
    page = _page(root, "docs/models.mdx", RAW.format(imports=imports, element=element))
    markdown = SiteMarkdown(site_dir=str(root) if site else "")
    parsed, notes = parse_with_partials(page.read_text(), page, root / "docs", markdown)
    shown = [(b.kind, f"{b.info}|{b.text}" if b.kind == "code" else b.text) for b in parsed.blocks]
    return shown, notes, partial_files(page, root / "docs", markdown)


def test_a_file_loaded_as_code_shows_as_the_theme_shows_it(tmp_path: Path) -> None:
    """Sequelize's TypeScript guide: `import x from '!!raw-loader!./\\_snippets/model.txt'` shown by
    `<CodeBlock className="language-typescript">{x}</CodeBlock>`. The built page shows the file as a
    code block in the class's language, without the final line break and the magic comments, and a
    push sends the file with the page."""
    shown, notes, files = _raw_code(tmp_path, "import model from '!!raw-loader!./\\_snippets/model.txt';",
                                    '<CodeBlock className="language-typescript">\n{model}\n</CodeBlock>')
    assert shown == [("heading", "Models"), ("text", "The model:"),
                     ("code", "typescript|class User extends Model {}\n\tdeclare id: number;"), ("text", "After.")]
    assert notes == [] and [f.name for f in files] == ["model.txt"]
    # `language` before the class, a title prop unless the metastring has one, @site/ and a
    # webpack extension, raw-loader's options.
    shown, notes, files = _raw_code(tmp_path, "import B from 'raw-loader?esModule=false!@site/src/examples/Button';",
                                    '<CodeBlock language="tsx" className="language-js" title="Button.tsx">{B}'
                                    "</CodeBlock>")
    assert shown[2] == ("code", 'tsx title="Button.tsx"|export const Button = () => <button />;')
    assert [f.name for f in files] == ["Button.tsx"]
    shown, _, _ = _raw_code(tmp_path, "import B from '!!raw-loader!@site/src/examples/Button.tsx';",
                            '<CodeBlock language="tsx" metastring=\'title="a.tsx" {1}\' title="b.tsx">{B}</CodeBlock>')
    assert shown[2] == ("code", 'tsx title="a.tsx" {1}|export const Button = () => <button />;')


def test_a_code_file_that_cannot_be_read_is_reported_and_left_out(tmp_path: Path) -> None:
    """A file outside the site, missing or binary shows nothing, with a note; `@site/` without a
    site root, another loader, a CodeBlock that is not the theme's, an element inside code or with
    text beside the expression are left as they were."""
    outside = tmp_path / "secret.txt"
    outside.write_text("hunter2\n")
    for spec in ("!!raw-loader!../../secret.txt", "!!raw-loader!./_snippets/gone.txt"):
        shown, notes, files = _raw_code(tmp_path, f"import x from '{spec}';", "<CodeBlock>{x}</CodeBlock>")
        assert shown == [("heading", "Models"), ("text", "The model:"), ("text", "After.")]
        assert len(notes) == 1 and spec.rpartition("!")[2] in notes[0] and files == []
    (tmp_path / "site" / "docs" / "_snippets" / "bin.txt").write_bytes(b"\x00\x01")
    _, notes, _ = _raw_code(tmp_path, "import x from '!!raw-loader!./_snippets/bin.txt';",
                            "<CodeBlock>{x}</CodeBlock>")
    assert "binary content" in notes[0]
    for imports, element in [
            ("import x from '!!raw-loader!@site/src/examples/Button.tsx';", "<CodeBlock>{x}</CodeBlock>"),
            ("import x from '!!babel-loader!raw-loader!./_snippets/model.txt';", "<CodeBlock>{x}</CodeBlock>"),
            ("import x from '!!raw-loader!./_snippets/model.txt';", "<Code>{x}</Code>"),
            ("import x from '!!raw-loader!./_snippets/model.txt';", "```mdx\n<CodeBlock>{x}</CodeBlock>\n```"),
            ("import x from '!!raw-loader!./_snippets/model.txt';", "<CodeBlock>Source: {x}</CodeBlock>")]:
        shown, notes, files = _raw_code(tmp_path, imports, element, site="@site" not in imports)
        assert not any(kind == "code" and "User" in text for kind, text in shown), (imports, element)
        assert files == []


def test_a_code_elements_props_read_as_the_theme_reads_them(tmp_path: Path) -> None:
    """Checked on a Docusaurus 3.10 build: a ">" inside a string prop, a `data-title` that is no
    title, `language={'js'}`, a title's character references, an upper-case language, and no
    language at all (the theme's "text", which still drops magic comments and shows the title)."""
    line = "import model from '!!raw-loader!./_snippets/model.txt';"
    cases = {'<CodeBlock language="ts" title="a > b">{model}</CodeBlock>': 'ts title="a > b"',
             '<CodeBlock language="ts" data-title="zzz">{model}</CodeBlock>': "ts",
             "<CodeBlock language={'js'} title=\"b.js\">{model}</CodeBlock>": 'js title="b.js"',
             '<CodeBlock language="JS" title="it&apos;s">{model}</CodeBlock>': "js title=\"it's\"",
             '<CodeBlock title="plain.txt">{model}</CodeBlock>': 'text title="plain.txt"'}
    for element, info in cases.items():
        shown, notes, _ = _raw_code(tmp_path, line, element)
        assert shown[2] == ("code", f"{info}|class User extends Model {{}}\n\tdeclare id: number;"), element
        assert notes == []


def test_on_docusaurus_2_a_tag_indented_four_columns_is_code_not_a_partial(tmp_path: Path) -> None:
    """MDX 1 reads four columns of indentation as code, so `    <Note />` in a tab shows no partial
    (and no mark of Lectern's own leaks into the stored text)."""
    _page(tmp_path, "_note.md", "A note.\n")
    text = ("import Note from './_note.md';\nimport CodeBlock from '@theme/CodeBlock';\n"
            "import x from '!!raw-loader!./_note.md';\n\n<Tabs>\n  <TabItem value=\"a\">\n\n    <Note />\n\n"
            "    <CodeBlock>{x}</CodeBlock>\n\n  </TabItem>\n</Tabs>\n")
    page = _page(tmp_path, "p.mdx", text)
    for major, notes in ((2, 0), (3, 2)):
        parsed, _ = parse_with_partials(text, page, tmp_path, SiteMarkdown(docusaurus_major=major))
        texts = [b.text for b in parsed.blocks]
        assert not any("lectern-partial" in t for t in texts)
        assert texts.count("A note.") == notes
