"""LINE on the phone simulator, in headless Chromium (Debian's /usr/bin/chromium, never a
downloaded browser): Mizuki's phone gets a link code and sends it in its LINE chat, the webhook
replies that it is linked; Takumi calls; Mizuki's LINE chat shows the invitation with its
buttons (no SMS), tapping "はい" sends that button's postback, the chat shows the reply, and
Takumi is told. Japanese renders with a CJK font. Saves a screenshot."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import ARTIFACTS, WAIT_MS, assert_renders_japanese
from tests.conftest import MIZUKI, TAKUMI

pytestmark = pytest.mark.browser

if TYPE_CHECKING:
    from playwright.sync_api import Browser


def test_a_linked_phone_answers_by_line_on_the_simulator(
    simulator_url: str, chromium: Browser
) -> None:
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    context = chromium.new_context(locale="ja-JP", viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.goto(simulator_url + "/")
    takumi = page.locator(f'section[data-phone="{TAKUMI}"]')
    mizuki = page.locator(f'section[data-phone="{MIZUKI}"]')
    expect(mizuki).to_contain_text("ミズキ", timeout=WAIT_MS)
    status = mizuki.locator("[data-role=line-status]")
    expect(status).to_have_attribute("data-linked", "no", timeout=WAIT_MS)

    # Linking: add the Official Account as a friend, get a code, send it as a message.
    chat = mizuki.locator("[data-role=line-chat]")
    mizuki.locator("[data-role=line-follow]").click()
    expect(chat.locator("[data-role=line-message]")).to_have_count(1, timeout=WAIT_MS)
    mizuki.locator("[data-role=line-code]").click()
    code_box = mizuki.locator("[data-role=line-text]")
    expect(code_box).to_have_value(re.compile(r"^[0-9]{6}$"), timeout=WAIT_MS)
    mizuki.locator("[data-role=line-send]").click()
    expect(chat.locator("[data-role=line-mine]")).to_have_count(1, timeout=WAIT_MS)
    expect(chat.locator("[data-role=line-message]")).to_have_count(2, timeout=WAIT_MS)
    expect(chat.locator("[data-role=line-message]").last).to_contain_text("連携できました")
    expect(status).to_have_attribute("data-linked", "yes", timeout=WAIT_MS)

    # Takumi calls: Mizuki's invitation comes by LINE, with buttons, and no SMS.
    takumi.locator("[data-role=call]").click()
    expect(takumi.locator("[data-role=transcript]")).to_contain_text(
        "ミズキさんに聞いてみます", timeout=WAIT_MS
    )
    invitation = chat.locator("[data-role=line-message][data-type=template]")
    expect(invitation).to_have_count(1, timeout=WAIT_MS)
    expect(invitation).to_contain_text("タクミさん")
    yes = invitation.locator("[data-role=line-action]", has_text="はい")
    expect(yes).to_have_count(1)
    expect(mizuki.locator("[data-role=inbox] [data-role=sms]")).to_have_count(0)

    yes.click()
    # The tap's reply in Mizuki's chat, and Takumi told (by SMS: he is not linked).
    expect(chat.locator("[data-role=line-message]")).to_have_count(4, timeout=WAIT_MS)
    told = takumi.locator("[data-role=inbox] [data-role=sms]")
    expect(told).to_have_count(1, timeout=WAIT_MS)
    expect(told).to_contain_text("ミズキさんが話せます")
    expect(told).to_contain_text("070-3333-4444")

    # Japanese renders with a CJK font, not tofu.
    assert_renders_japanese(page, "連携は")

    mizuki.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "simulator-line.png"), full_page=True)
    assert (ARTIFACTS / "simulator-line.png").stat().st_size > 10_000
