"""Directory formats and their errors, quiet-hours arithmetic, PIN hashing: no AWS at all."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from hotline_core.directory import DirectoryError, parse_directory
from hotline_core.pins import (
    PinHashError,
    check_pin_hash,
    check_proof,
    hash_pin,
    pin_proof,
    verify_pin,
)
from hotline_core.quiet import QuietHours, QuietHoursError, spoken_time
from tests.conftest import LINE_A, LINE_B

A, B, C = "+819011112222", "+817033334444", "+818055556666"


def people(*phones, **extra):
    return [{"name": f"P{i}", "phone": p, **extra} for i, p in enumerate(phones)]


def test_the_plain_array_is_one_circle_answering_any_number():
    directory = parse_directory(json.dumps(people(A, B, C)))

    [circle] = directory.circles
    assert circle.number is None
    assert directory.circle_for("+815099990000") is circle
    assert [p.phone for p in circle.others(A)] == [B, C]


def test_circles_are_selected_by_number_and_a_phone_may_be_in_several():
    raw = {
        "circles": [
            {"number": LINE_A, "members": people(A, B)},
            {"number": LINE_B, "members": people(A, C)},
        ]
    }
    directory = parse_directory(json.dumps(raw))

    assert [p.phone for p in directory.circle_for(LINE_B).people] == [A, C]
    assert directory.circle_for("+815099990000") is None
    assert [p.phone for p in directory.people] == [A, B, C]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"circles": []}, '"circles" must be a non-empty array'),
        ({"circles": [{"number": "0501234", "members": []}]}, 'circle 1: "number" is not an E.164'),
        (
            {"circles": [{"number": LINE_A, "members": people(A, B)}] * 2},
            "circle 2: number is also used by circle 1",
        ),
        ({"circles": [{"number": LINE_A, "members": people(A)}]}, "circle 1, needs at least two"),
        (
            {
                "circles": [
                    {
                        "number": LINE_A,
                        "members": people(*[f"+8190111100{i:02d}" for i in range(10)]),
                    }
                ]
            },
            "has 10 people; a circle has at most 9",
        ),
        ({"circles": [{"number": LINE_A}]}, '"members" must be an array'),
        ({"circles": [], "extra": 1}, "unknown key(s) 'extra'"),
        (people(A, B, quiet_hours="22:00"), "is not HH:MM-HH:MM"),
        (people(A, B, quiet_hours="07:00-07:00"), "starts and ends at the same time"),
        (people(A, B, quiet_hours="22:00-07:00", timezone="Mars/Base"), "unknown time zone"),
        (people(A, B, pin="1234"), '"pin" in clear text is not accepted'),
        (people(A, B, pin_hash="sha1$abc"), "pin_hash is not scrypt"),
        # A misspelt key would silently switch quiet hours off.
        (
            people(A, B, **{"quiet-hours": "22:00-07:00"}),
            "entry 1 (P0): unknown key(s) 'quiet-hours' (did you mean 'quiet_hours'?)",
        ),
        ({"circles": [{"number": LINE_A, "members": people(A, B), "memebrs": []}]}, "'memebrs'"),
        # Zone files that are not places: the machine's own zone differs on Lambda.
        (people(A, B, timezone="localtime"), "time zone 'localtime' is not a place"),
        (people(A, B, timezone="Factory"), "time zone 'Factory' is not a place"),
        (people(A, B, timezone="posix/Asia/Tokyo"), "is not a place"),
    ],
)
def test_a_bad_directory_names_the_problem(raw, problem):
    with pytest.raises(DirectoryError) as error:
        parse_directory(json.dumps(raw))
    assert problem in str(error.value)


def test_every_problem_is_reported_not_only_the_first():
    raw = {
        "circles": [
            {"number": LINE_A, "members": [*people(A, B), {"name": "", "phone": C}]},
            {"number": "05012", "members": people(A, "0901", lang="fr")},
        ]
    }
    with pytest.raises(DirectoryError) as error:
        parse_directory(json.dumps(raw))

    assert error.value.problems == [
        'circle 1, entry 3: "name" is missing or empty',
        'circle 2: "number" is not an E.164 number (like +815012340001)',
        "circle 2, entry 1 (P0): lang 'fr' is not one of ja, en",
        "circle 2, entry 2 (P1): phone is not an E.164 number (like +819011112222)",
        "circle 2, entry 2 (P1): lang 'fr' is not one of ja, en",
    ]
    assert str(error.value).startswith("5 problems: ")


def test_a_directory_error_never_echoes_a_pin_hash():
    bad = "scrypt$16384$8$1$c2FsdHNhbHQ=$!!!"
    with pytest.raises(DirectoryError) as error:
        parse_directory(json.dumps(people(A, B, pin_hash=bad)))
    assert bad not in str(error.value)


# --- quiet hours ----------------------------------------------------------------------------

TOKYO_2230 = datetime(2026, 1, 10, 13, 30, tzinfo=UTC)  # 22:30 in Tokyo


@pytest.mark.parametrize(
    ("span", "utc", "ends"),
    [
        ("22:00-07:00", datetime(2026, 1, 10, 13, 30, tzinfo=UTC), "2026-01-11T07:00+09:00"),
        ("22:00-07:00", datetime(2026, 1, 10, 20, 0, tzinfo=UTC), "2026-01-11T07:00+09:00"),
        ("22:00-07:00", datetime(2026, 1, 10, 22, 0, tzinfo=UTC), None),  # 07:00: just over
        ("22:00-07:00", datetime(2026, 1, 10, 12, 59, tzinfo=UTC), None),  # 21:59
        ("13:00-14:30", datetime(2026, 1, 10, 4, 0, tzinfo=UTC), "2026-01-10T14:30+09:00"),
        ("13:00-14:30", datetime(2026, 1, 10, 5, 30, tzinfo=UTC), None),
    ],
)
def test_quiet_hours_in_tokyo_including_across_midnight(span, utc, ends):
    found = QuietHours.parse(span).ends_at(utc)
    assert (found.isoformat(timespec="minutes") if found else None) == ends


def test_quiet_hours_follow_the_entrys_time_zone_and_its_summer_time():
    quiet = QuietHours.parse("22:00-07:00", "Europe/London")
    # 23:00 in London in July (BST, UTC+1) = 22:00 UTC: inside, ending 07:00 BST = 06:00 UTC.
    end = quiet.ends_at(datetime(2026, 7, 1, 22, 0, tzinfo=UTC))
    assert end is not None and end.astimezone(UTC) == datetime(2026, 7, 2, 6, 0, tzinfo=UTC)
    # The same instant is 07:00 in Tokyo: not quiet there.
    assert QuietHours.parse("22:00-07:00").ends_at(datetime(2026, 7, 1, 22, 0, tzinfo=UTC)) is None


def test_quiet_hours_ending_in_the_spring_forward_gap_end_when_the_clock_jumps():
    # New York, 2026-03-08: 02:00 EST jumps to 03:00 EDT, so 02:30 never happens. The quiet
    # hours are over from 03:00 EDT (07:00 UTC) on, when the wall clock first passes 02:30.
    quiet = QuietHours.parse("22:00-02:30", "America/New_York")
    end = quiet.ends_at(datetime(2026, 3, 8, 6, 0, tzinfo=UTC))  # 01:00 EST
    assert end is not None and end.astimezone(UTC) == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    assert quiet.ends_at(datetime(2026, 3, 8, 7, 0, tzinfo=UTC)) is None  # 03:00 EDT: over


def test_quiet_hours_ending_in_the_repeated_hour_end_at_the_next_time_the_clock_shows_it():
    # New York, 2026-11-01: 02:00 EDT goes back to 01:00 EST, so 01:00-02:00 happens twice.
    quiet = QuietHours.parse("22:00-01:30", "America/New_York")
    first = quiet.ends_at(datetime(2026, 11, 1, 5, 10, tzinfo=UTC))  # 01:10 EDT
    second = quiet.ends_at(datetime(2026, 11, 1, 6, 10, tzinfo=UTC))  # 01:10 EST, again
    assert first is not None and first.astimezone(UTC) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    assert second is not None
    assert second.astimezone(UTC) == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # not in the past


def test_a_bad_span_is_an_error():
    with pytest.raises(QuietHoursError):
        QuietHours.parse("25:00-07:00")


@pytest.mark.parametrize(
    ("hour", "minute", "ja", "en"),
    [
        (7, 0, "7時", "7 AM"),
        (7, 30, "7時30分", "7:30 AM"),
        (0, 0, "0時", "12 AM"),
        (13, 5, "13時5分", "1:05 PM"),
    ],
)
def test_times_are_said_the_way_people_say_them(hour, minute, ja, en):
    moment = datetime(2026, 1, 1, hour, minute)
    assert spoken_time(moment, "ja") == ja and spoken_time(moment, "en") == en


# --- PIN hashing ----------------------------------------------------------------------------


def test_a_pin_is_stored_salted_and_verified_in_constant_time():
    first, second = hash_pin("2468"), hash_pin("2468")

    assert first != second  # salted
    assert first.startswith("scrypt$16384$8$1$") and "2468" not in first
    assert verify_pin("2468", first) and verify_pin("2468", second)
    assert not verify_pin("2469", first)
    assert not verify_pin("Timeout", first)
    check_pin_hash(first)


@pytest.mark.parametrize("pin", ["123", "123456789", "12a4", ""])
def test_only_4_to_8_digits_are_a_pin(pin):
    with pytest.raises(ValueError):
        hash_pin(pin)


def test_absurd_scrypt_parameters_are_refused():
    with pytest.raises(PinHashError):
        check_pin_hash("scrypt$1073741824$8$1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==")


def test_the_pin_proof_is_bound_to_the_call_and_the_phone():
    stored = hash_pin("2468")
    proof = pin_proof(stored, contact_id="c1", phone=A)

    assert check_proof(proof, stored, contact_id="c1", phone=A)
    assert not check_proof(proof, stored, contact_id="c2", phone=A)
    assert not check_proof(proof, stored, contact_id="c1", phone=B)
    assert not check_proof(proof, hash_pin("2468"), contact_id="c1", phone=A)
    assert not check_proof("", stored, contact_id="c1", phone=A)


@pytest.mark.parametrize("name", ["phonenumber.json", "circles.json"])
def test_the_example_directories_are_valid(name):
    from tests.conftest import ROOT

    directory = parse_directory((ROOT / "examples" / name).read_bytes())
    assert len(directory.people) >= 2
