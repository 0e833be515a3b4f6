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
