"""Numbers as people read them: a Japanese text shows a Japanese number in domestic form,
everything else stays E.164; either way the number dials when tapped."""

from __future__ import annotations

import pytest

from hotline_core import messages
from hotline_core.phone import is_e164, shown_phone


@pytest.mark.parametrize(
    ("phone", "domestic"),
    [
        ("+817033334444", "070-3333-4444"),  # mobile
        ("+818055556666", "080-5555-6666"),
        ("+819011112222", "090-1111-2222"),
        ("+815012345678", "050-1234-5678"),  # IP phone
        ("+812012345678", "020-1234-5678"),
        ("+81312345678", "03-1234-5678"),  # Tokyo
        ("+81612345678", "06-1234-5678"),  # Osaka
        ("+81120123456", "0120-123-456"),  # toll-free
        ("+818001234567", "0800-123-4567"),
        # Other area codes (2 to 5 digits): no hyphen rather than one in the wrong place.
        ("+81451234567", "0451234567"),  # Yokohama 045
        ("+81922345678", "0922345678"),  # Fukuoka 092
        ("+81133123456", "0133123456"),  # a 4-digit area code
    ],
)
def test_a_japanese_number_in_a_japanese_text_is_domestic(phone, domestic):
    assert shown_phone(phone, "ja") == domestic
    assert shown_phone(phone, "en") == phone  # English texts: E.164
    # Still the same number: the country code's 0 for +81, the digits unchanged.
    assert "+81" + domestic.replace("-", "")[1:] == phone


@pytest.mark.parametrize(
    "phone",
    [
        "+12025550123",  # not Japanese
        "+447700900123",
        "+8170333344",  # too short for a mobile
        "+81703333444455",  # too long for anything
        "+8112345678",  # a fixed line one digit short
        "0701234567",  # not E.164: left as it is
    ],
)
def test_every_other_number_stays_as_it_is(phone):
    assert shown_phone(phone, "ja") == phone
    assert shown_phone(phone, "en") == phone


@pytest.mark.parametrize("key", ["accepted", "accepted_late", "mutual_first", "mutual_second"])
def test_the_texts_that_show_a_number_show_it_in_the_readers_form(key):
    names = {"receiver": "ミズキ", "other": "ミズキ"}
    ja = messages.text(key, "ja", phone="+817033334444", **names)
    en = messages.text(key, "en", phone="+817033334444", **names)
    foreign = messages.text(key, "ja", phone="+12025550123", **names)

    assert "070-3333-4444" in ja and "+81" not in ja
    assert "+817033334444" in en and "070-" not in en
    assert "+12025550123" in foreign


def test_the_domestic_form_is_no_longer_than_e164():
    """The segment promises hold: the shown number never adds characters."""
    for phone in ("+817033334444", "+81312345678", "+81120123456", "+81451234567"):
        assert len(shown_phone(phone, "ja")) <= len(phone) and is_e164(phone)
