"""Proof on a real Docusaurus build: examples/book is built with the pinned @docusaurus/core
and preset-classic from its package-lock.json, with docusaurus-plugin-lectern installed, and
every chunk URL Lectern stores for it (ingested from the site root by the real services) must
land on a built page and an element id on it.

Needs Node.js 20+ and npm (`make test` installs them); the npm install is kept in
examples/book/node_modules and redone only when the lock file or the plugin's package.json
changes. Deselect with ``-m "not build"``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import grpc
import pytest
from lectern.common.v1 import common_pb2 as cpb
from lectern.retrieval.v1 import retrieval_service_pb2 as rpb
from lectern.retrieval.v1 import retrieval_service_pb2_grpc as rpb_grpc

from embedding.tokens import count_tokens
from services.chat.answerers.passages import Kind, blocks
from services.ingest.book import npm2yarn
from services.ingest.book.chunker import Budget
from services.ingest.book.discovery import discover
from services.ingest.book.editions import plan_source
from services.ingest.book.manifest import MANIFEST_FILE, ChunkRef, load_manifest, missing_anchors, resolve
from services.ingest.book.pages import read_page
from tests.conftest import ROOT, Stack, ingest

pytestmark = [pytest.mark.build, pytest.mark.timeout(900)]

SITE = ROOT / "examples" / "book"
PLUGIN = ROOT / "clients" / "docusaurus-plugin-lectern"
BASE_URL = "/robot/"  # docusaurus.config.js
WIDGET = "http://127.0.0.1:8080"  # the plugin's url option there
MIN_NODE = 20  # @docusaurus/core 3.10's engines
STAMP = SITE / "node_modules" / ".lectern-installed"


def _run(command: list[str], cwd: Path, timeout: float) -> None:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False,
                              env={**os.environ, "CI": "true", "NO_COLOR": "1"})
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(command)} took more than {timeout} s")
    if done.returncode:
        pytest.fail(f"{' '.join(command)} exited {done.returncode}:\n{(done.stdout + done.stderr)[-4000:]}")


def _node() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.fail("building the sample site needs Node.js and npm: `make test` installs them "
                    "(or deselect this test with -m 'not build')")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout
    if int(version.lstrip("v").split(".")[0]) < MIN_NODE:
        pytest.fail(f"Docusaurus 3 needs Node.js {MIN_NODE}+, found {version.strip()}: `make test` installs one")
    return node


def _install() -> None:
    """`npm ci` from the committed lock file, skipped while node_modules matches it."""
    wanted = hashlib.sha256((SITE / "package-lock.json").read_bytes()
                            + (PLUGIN / "package.json").read_bytes()).hexdigest()
    if STAMP.is_file() and STAMP.read_text() == wanted:
        return
    npm = shutil.which("npm")
    assert npm is not None
    _run([npm, "ci", "--prefer-offline", "--no-audit", "--no-fund"], SITE, 600)
    STAMP.write_text(wanted)


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    node = _node()
    started = time.monotonic()
    _install()
    installed = time.monotonic()
    out = tmp_path_factory.mktemp("site") / "build"
    _run([node, str(SITE / "node_modules/@docusaurus/core/bin/docusaurus.mjs"), "build", "--out-dir", str(out)],
         SITE, 600)
    print(f"npm ci {installed - started:.0f} s, docusaurus build {time.monotonic() - installed:.0f} s")
    return out


class Page(HTMLParser):
    """What a test needs of a built page: element ids, <html lang>, <meta name> in <head>,
    script tags."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.lang = ""
        self.meta: dict[str, str] = {}
        self.scripts: list[dict[str, str | None]] = []
        self._in_head = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id") is not None:
            self.ids.add(str(values["id"]))
        if tag == "html":
            self.lang = values.get("lang") or ""
        elif tag == "head":
            self._in_head = True
        elif tag == "meta" and self._in_head and values.get("name"):
            self.meta[str(values["name"])] = values.get("content") or ""
        elif tag == "script":
            self.scripts.append(values)

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            self._in_head = False


_pages: dict[Path, Page] = {}


def page_at(out: Path, path: str) -> Page | None:
    """The page a static host serves for a URL path (``/robot/docs/a`` -> ``docs/a.html`` or
    ``docs/a/index.html``), or None."""
    if not path.startswith(BASE_URL.rstrip("/")):
        return None
    rel = path[len(BASE_URL):].strip("/")
    for candidate in (f"{rel}.html", f"{rel}/index.html" if rel else "index.html"):
        file = out / candidate
        if file.is_file():
            if file not in _pages:
                _pages[file] = Page(file.read_text(encoding="utf-8"))
            return _pages[file]
    return None


