"""The chat widget in real headless Chromium (Debian's `chromium`, driven by Playwright), at a
desktop and a phone width: ask, stream, cite, select, resume, vote, all of it from the keyboard,
and what the reader sees when the site's origin may not call the API. Each state is saved as a
screenshot in test-results/ (git-ignored) and its layout is checked from the rendered page."""

from __future__ import annotations

import base64
import shutil
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Locator, Page, ViewportSize, async_playwright

from evaluation.stack import free_port
from tests.conftest import ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = ROOT / "test-results"
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)")

# Desktop, and a phone (the panel then takes the whole screen).
VIEWPORTS = {"desktop": ViewportSize(width=1280, height=800), "phone": ViewportSize(width=390, height=844)}
SHADOW = "document.querySelector('#lectern-widget').shadowRoot"


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        await launched.close()


@pytest_asyncio.fixture(loop_scope="session", params=list(VIEWPORTS))
async def page(request: pytest.FixtureRequest, browser: Browser, gateway: str,
               ingested: dict[str, object]) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport=VIEWPORTS[request.param])
    tab = await context.new_page()
    await tab.goto(gateway + "/")
    yield tab
    await context.close()


async def shot(p: Page, state: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    size = p.viewport_size
    await p.screenshot(path=str(SHOTS / f"widget-{size['width'] if size else 0}-{state}.png"))


async def ask(p: Page, question: str) -> Locator:
    await p.fill("#lectern-q", question)
    await p.press("#lectern-q", "Enter")
    answer = p.locator(".msg.bot").last
    await answer.locator(".vote").wait_for(timeout=30_000)
    return answer


# The pixels inside a button's border, from a real screenshot decoded on a canvas: how many
# differ clearly from the button's background (its commonest colour), and which (to tell icons apart).
INK = """async (b64) => {
    const img = new Image(); img.src = 'data:image/png;base64,' + b64; await img.decode();
    const c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
    const g = c.getContext('2d'); g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data, seen = new Map();
    for (let i = 0; i < d.length; i += 4) {
        const k = d[i] + ',' + d[i + 1] + ',' + d[i + 2]; seen.set(k, (seen.get(k) || 0) + 1);
    }
    const bg = [...seen].sort((a, b) => b[1] - a[1])[0][0].split(',').map(Number);
    let ink = 0, mask = '';
    for (let i = 0; i < d.length; i += 4) {
        const on = Math.abs(d[i] - bg[0]) + Math.abs(d[i + 1] - bg[1]) + Math.abs(d[i + 2] - bg[2]) > 96;
        ink += on; mask += on ? '1' : '0';
    }
    return {ink, mask};
}"""
INSIDE_BORDER = """(b) => {
    const r = b.getBoundingClientRect(), s = getComputedStyle(b), px = (v) => parseFloat(v) || 0;
    const left = px(s.borderLeftWidth), top = px(s.borderTopWidth);
    return {x: r.x + left, y: r.y + top, width: r.width - left - px(s.borderRightWidth),
            height: r.height - top - px(s.borderBottomWidth)};
}"""


async def drawn(p: Page, button: Locator) -> dict[str, Any]:
    png = await p.screenshot(clip=await button.evaluate(INSIDE_BORDER))
    result: dict[str, Any] = await p.evaluate(INK, base64.b64encode(png).decode())
    return result


async def assert_thumbs_are_drawn(p: Page, answer: Locator) -> None:
    """Icons drawn by the widget itself (inline SVG), not emoji that a machine without an emoji
    font shows as nothing or as two identical boxes; each says what it does to a screen reader."""
    up, down = answer.locator(".vote button[data-rating=up]"), answer.locator(".vote button[data-rating=down]")
    drawn_up, drawn_down = await drawn(p, up), await drawn(p, down)
    # About 120 pixels each; the rounded border's corners alone make a dozen.
    assert drawn_up["ink"] > 40 and drawn_down["ink"] > 40, (drawn_up["ink"], drawn_down["ink"])
    assert drawn_up["mask"] != drawn_down["mask"], "both show the same picture (an emoji font's missing-glyph box?)"
    for button in (up, down):
        assert await button.locator("svg").count() == 1
        assert await button.get_attribute("aria-label") and await button.locator("svg title").text_content()


async def layout(p: Page) -> dict[str, Any]:
    box: dict[str, Any] = await p.evaluate(f"""() => {{
        const root = {SHADOW}, rect = (s) => {{ const r = root.querySelector(s).getBoundingClientRect();
            return {{top: r.top, bottom: r.bottom, left: r.left, right: r.right, height: r.height}}; }};
        const resume = root.querySelector('.resume'), q = root.querySelector('.mode q');
        return {{resume: rect('.resume'), mode: rect('.mode'), q: rect('.mode q'), log: rect('.log'),
                 panel: rect('.panel'), resumeShown: getComputedStyle(resume).display !== 'none',
                 resumeHeight: resume.offsetHeight,
                 qFits: q.scrollWidth <= q.clientWidth && q.scrollHeight <= q.clientHeight}};
    }}""")
    return box


async def test_ask_stream_cite_vote_resume(page: Page) -> None:
    p = page
    await p.click(".fab")
    bars = await layout(p)
    assert (bars["resumeShown"], bars["resumeHeight"]) == (False, 0)  # nothing to resume: no empty strip
    answer = await ask(p, "How do I tune the PID controller?")
    text = await answer.locator(".text").inner_text()
    assert "[1]" in text or "Kp" in text
    href = await answer.locator(".sources a").first.get_attribute("href")
    assert href and "pid-tuning#" in href
    await assert_thumbs_are_drawn(p, answer)
    await shot(p, "answer")
    up = answer.locator(".vote button[data-rating=up]")
    await up.click()
    await p.wait_for_function(f"() => {SHADOW}.querySelector('.vote button[data-rating=up]')"
                              ".getAttribute('aria-pressed') === 'true'")
    assert (await drawn(p, up))["ink"] > 40  # the pressed icon follows the button's colours
    await shot(p, "voted")

    await p.reload()
    await p.click(".fab")
    assert (await layout(p))["resumeShown"]
    await shot(p, "resume-offer")
    await p.click(".resume .yes")
    await p.locator(".msg.user").first.wait_for()
    assert "PID" in await p.locator(".msg.user").first.inner_text()
    bars = await layout(p)
    assert (bars["resumeShown"], bars["resumeHeight"]) == (False, 0)
    await shot(p, "resumed")


# No hyphen or space in it: a line can only break inside it where the widget allows.
LONG_WORD = "https://docs.example.com/robot/docs/motors/pid_tuning/integral_windup_and_the_clamped_range"


async def test_selection_next_to_the_resume_offer(page: Page) -> None:
    """A reader with a conversation to resume selects a passage: both bars show, one under the
    other, the whole quote is readable (it wraps, even a long address) and the log keeps room."""
    p = page
    await p.click(".fab")
    await ask(p, "What is odometry?")
    await p.reload()
    await p.evaluate(f"""() => {{
        const para = document.querySelectorAll('p')[2];
        para.textContent = "Rover's defaults are Kp = 0.8, Ki = 2.0 and Kd = 0.01 (see {LONG_WORD}).";
        const range = document.createRange(); range.selectNodeContents(para);
        const sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(range);
        para.dispatchEvent(new MouseEvent('mouseup', {{bubbles: true}}));
    }}""")
    await shot(p, "selection-offer")
    await p.click(".ask-sel")
    assert await p.locator(".mode.on").is_visible()
    await shot(p, "resume-and-selection")
    bars = await layout(p)
    resume, mode, q, log, panel = (bars[k] for k in ("resume", "mode", "q", "log", "panel"))
    assert bars["resumeShown"] and resume["height"] > 0
    assert resume["bottom"] <= mode["top"] or mode["bottom"] <= resume["top"], bars  # disjoint
    assert mode["top"] <= q["top"] and q["bottom"] <= mode["bottom"], bars  # the quote is inside its bar
    assert bars["qFits"], bars  # nothing of the quote is scrolled or cut off
    assert panel["left"] <= q["left"] and q["right"] <= panel["right"], bars
    assert log["height"] >= 120, bars  # the conversation still has room
    assert LONG_WORD in await p.locator(".mode q").inner_text()

    await p.click(".resume .yes")
    await p.locator(".msg.user").first.wait_for()
    assert not (await layout(p))["resumeShown"]
    answer = await ask(p, "What are the default gains?")
    assert "0.8" in await answer.locator(".text").inner_text()
    await shot(p, "selection-answer")


async def test_selection_mode_and_keyboard_only_use(page: Page) -> None:
    p = page
    await p.evaluate("""() => {
        const para = document.querySelectorAll('p')[2];
        const range = document.createRange(); range.selectNodeContents(para);
        const sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(range);
        para.dispatchEvent(new MouseEvent('mouseup', {bubbles: true}));
    }""")
    await p.click(".ask-sel")
    assert await p.locator(".mode.on").is_visible()
    assert (await layout(p))["qFits"]  # a long selection is quoted in part, whole lines, with "…"
    assert (await p.locator(".mode q").inner_text()).endswith("…")
    answer = await ask(p, "What are the default gains?")
    assert "0.8" in await answer.locator(".text").inner_text()
    await shot(p, "selection")
    await p.click(".exit-sel")
    assert not await p.locator(".mode.on").count()

    await p.keyboard.press("Escape")
    assert await p.locator(".panel").is_hidden()
    await p.keyboard.press("Enter")  # focus returned to the button: Enter opens again
    assert await p.locator(".panel").is_visible()
    await p.keyboard.type("What is odometry?")
    await p.keyboard.press("Enter")
    await p.locator(".msg.bot").last.locator(".vote").wait_for(timeout=30_000)
    assert await p.get_attribute(".fab", "aria-expanded") == "true"


# A doc page on another site that embeds the widget.
FOREIGN_PAGE = """<!doctype html><html lang="en"><head><meta charset="UTF-8"><title>Motors</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<script src="{script}" defer="defer" data-lectern-url="{api}" data-lectern-book="default"></script>
</head><body><article><h1>Motors</h1><p>PID speed control.</p></article></body></html>"""


@pytest.fixture
def site(gateway: str) -> Iterator[tuple[str, str]]:
    """A docs site on another origin: its own server on loopback (Chromium keeps a page it cannot
    place, such as one a test fulfils, from loopback addresses altogether). /docs/motors asks the
    gateway, /docs/down asks an address where nothing listens; yields (site, that address)."""
    down = f"http://127.0.0.1:{free_port()}"
    pages = {"/docs/motors": gateway, "/docs/down": down}

    class Pages(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            api = pages.get(self.path)
            body = FOREIGN_PAGE.format(script=gateway + "/widget.js", api=api).encode() if api else b""
            self.send_response(200 if api else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", down
    server.shutdown()
    server.server_close()


async def ask_for_error(p: Page, url: str) -> str:
    await p.goto(url)
    await p.click(".fab")
    await p.fill("#lectern-q", "How do I tune the PID controller?")
    await p.press("#lectern-q", "Enter")
    error = p.locator(".msg.bot .text.error")
    await error.wait_for(timeout=10_000)
    return await error.inner_text()


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
async def test_a_blocked_origin_is_named_for_the_site_owner(viewport: str, browser: Browser,
                                                           site: tuple[str, str]) -> None:
    """The shared gateway allows no other origin (LECTERN_CORS_ORIGINS is empty), so the browser
    withholds its answers from a page on another site: the reader is told why and the site owner
    what to set, instead of "Failed to fetch". A gateway that cannot be reached is told apart."""
    origin, down = site
    context = await browser.new_context(viewport=VIEWPORTS[viewport])
    p = await context.new_page()
    message = await ask_for_error(p, origin + "/docs/motors")
    assert "Failed to fetch" not in message
    assert origin in message and "LECTERN_CORS_ORIGINS" in message, message
    await shot(p, "blocked-origin")
    message = await ask_for_error(p, origin + "/docs/down")
    assert "unreachable" in message and down in message and "LECTERN_CORS_ORIGINS" not in message, message
    await shot(p, "unreachable")
    await context.close()


# A doc page as Docusaurus renders it (tests/test_docusaurus_build.py checks a real build has
# these tags), served from the gateway's origin so the widget's calls need no CORS.
DOC_PAGE = """<!doctype html><html lang="fr" dir="ltr"><head><meta charset="UTF-8">
<meta data-rh="true" name="docusaurus_locale" content="fr">
<meta data-rh="true" name="docusaurus_version" content="1.0">
<title>La centrale inertielle</title>
<script src="{api}/widget.js" defer="defer" data-lectern-url="{api}" data-lectern-book="default"></script>
</head><body><article><h1>La centrale inertielle</h1><p>Étalonner le gyroscope.</p></article></body></html>"""


async def test_the_widget_sends_the_pages_version_and_locale(browser: Browser, gateway: str,
                                                            ingested: dict[str, object]) -> None:
    p = await browser.new_page()
    doc = gateway + "/robot/fr/docs/1.0/sensors/imu"
    await p.route(doc, lambda route: route.fulfill(content_type="text/html", body=DOC_PAGE.format(api=gateway)))
    await p.goto(doc)
    await p.click(".fab")

    async def sent(question: str) -> dict[str, object]:
        async with p.expect_request(lambda r: r.url == gateway + "/v1/chat") as request, \
                p.expect_response(lambda r: r.url == gateway + "/v1/chat") as response:
            await ask(p, question)
        assert (await response.value).status == 200  # the gateway takes the fields
        body = (await request.value).post_data_json
        assert isinstance(body, dict)
        return body

    body = await sent("How do I calibrate the gyroscope?")
    assert (body["version"], body["locale"]) == ("1.0", "fr")
    assert body["page"] == {"url": "/robot/fr/docs/1.0/sensors/imu", "title": "La centrale inertielle"}
    # Client-side navigation swaps the tags without reloading the widget: read at each question.
    await p.evaluate("""() => {
        document.querySelector('meta[name=docusaurus_version]').setAttribute('content', 'current');
        document.querySelector('meta[name=docusaurus_locale]').remove();
        document.documentElement.lang = 'en';
    }""")
    body = await sent("What is odometry?")
    assert (body["version"], body["locale"]) == ("current", "en")  # <html lang> when no locale tag
    await p.evaluate("() => { document.querySelector('meta[name=docusaurus_version]').remove();"
                     " document.documentElement.removeAttribute('lang'); }")
    body = await sent("What is a PID controller?")
    assert "version" not in body and "locale" not in body  # not a Docusaurus page: nothing to send
    await p.close()


# An answer in the Markdown the answerers write, with hostile bits a book could carry.
MARKDOWN_ANSWER = ("Run `calibrate.py` first [1].\n\n- Keep **Rover** still [1].\n- Then open "
                   "[the guide](/robot/docs/sensors/imu) or [this](javascript:alert(1)) <img src=x onerror=alert(1)>."
                   "\n\nThe last steps [1]:\n\n3. Raise Ki [1].\n4. Add Kd [1].")


def sse(answer: str) -> str:
    import json

    def event(name: str, data: dict[str, object]) -> str:
        return f"event: {name}\ndata: {json.dumps(data)}\n\n"

    return (event("meta", {"conversation_id": "", "conversation_token": "", "message_id": "m1"})
            + event("sources", {"sources": [{"n": 1, "url": "/robot/docs/sensors/imu", "heading_path": ["IMU"]}]})
            + "".join(event("token", {"text": answer[i:i + 7]}) for i in range(0, len(answer), 7))
            + event("done", {"answer": answer, "grounded": True, "out_of_scope": False}))


async def test_answers_render_markdown_safely(browser: Browser, gateway: str, ingested: dict[str, object]) -> None:
    p = await browser.new_page()
    await p.route(gateway + "/v1/chat", lambda route: route.fulfill(
        status=200, content_type="text/event-stream", body=sse(MARKDOWN_ANSWER)))
    await p.goto(gateway + "/")
    await p.click(".fab")
    await p.fill("#lectern-q", "How do I calibrate?")
    await p.press("#lectern-q", "Enter")
    text = p.locator(".msg.bot").last.locator(".text")
    await text.locator("li").nth(1).wait_for(timeout=10_000)
    await p.wait_for_function(f"() => {SHADOW}.querySelector('.msg.bot:last-child .text')"
                              ".textContent.includes('Add Kd')")
    shown = await text.inner_text()
    assert "`" not in shown and "**" not in shown
    assert await text.locator("code").first.inner_text() == "calibrate.py"
    assert await text.locator("ul li").count() == 2 and await text.locator("strong").inner_text() == "Rover"
    # A quoted ordered list keeps the book's numbers: steps 3 and 4 show as 3. and 4.
    assert await text.locator("ol").get_attribute("start") == "3" and await text.locator("ol li").count() == 2
    links = [await a.get_attribute("href") for a in await text.locator("a").all()]
    assert links == ["/robot/docs/sensors/imu"]  # the javascript: link stays text
    assert await text.locator("img").count() == 0 and "<img" in shown  # HTML is shown, never run
    await p.close()
