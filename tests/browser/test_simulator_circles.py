"""The simulator with two hotlines on one deployment: a phone in both circles can choose which
number to dial, and the circle's menu digit picks whom to ask."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest

from tests.browser.conftest import WAIT_MS
from tests.conftest import HARUTO, MIZUKI, TAKUMI
from tests.e2e.conftest import running_hotline
from tests.e2e.test_circles import FAMILY_LINE, REN, WORK_LINE, directory

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def circles_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("simulator-circles")
    path = folder / "circles.json"
    circles = directory(datetime.now(ZoneInfo("Asia/Tokyo")))
    path.write_text(json.dumps(circles, ensure_ascii=False), encoding="utf-8")
    with running_hotline(folder / "hotline-local.log", "--directory", str(path)) as url:
        yield url


def test_a_phone_in_two_circles_chooses_the_number_to_dial(
    circles_url: str, chromium: Browser
) -> None:
    from playwright.sync_api import expect

    page = chromium.new_context(locale="ja-JP").new_page()
    page.goto(circles_url + "/")
    takumi = page.locator(f'section[data-phone="{TAKUMI}"]')
    expect(takumi).to_contain_text("タクミ", timeout=WAIT_MS)

    line = takumi.locator("[data-role=line]")
    values = line.locator("option").evaluate_all("(os) => os.map((o) => o.value)")
    assert values[:2] == [f"hotline@{FAMILY_LINE}", f"hotline@{WORK_LINE}"], values
    assert "benefits" in values
    expect(line.locator(f'option[value="hotline@{WORK_LINE}"]')).to_contain_text("レン")
    # Mizuki is only in the family circle: one hotline entry, no work line.
    mizuki_values = page.locator(
        f'section[data-phone="{MIZUKI}"] [data-role=line] option'
    ).evaluate_all("(os) => os.map((o) => o.value)")
    assert [v for v in mizuki_values if v.startswith("hotline")] == [f"hotline@{FAMILY_LINE}"]

    # The work line has two people: no menu, Ren is asked.
    line.select_option(f"hotline@{WORK_LINE}")
    takumi.locator("[data-role=call]").click()
    expect(takumi.locator("[data-role=transcript]")).to_contain_text(
        "レンさんに聞いてみます", timeout=WAIT_MS
    )
    ren = page.locator(f'section[data-phone="{REN}"] [data-role=inbox] [data-role=sms]')
    expect(ren).to_have_count(1, timeout=WAIT_MS)
    expect(ren).to_contain_text("タクミさんが話したいそうです")

    # The family line has four: the digit 2 picks Haruto (1 is Mizuki).
    line.select_option(f"hotline@{FAMILY_LINE}")
    takumi.locator("[data-key='2']").click()
    takumi.locator("[data-role=call]").click()
    expect(takumi.locator("[data-role=transcript]")).to_contain_text(
        "ハルトさんに聞いてみます", timeout=WAIT_MS
    )
    haruto = page.locator(f'section[data-phone="{HARUTO}"] [data-role=inbox] [data-role=sms]')
    expect(haruto).to_have_count(1, timeout=WAIT_MS)
    expect(page.locator(f'section[data-phone="{MIZUKI}"] [data-role=sms]')).to_have_count(0)
