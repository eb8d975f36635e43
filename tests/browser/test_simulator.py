"""The phone simulator in headless Chromium (Debian's /usr/bin/chromium, never a downloaded
browser): Takumi's phone calls, Mizuki's inbox shows the SMS, the link opens the real answer
page, "yes" is pressed, and Takumi's inbox shows Mizuki's number. Saves a screenshot."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import ARTIFACTS, WAIT_MS, assert_renders_japanese
from tests.conftest import MIZUKI, TAKUMI

pytestmark = pytest.mark.browser

if TYPE_CHECKING:
    from playwright.sync_api import Browser


def test_a_conversation_on_the_simulator(simulator_url: str, chromium: Browser) -> None:
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    context = chromium.new_context(locale="ja-JP", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(simulator_url + "/")
    takumi = page.locator(f'section[data-phone="{TAKUMI}"]')
    mizuki = page.locator(f'section[data-phone="{MIZUKI}"]')
    expect(takumi).to_contain_text("タクミ", timeout=WAIT_MS)
    expect(mizuki).to_contain_text("ミズキ", timeout=WAIT_MS)

    takumi.locator("[data-role=call]").click()
    expect(takumi.locator("[data-role=transcript]")).to_contain_text(
        "ミズキさんに聞いてみます", timeout=WAIT_MS
    )
    invite = mizuki.locator("[data-role=inbox] [data-role=sms]")
    expect(invite).to_have_count(1, timeout=WAIT_MS)
    expect(invite).to_contain_text("タクミさんが話したいそうです")
    link = invite.locator("a")
    href = link.get_attribute("href")
    assert href and href.startswith(simulator_url + "/a/"), href

    with context.expect_page() as opened:
        link.click()
    answer_page = opened.value
    answer_page.wait_for_load_state()
    expect(answer_page.locator("body")).to_contain_text("タクミさん")
    answer_page.locator('button[value="yes"], button.yes').first.click()
    answer_page.wait_for_load_state()
    expect(answer_page.locator("body")).to_contain_text("伝えました", timeout=WAIT_MS)

    told = takumi.locator("[data-role=inbox] [data-role=sms]")
    expect(told).to_have_count(1, timeout=WAIT_MS)
    expect(told).to_contain_text("070-3333-4444")  # a Japanese text: the domestic form
    expect(told).to_contain_text("ミズキさんが話せます")

    # Japanese renders with a CJK font, not tofu: the font is there and in use.
    assert_renders_japanese(page, "話タミ")

    takumi.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "simulator.png"), full_page=True)
    answer_page.screenshot(path=str(ARTIFACTS / "answer-page.png"))
    assert (ARTIFACTS / "simulator.png").stat().st_size > 10_000
