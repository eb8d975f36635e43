"""How `hotline dead-letters` shows a dead letter: anything shaped like a phone number masked in
an error or an id, and an age read the way a person says it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hotline_tools import dead_letters
from tests.conftest import TAKUMI
from tests.integration import dead_letters_cli
from tests.integration.dead_letters_cli import REQUEST_ID

# The shared autouse fixture: pytest finds a fixture by its name in the test module.
quick_and_wide = dead_letters_cli.quick_and_wide


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("to +819011112222 failed", "to +81********22 failed"),
        ("number 090-1111-2222 refused", "number 090******22 refused"),
        ("+81 90 1111 2222", "+81********22"),
        ("after 3 attempts, 120 s", "after 3 attempts, 120 s"),
    ],
)
def test_errors_mask_anything_shaped_like_a_phone(text, shown):
    assert dead_letters.short_error(None, text) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (REQUEST_ID, REQUEST_ID),
        ("12345678-1234-4234-8234-123456789012", "12345678-1234-4234-8234-123456789012"),
        ("M-0001", "M-0001"),
        (TAKUMI, "+81********22"),
        (None, "-"),
    ],
)
def test_an_id_is_shown_as_is_unless_it_is_a_phone_number(value, shown):
    assert dead_letters.shown_id(value) == shown
    payload = {"detail-type": "BenefitRequested", "detail": {"data": {"member_id": value}}}
    assert dead_letters.describe_payload(payload) == ("BenefitRequested", shown)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(20, "< 1 min"), (61, "1 min"), (3 * 3600 + 12 * 60 + 59, "3 h 12 min"), (90000, "1 d 1 h")],
)
def test_age_reads_like_a_person_says_it(seconds, shown):
    now = datetime(2026, 5, 1, 12, tzinfo=UTC)
    assert dead_letters.age(now - timedelta(seconds=seconds), now) == shown