class CodeLines(HTMLParser):
    """The code blocks of a built page, each as the lines Prism renders (one div.token-line each)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.blocks: list[list[str]] = []
        self._in_pre = 0
        self._line: list[str] | None = None
        self._depth = 0
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "pre":
            self._in_pre += 1
            self.blocks.append([])
        elif tag == "div" and self._line is not None:
            self._depth += 1
        elif tag == "div" and self._in_pre and "token-line" in (dict(attrs).get("class") or "").split():
            self._line, self._depth = [], 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre":
            self._in_pre -= 1
        elif tag == "div" and self._line is not None:
            self._depth -= 1
            if self._depth == 0:
                self.blocks[-1].append("".join(self._line).rstrip())
                self._line = None

    def handle_data(self, data: str) -> None:
        if self._line is not None:
            self._line.append(data)


@pytest.mark.parametrize("page", ["sensors/distance-sensors", "motion/motor-control"])
def test_answers_quote_code_as_the_built_site_shows_it(build: Path, page: str) -> None:
    """Docusaurus drops magic-comment lines (`# highlight-next-line` in distance-sensors, and the
    site's own `# This will error`) from the code it shows, unless the fence gives a line range; the
    code the answerer reads from the stored chunks must match the built page, lines and titles
    (motor-control's fence has both)."""
    file = next(f for f in discover(SITE / "docs") if f.rel == f"{page}.md")
    markdown = plan_source(SITE).sources[0].markdown  # the site's magicComments among them
    chunks = read_page(file, "book", "/docs/", Budget(count_tokens), False, markdown=markdown).chunks
    code = [b for c in chunks for b in blocks(c.content) if b.kind is Kind.CODE]
    ours = [[line.rstrip() for line in b.text.split("\n")] for b in code]
    html = (build / "docs" / f"{page}.html").read_text(encoding="utf-8")
    assert ours and CodeLines(html).blocks == ours
    titles = [m.group(1) for m in re.finditer(r'title="([^"]*)"', " ".join(b.opening[1] for b in code))]
    assert titles == re.findall(r'<div class="codeBlockTitle[^"]*">([^<]*)</div>', html)
    if page == "sensors/distance-sensors":
        # Its last block has no language: Docusaurus 3.8 and later show it as "text", and drop its
        # magic comment too.
        assert ours[-1] == ["tof[1] no echo (status 4)", "tof[1] 8190 mm"]
        assert not any("highlight" in line or "This will error" in line for b in ours for line in b)
        assert not any("highlight-" in c.content for c in chunks)  # stored (and embedded) as shown too
        assert any("min(sensors)" in line for b in ours for line in b)
    else:
        assert titles == ["rover/motors.py"] and "{4}" in code[0].opening[1]


def test_a_file_loaded_as_code_shows_as_the_built_site_shows_it(build: Path) -> None:
    """sensor-fusion.mdx shows _snippets/kalman.py through raw-loader in the theme's <CodeBlock>
    (language and title props): the stored code is the built block's lines, magic comment
    dropped, under the same title."""
    file = next(f for f in discover(SITE / "docs") if f.rel == "sensors/sensor-fusion.mdx")
    markdown = plan_source(SITE).sources[0].markdown
    chunks = read_page(file, "book", "/docs/", Budget(count_tokens), False, markdown=markdown).chunks
    code = [b for c in chunks for b in blocks(c.content) if b.kind is Kind.CODE]
    ours = [[line.rstrip() for line in b.text.split("\n")] for b in code]
    html = (build / "docs" / "sensors" / "fusion.html").read_text(encoding="utf-8")
    assert CodeLines(html).blocks == ours and len(ours) == 2
    assert any("gain = variance / (variance + MEASUREMENT_NOISE)" in line for line in ours[1])
    assert not any("highlight-" in line for line in ours[1])
    assert re.findall(r'<div class="codeBlockTitle[^"]*">([^<]*)</div>', html) == ["rover/fusion/kalman.py"]
    assert 'title="rover/fusion/kalman.py"' in code[1].opening[1]


class OrderedItems(HTMLParser):
    """A built page's ordered-list items as the browser numbers them, in reading order: each
    <ol>'s start, counted on; a nested list's items come after their item's own text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self._found: list[tuple[int, list[str]]] = []
        self._lists: list[int | None] = []  # each open list's next number (None: a <ul>)
        self._open: list[list[str] | None] = []  # the text of each open <li> (None: a <ul>'s)
        self.feed(text)

    @property
    def items(self) -> list[tuple[int, str]]:
        return [(number, " ".join("".join(text).split())) for number, text in self._found]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("ol", "ul"):
            self._lists.append(int(dict(attrs).get("start") or 1) if tag == "ol" else None)
        elif tag == "li" and self._lists:
            number = self._lists[-1]
            text: list[str] | None = None
            if number is not None:
                text = []
                self._found.append((number, text))
                self._lists[-1] = number + 1
            self._open.append(text)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("ol", "ul") and self._lists:
            self._lists.pop()
        elif tag == "li" and self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._open and (text := self._open[-1]) is not None and (len(self._lists) == len(self._open)):
            text.append(data)


def test_ordered_list_items_keep_the_numbers_the_built_page_shows(build: Path) -> None:
    """pid-tuning's tuning procedure is an <ol>: the stored chunk keeps each step's number as the
    built page shows it, so "what is step 2?" can be answered and answers quote numbered steps."""
    file = next(f for f in discover(SITE / "docs") if f.rel == "motion/pid-tuning.md")
    chunks = read_page(file, "book", "/docs/", Budget(count_tokens), False).chunks
    ours = [(int(m.group(1)), m.group(2)) for c in chunks
            for m in re.finditer(r"^(\d+)\. (.*)$", c.content, re.M)]
    built = OrderedItems((build / "docs" / "motion" / "pid-tuning.html").read_text(encoding="utf-8")).items
    assert len(built) == 3 and ours == built


def test_footnotes_show_where_the_built_page_shows_them(build: Path) -> None:
    """The appendix cites a GFM footnote: Docusaurus 3 shows a superscript number where it is
    cited and the definition in a list under a "Footnotes" heading (id footnote-label) at the end
    of the page; ingest keeps the definition there, linked to that heading, and drops the raw marker."""
    file = next(f for f in discover(SITE / "docs") if f.rel == "appendix.md")
    chunks = read_page(file, "book", "/docs/", Budget(count_tokens), False).chunks
    html = (build / "docs" / "appendix.html").read_text(encoding="utf-8")
    assert 'id="footnote-label"' in html and "2% of the distance" in html
    assert not any("[^" in c.content for c in chunks)
    notes = [c for c in chunks if c.heading_path[-1] == "Footnotes"]
    assert [c.url for c in notes] == ["/docs/appendix#footnote-label"]
    assert notes[0].content == "1. Odometry alone drifts by about 2% of the distance driven on a smooth floor."
    assert notes[0] == chunks[-1]


def test_emoji_shortcodes_show_as_the_built_page_shows_them(build: Path) -> None:
    """Docusaurus runs remark-emoji over every page: the appendix's ":white_check_mark: Ready
    light" shows ✅ and its text 🎉, while Docusaurus 3 makes the heading's id before that, from
    the shortcode's name."""
    file = next(f for f in discover(SITE / "docs") if f.rel == "appendix.md")
    chunks = read_page(file, "book", "/docs/", Budget(count_tokens), False).chunks
    html = (build / "docs" / "appendix.html").read_text(encoding="utf-8")
    ready = next(c for c in chunks if c.heading_path[-1] == "\u2705 Ready light")
    anchor = ready.url.partition("#")[2]
    assert anchor == "white_check_mark-ready-light" and f'id="{anchor}"' in html
    assert "\u2705 Ready light" in html and "start-up checks \U0001f389." in html
    assert ready.content.startswith("The green status light that shows Rover passed its start-up checks \U0001f389.")


class TabButtons(HTMLParser):
    """The labels of a built page's tab buttons (li role="tab"), in page order."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.labels: list[str] = []
        self._label: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "li" and dict(attrs).get("role") == "tab":
            self._label = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "li" and self._label is not None:
            self.labels.append("".join(self._label).strip())
            self._label = None

    def handle_data(self, data: str) -> None:
        if self._label is not None:
            self._label.append(data)


def test_npm2yarn_blocks_show_the_tabs_the_built_page_shows(build: Path) -> None:
    """The site turns on @docusaurus/remark-plugin-npm2yarn: contributing.md's ```bash npm2yarn
    block is built as npm / Yarn / pnpm / Bun tabs, each with its converted command. Read with the
    site's settings, ingest stores the same labels and the same code."""
    markdown = plan_source(SITE).sources[0].markdown
    assert markdown.npm2yarn == npm2yarn.DEFAULT_CONVERTERS
    file = next(f for f in discover(SITE / "docs") if f.rel == "community/contributing.md")
    content = "\n\n".join(c.content for c in read_page(file, "book", "/docs/", Budget(count_tokens), False,
                                                       markdown=markdown).chunks)
    html = (build / "docs" / "community" / "how-to-contribute.html").read_text(encoding="utf-8")
    code = [[line.rstrip() for line in b.text.split("\n")] for b in blocks(content) if b.kind is Kind.CODE]
    assert len(code) == 4 and CodeLines(html).blocks == code
    labels = re.findall(r"^(npm|Yarn|pnpm|Bun):$", content, re.MULTILINE)
    assert TabButtons(html).labels == labels == ["npm", "Yarn", "pnpm", "Bun"]


# The npm-to-yarn releases the port follows, each installed by the sample site under its own name.
NPM_TO_YARN = {(3, 2): "npm-to-yarn", (2, 2): "npm-to-yarn-2", (1, 3): "npm-to-yarn-1", (1, 0): "npm-to-yarn-1-0"}


@pytest.mark.parametrize("release", list(NPM_TO_YARN))
def test_npm2yarn_converts_commands_as_the_npm_package_does(release: tuple[int, int]) -> None:
    """The port of npm-to-yarn against the package itself, for each release a site may build with
    (3.2.0 since Docusaurus 3.6, 2.2.1 from 2.4, 1.3.0 or 1.0.1 before)."""
    _install()
    commands = [
        "npm install", "npm i -D typescript @types/node", "npm install -g yarn", "npm uninstall lodash",
        "npm run build", "npm run start -- --port 3000", "npm test -- --watch", "npm exec jest",
        "npm ls react lodash --depth=0", "npm init docusaurus@latest my-site classic", "npm init @scope/app",
        "npm create vite@latest my-app -- --template react", "npm version patch", "npm rb node-sass",
        "npm cache clean --force", "npm ci", "npm pack --pack-destination=out", "npm unlink foo",
        "npx create-docusaurus@latest my-website classic", "  npx prettier --write .", "npm install -E -O foo",
        "npm install --no-package-lock a", "cd my-npm-app && npm install", "npm install a && npm run build",
        "npm install \"foo bar\" 'baz qux'", "npm\nnpm install\n\nnpm run serve", "# comment\nnpm i foo",
        "npm t", "npm init -y", "npm list --production", "npm link ../lib", "npm i a=b c=d",
        "npm install --save-exact --save-optional a", "npm install --save-dev a", "npm install a -g",
        "npm uninstall --save a --global", "npm run build -- -- --watch", "npm run test", "npm run",
        "npm list a b --depth 1 c", "npm ls", "npm rebuild", "npm start", "npm init --scope=x",
        "npm version major minor", "npm run-script lint", "npm install @docusaurus/core@latest --save",
    ]
    script = ("const m = require(process.argv[1]); const convert = m.default || m;\n"
              "const commands = JSON.parse(process.argv[2]);\n"
              "console.log(JSON.stringify(commands.map(c => ['yarn', 'pnpm', 'bun'].map(to => convert(c, to)))));")
    done = subprocess.run([_node(), "-e", script, NPM_TO_YARN[release], json.dumps(commands)], cwd=SITE,
                          capture_output=True, text=True, timeout=60, check=True)
    theirs = json.loads(done.stdout)
    tos = ("yarn", "pnpm", "bun") if release >= (2, 2) else ("yarn",)  # 1.x shows a Yarn tab only
    ours = [[npm2yarn.convert(c, to, release) for to in tos] for c in commands]
    assert ours == [row[:len(tos)] for row in theirs]


async def stored_chunks(stack: Stack, book: str) -> list[cpb.Chunk]:
    async with grpc.aio.insecure_channel(stack.retrieval.address) as channel:
        retrieval = rpb_grpc.RetrievalServiceStub(channel)
        ids: list[str] = []
        token = ""
        while True:
            listed = await retrieval.ListChunks(rpb.ListChunksRequest(book=book, page_token=token))
            ids += [d.chunk_id for d in listed.chunks]
            token = listed.next_page_token
            if not token:
                break
        chunks: list[cpb.Chunk] = []
        for start in range(0, len(ids), 1000):
            read = await retrieval.ReadChunks(rpb.ReadChunksRequest(book=book, chunk_ids=ids[start:start + 1000]))
            chunks += read.chunks
    return chunks


async def test_every_stored_chunk_url_lands_on_a_built_page_and_id(build: Path, stack: Stack) -> None:
    summary = await ingest(stack, SITE, "docusaurus-site")  # the site root, not its docs folder
    assert not summary.failed and summary.chunks_new > 0
    chunks = await stored_chunks(stack, "docusaurus-site")
    assert len(chunks) == summary.chunks_new
    landed: list[str] = []
    lost: list[str] = []
    for chunk in chunks:
        path, _, anchor = chunk.url.partition("#")
        page = page_at(build, path)
        (landed if page is not None and (not anchor or anchor in page.ids) else lost).append(chunk.url)
    assert not lost, f"{len(lost)} of {len(chunks)} stored URLs do not land: {lost[:20]}"
    # Every version and locale of the book is stored, each at its own routes.
    editions = {(c.version, c.locale) for c in chunks}
    assert editions == {("current", "en"), ("1.0", "en"), ("current", "fr")}
    urls = {c.url for c in chunks}
    assert "/robot/docs/1.0/sensors/imu#calibrating-the-magnetometer" in urls
    assert "/robot/fr/docs/sensors/imu#étalonner-le-gyroscope" in urls
    assert "/robot/docs/community/help/translating#हिन्दी-अनुवाद" in urls
    assert "/robot/docs/appendix#telemetry_port" in urls  # a section that opens on an H4 links to it
    # A partial is read where two pages show it, its heading with the id the built pages give it.
    battery = [c for c in chunks if c.content.startswith("Measure the battery pack") and c.version == "current"]
    assert {c.url for c in battery} == {"/robot/docs/getting-started/first-boot#check-the-battery",
                                        "/robot/docs/maintenance/cleaning#check-the-battery"}
    for chunk in battery:
        html = (build / f"{chunk.url.partition('#')[0][len(BASE_URL):]}.html").read_text(encoding="utf-8")
        assert "a full 2S pack reads 8.4 V" in " ".join(html.split())
    # The appendix's ":::note[Title]" and its ```mdx-code-block's <details> are shown as the built
    # page shows them: a titled note and prose, not code.
    appendix = " ".join(c.content for c in chunks if c.url.startswith("/robot/docs/appendix#configuration-file"))
    html = re.sub(r"<[^>]+>", " ", (build / "docs" / "appendix.html").read_text(encoding="utf-8"))
    for shown in ("Edit it over USB", "Where does a fresh board get the file?",
                  "The first boot writes rover.toml with every option at its default."):
        assert shown in " ".join(html.replace("<!-- -->", "").split())
    assert "Note: Edit it over USB" in appendix and "mdx-code-block" not in appendix and "```" not in appendix
    assert "The first boot writes `rover.toml` with every option at its default." in appendix
    # A tab's label names the code it holds, as its button does on the built page.
    fusion = " ".join(c.content for c in chunks if c.url == "/robot/docs/sensors/fusion#the-complementary-filter")
    assert "MicroPython:\n\n```python\nALPHA = 0.98" in fusion and "Formula:\n\nThe fused heading" in fusion
    built = (build / "docs" / "sensors" / "fusion.html").read_text(encoding="utf-8")
    assert re.findall(r'role="tab"[^>]*>([^<]*)<', built) == ["MicroPython", "Formula"]
    # The plugin's manifest agrees with every stored URL, and lacks none of their anchors.
    manifest = load_manifest(build)
    refs = [ChunkRef(c.file_path, c.version, c.locale, c.url.partition("#")[2]) for c in chunks]
    assert [resolve(manifest, r) for r in refs] == [c.url for c in chunks]
    assert missing_anchors(manifest, refs) == []



async def test_ingest_with_the_build_manifest_keeps_the_urls_and_reports_a_missing_anchor(
        build: Path, stack: Stack, home: Path) -> None:
    """The manifest wiring end to end: ingest takes routes from the build (here identical to its
    own, so nothing changes) and warns about a chunk whose anchor the built page lacks."""
    import json

    from lectern.ingest.v1 import ingest_service_pb2 as ipb
    from lectern.ingest.v1 import ingest_service_pb2_grpc as ipb_grpc

    copy = home / "books" / "manifest-build"  # under the stack's LECTERN_INGEST_ROOTS
    for manifest_file in (build / MANIFEST_FILE, build / "fr" / MANIFEST_FILE):
        target = copy / manifest_file.relative_to(build)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(manifest_file, target)

    async def run(book: str) -> ipb.IngestSummary:
        async with grpc.aio.insecure_channel(stack.ingest.address) as channel:
            events = [e async for e in ipb_grpc.IngestServiceStub(channel).Ingest(
                ipb.IngestRequest(source_dir=str(SITE), book=book, manifest=str(copy)))]
        summary: ipb.IngestSummary = events[-1].summary
        return summary

    plain = await ingest(stack, SITE, "manifest-site")
    with_manifest = await run("manifest-site")
    assert with_manifest.chunks_unchanged == plain.chunks_new and with_manifest.chunks_changed == 0
    assert not [w for w in with_manifest.warnings if "anchor the built site lacks" in w]

    data = json.loads((copy / MANIFEST_FILE).read_text())
    doc = next(d for d in data["docs"] if d["source"] == "docs/sensors/imu.md")
    doc["ids"] = [i for i in doc["ids"] if i != "calibrating-the-gyroscope"]
    (copy / MANIFEST_FILE).write_text(json.dumps(data))
    tampered = await run("manifest-site")
    warning = next(w for w in tampered.warnings if "anchor the built site lacks" in w)
    assert "/robot/docs/sensors/imu#calibrating-the-gyroscope" in warning

def _html_files(out: Path) -> list[Path]:
    return sorted(out.rglob("*.html"))


def test_the_plugin_puts_the_widget_on_every_page(build: Path) -> None:
    files = _html_files(build)
    assert len(files) > 60 and any("fr" in f.relative_to(build).parts for f in files)
    for file in files:
        tags = [s for s in Page(file.read_text(encoding="utf-8")).scripts if s.get("src") == f"{WIDGET}/widget.js"]
        assert len(tags) == 1, file
        assert tags[0]["data-lectern-url"] == WIDGET and tags[0]["data-lectern-book"] == "default", file


def test_the_manifest_lists_every_built_doc_with_its_heading_ids(build: Path) -> None:
    assert (build / MANIFEST_FILE).is_file() and (build / "fr" / MANIFEST_FILE).is_file()
    manifest = load_manifest(build)
    assert {(k.version, k.locale) for k in manifest.docs} == {
        ("current", "en"), ("1.0", "en"), ("current", "fr"), ("1.0", "fr")}
    for key, doc in manifest.docs.items():
        page = page_at(build, doc.permalink)
        assert page is not None, (key, doc.permalink)
        assert doc.ids <= page.ids, key
    roadmap = manifest.doc("community/roadmap.md", "current", "en")
    assert roadmap is not None and roadmap.unlisted  # built, but hidden
    assert manifest.doc("community/ideas.md", "current", "en") is None  # a draft is not built
    release = manifest.doc("2.1-firmware/01-release-notes.md", "", "")
    assert release is not None and release.permalink == "/robot/docs/2.1-firmware/release-notes"
    assert {"-faster-start-up", "the-roverlog-module", "known-issues", "known-issues-2-1-0"} <= release.ids
    french = manifest.doc("sensors/imu.md", "current", "fr")
    assert french is not None and "étalonner-le-gyroscope" in french.ids
    assert french.source == "i18n/fr/docusaurus-plugin-content-docs/current/sensors/imu.md"


@pytest.mark.parametrize(("path", "version", "locale"), [
    ("/robot/docs/sensors/imu", "current", "en"),
    ("/robot/docs/1.0/sensors/imu", "1.0", "en"),
    ("/robot/fr/docs/sensors/imu", "current", "fr"),
    ("/robot/fr/docs/1.0/sensors/imu", "1.0", "fr"),
])
def test_version_and_locale_are_where_the_widget_reads_them(build: Path, path: str, version: str,
                                                             locale: str) -> None:
    # gateway/static/widget.js reads <meta name="docusaurus_version|docusaurus_locale"> in the head
    # and <html lang>.
    page = page_at(build, path)
    assert page is not None
    assert page.meta.get("docusaurus_version") == version
    assert page.meta.get("docusaurus_locale") == locale
    assert page.lang == locale  # tests/test_widget.py checks the widget sends what it reads there


def test_the_plugin_unit_tests_pass() -> None:
    _run([_node(), "--test", "test/"], PLUGIN, 120)
