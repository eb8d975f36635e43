"""Debian's Chromium (never a downloaded browser), driven by Playwright, for the simulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"  # screenshots, kept by CI
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 15_000  # an upper bound for the page to catch up, never a timing assertion


@pytest.fixture(scope="module")
def simulator_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh `hotline local` for each test module, so the inboxes hold only its messages."""
    from tests.e2e.conftest import running_hotline

    log = tmp_path_factory.mktemp("simulator") / "hotline-local.log"
    with running_hotline(log) as url:
        yield url


@pytest.fixture
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            "browser tests need Debian's Chromium at /usr/bin/chromium and CJK fonts: "
            "run `make browser-deps` (or `sudo apt-get install chromium fonts-noto-cjk`)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


# Draws each character and a missing glyph (U+10FFFD) on a canvas in the CJK font: a
# character drawn like the missing glyph, or not at all, is tofu.
_DRAWN_LIKE_TOFU = """(chars) => {
  const draw = (text) => {
    const c = document.createElement('canvas');
    c.width = 48; c.height = 48;
    const g = c.getContext('2d');
    g.font = '36px "Noto Sans CJK JP"';
    g.fillText(text, 4, 40);
    return Array.from(g.getImageData(0, 0, 48, 48).data).join(',');
  };
  const tofu = draw(String.fromCodePoint(0x10FFFD)), blank = draw(' ');
  return chars.map((ch) => draw(ch) !== tofu && draw(ch) !== blank);
}"""


def assert_renders_japanese(page: Page, text: str) -> None:
    """Japanese renders with a CJK font, not as missing-glyph boxes: the font is there, in
    use, and draws each character of `text`."""
    assert page.evaluate(f"document.fonts.check('16px \"Noto Sans CJK JP\"', '{text}')")
    drawn = page.evaluate(_DRAWN_LIKE_TOFU, list(text))
    assert drawn == [True] * len(text), "Japanese renders as missing-glyph boxes"
