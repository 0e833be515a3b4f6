"""The chat widget in real headless Chromium (Debian's `chromium`, driven by Playwright):
ask, stream, cite, select, resume, vote, and all of it from the keyboard."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Locator, Page, async_playwright

from tests.conftest import ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = ROOT / "test-results"
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)")


@pytest_asyncio.fixture(loop_scope="session")
async def page(gateway: str, ingested: dict[str, object]) -> AsyncIterator[Page]:
    SHOTS.mkdir(exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = await browser.new_context(viewport={"width": 1100, "height": 800})
        tab = await context.new_page()
        await tab.goto(gateway + "/")
        yield tab
        await browser.close()


async def ask(p: Page, question: str) -> Locator:
    await p.fill("#lectern-q", question)
    await p.press("#lectern-q", "Enter")
    answer = p.locator(".msg.bot").last
    await answer.locator(".vote").wait_for(timeout=30_000)
    return answer


async def test_ask_stream_cite_vote_resume(page: Page) -> None:
    p = page
    await p.click(".fab")
    answer = await ask(p, "How do I tune the PID controller?")
    text = await answer.locator(".text").inner_text()
    assert "[1]" in text or "Kp" in text
    href = await answer.locator(".sources a").first.get_attribute("href")
    assert href and "pid-tuning#" in href
    await p.screenshot(path=str(SHOTS / "widget-answer.png"))
    up = answer.locator(".vote button[data-rating=up]")
    await up.click()
    await p.wait_for_function(
        "() => document.querySelector('#lectern-widget').shadowRoot"
        ".querySelector('.vote button[data-rating=up]').getAttribute('aria-pressed') === 'true'")

    await p.reload()
    await p.click(".fab")
    await p.click(".resume .yes")
    await p.locator(".msg.user").first.wait_for()
    assert "PID" in await p.locator(".msg.user").first.inner_text()
    await p.screenshot(path=str(SHOTS / "widget-resumed.png"))


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
    answer = await ask(p, "What are the default gains?")
    assert "0.8" in await answer.locator(".text").inner_text()
    await p.screenshot(path=str(SHOTS / "widget-selection.png"))
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


# A doc page as Docusaurus renders it (tests/test_docusaurus_build.py checks a real build has
# these tags), served from the gateway's origin so the widget's calls need no CORS.
DOC_PAGE = """<!doctype html><html lang="fr" dir="ltr"><head><meta charset="UTF-8">
<meta data-rh="true" name="docusaurus_locale" content="fr">
<meta data-rh="true" name="docusaurus_version" content="1.0">
<title>La centrale inertielle</title>
<script src="{api}/widget.js" defer="defer" data-lectern-url="{api}" data-lectern-book="default"></script>
</head><body><article><h1>La centrale inertielle</h1><p>Étalonner le gyroscope.</p></article></body></html>"""


async def test_the_widget_sends_the_pages_version_and_locale(gateway: str, ingested: dict[str, object]) -> None:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
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
        await browser.close()


# An answer in the Markdown the answerers write, with hostile bits a book could carry.
MARKDOWN_ANSWER = ("Run `calibrate.py` first [1].\n\n- Keep **Rover** still [1].\n- Then open "
                   "[the guide](/robot/docs/sensors/imu) or [this](javascript:alert(1)) <img src=x onerror=alert(1)>.")


def sse(answer: str) -> str:
    import json

    def event(name: str, data: dict[str, object]) -> str:
        return f"event: {name}\ndata: {json.dumps(data)}\n\n"

    return (event("meta", {"conversation_id": "", "conversation_token": "", "message_id": "m1"})
            + event("sources", {"sources": [{"n": 1, "url": "/robot/docs/sensors/imu", "heading_path": ["IMU"]}]})
            + "".join(event("token", {"text": answer[i:i + 7]}) for i in range(0, len(answer), 7))
            + event("done", {"answer": answer, "grounded": True, "out_of_scope": False}))


async def test_answers_render_markdown_safely(gateway: str, ingested: dict[str, object]) -> None:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        p = await browser.new_page()
        await p.route(gateway + "/v1/chat", lambda route: route.fulfill(
            status=200, content_type="text/event-stream", body=sse(MARKDOWN_ANSWER)))
        await p.goto(gateway + "/")
        await p.click(".fab")
        await p.fill("#lectern-q", "How do I calibrate?")
        await p.press("#lectern-q", "Enter")
        text = p.locator(".msg.bot").last.locator(".text")
        await text.locator("li").nth(1).wait_for(timeout=10_000)
        await p.wait_for_function("() => document.querySelector('#lectern-widget').shadowRoot"
                                  ".querySelector('.msg.bot:last-child .text').textContent.includes('onerror')")
        shown = await text.inner_text()
        assert "`" not in shown and "**" not in shown
        assert await text.locator("code").first.inner_text() == "calibrate.py"
        assert await text.locator("li").count() == 2 and await text.locator("strong").inner_text() == "Rover"
        links = [await a.get_attribute("href") for a in await text.locator("a").all()]
        assert links == ["/robot/docs/sensors/imu"]  # the javascript: link stays text
        assert await text.locator("img").count() == 0 and "<img" in shown  # HTML is shown, never run
        await browser.close()
