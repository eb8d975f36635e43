"""The directory of people (`phonenumber.json`): parsing and validation.

Two formats. The original: a JSON array of {"name", "phone"} entries (optional "lang",
"quiet_hours", "timezone", "pin_hash", "reading"), one circle answering whatever number was dialled.
Several hotlines: {"circles": [{"number": "+81…", "members": [...]}]}, where the dialled
number picks the circle. A bad directory is an error that names the problem, never a
half-working hotline.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import get_close_matches
from typing import Any, Literal

from hotline_core.phone import is_e164
from hotline_core.pins import PinHashError, check_pin_hash
from hotline_core.quiet import DEFAULT_TIMEZONE, QuietHours, QuietHoursError, zone

Lang = Literal["ja", "en"]
LANGS: tuple[Lang, ...] = ("ja", "en")
MIN_MEMBERS, MAX_MEMBERS = 2, 9  # the menu is one digit, 1-8 for the others


ENTRY_KEYS = ("name", "phone", "lang", "timezone", "quiet_hours", "pin_hash", "reading")
CIRCLE_KEYS = ("number", "members")


class DirectoryError(ValueError):
    """The directory cannot be used; the message says exactly why. `problems` lists every
    problem found, each naming its circle and entry (one line each)."""

    def __init__(self, problems: str | Sequence[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        if len(self.problems) == 1:
            super().__init__(self.problems[0])
        else:
            super().__init__(f"{len(self.problems)} problems: " + "; ".join(self.problems))


@dataclass(frozen=True)
class Person:
    name: str
    phone: str
    lang: Lang = "ja"
    timezone: str = DEFAULT_TIMEZONE
    quiet_hours: QuietHours | None = None
    pin_hash: str | None = None
    # How the name is spoken (kana, or as it should sound in English): prompts say it, texts
    # show `name`.
    reading: str | None = None

    @property
    def spoken_name(self) -> str:
        """The name as the contact flow's text-to-speech should say it."""
        return self.reading or self.name


@dataclass(frozen=True)
class Circle:
    """People who call each other through one hotline number (None: any number)."""

    number: str | None
    people: tuple[Person, ...]

    def find(self, phone: str) -> Person | None:
        for person in self.people:
            if person.phone == phone:
                return person
        return None

    def others(self, phone: str) -> tuple[Person, ...]:
        return tuple(p for p in self.people if p.phone != phone)


@dataclass(frozen=True)
class Directory:
    circles: tuple[Circle, ...]

    @property
    def people(self) -> tuple[Person, ...]:
        """Everyone once, in file order (a phone in several circles: its first entry)."""
        seen: dict[str, Person] = {}
        for circle in self.circles:
            for person in circle.people:
                seen.setdefault(person.phone, person)
        return tuple(seen.values())

    def circle_for(self, dialled: str) -> Circle | None:
        for circle in self.circles:
            if circle.number is None or circle.number == dialled:
                return circle
        return None


def parse_directory(raw: bytes | str) -> Directory:
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DirectoryError(f"directory is not valid JSON: {exc}") from exc
    problems: list[str] = []
    if isinstance(data, list):
        directory = Directory(circles=(Circle(number=None, people=_people(data, "", problems)),))
    elif isinstance(data, dict) and "circles" in data:
        directory = Directory(circles=_circles(data, problems))
    else:
        raise DirectoryError(
            'directory must be a JSON array of {"name", "phone"} entries, or '
            '{"circles": [{"number", "members"}]}'
        )
    if problems:
        raise DirectoryError(problems)
    return directory


def _unknown_keys(raw: dict[str, Any], known: Sequence[str], where: str) -> str | None:
    """A misspelt key ("quiet-hours") would silently switch a feature off: refuse it."""
    extra = [key for key in raw if key not in known]
    if not extra:
        return None
    hints = [
        f"{key!r} (did you mean {match[0]!r}?)"
        if (match := get_close_matches(key, known, 1))
        else repr(key)
        for key in extra
    ]
    return f"{where}: unknown key(s) {', '.join(hints)}; known: {', '.join(known)}"


def _circles(data: dict[str, Any], problems: list[str]) -> tuple[Circle, ...]:
    extra = sorted(set(data) - {"circles"})
    if extra:
        problems.append(f"directory has unknown key(s) {', '.join(map(repr, extra))}")
    raw_circles = data["circles"]
    if not isinstance(raw_circles, list) or not raw_circles:
        raise DirectoryError([*problems, '"circles" must be a non-empty array'])
    circles: list[Circle] = []
    numbers: dict[str, int] = {}
    for index, raw in enumerate(raw_circles, start=1):
        where = f"circle {index}"
        if not isinstance(raw, dict):
            problems.append(f'{where}: must be an object with "number" and "members"')
            continue
        unknown = _unknown_keys(raw, CIRCLE_KEYS, where)
        if unknown:
            problems.append(unknown)
        number, members = raw.get("number"), raw.get("members")
        if not isinstance(number, str) or not is_e164(number):
            problems.append(f'{where}: "number" is not an E.164 number (like +815012340001)')
        elif number in numbers:
            problems.append(f"{where}: number is also used by circle {numbers[number]}")
        else:
            numbers[number] = index
        if not isinstance(members, list):
            problems.append(f'{where}: "members" must be an array of people')
            continue
        people = _people(members, f"{where}, ", problems)
        circles.append(Circle(number=number if isinstance(number, str) else None, people=people))
    return tuple(circles)


def _people(entries: Sequence[Any], prefix: str, problems: list[str]) -> tuple[Person, ...]:
    people: list[Person] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries, start=1):
        where = f"{prefix}entry {index}"
        if not isinstance(entry, dict):
            problems.append(f'{where}: must be an object with "name" and "phone"')
            continue
        name, phone, lang = entry.get("name"), entry.get("phone"), entry.get("lang", "ja")
        if not isinstance(name, str) or not name.strip():
            problems.append(f'{where}: "name" is missing or empty')
            continue
        where = f"{prefix}entry {index} ({name})"
        found = len(problems)
        unknown = _unknown_keys(entry, ENTRY_KEYS, where)
        if unknown:
            problems.append(unknown)
        if not isinstance(phone, str) or not is_e164(phone):
            # The value itself is left out: error messages end up in logs.
            problems.append(f"{where}: phone is not an E.164 number (like +819011112222)")
        elif phone in seen:
            problems.append(f"{where}: phone is also used by entry {seen[phone]}")
        else:
            seen[phone] = index
        if lang not in LANGS:
            problems.append(f"{where}: lang {lang!r} is not one of {', '.join(LANGS)}")
        options = _options(entry, where, problems)
        if len(problems) == found and isinstance(phone, str) and options is not None:
            people.append(Person(name=name.strip(), phone=phone, lang=lang, **options))
    count = len(entries)
    if count < MIN_MEMBERS:
        problems.append(f"{prefix or 'directory '}needs at least two people, found {count}")
    if count > MAX_MEMBERS:
        problems.append(
            f"{prefix or 'directory '}has {count} people; a circle has at most "
            f"{MAX_MEMBERS} (the menu is one digit)"
        )
    return tuple(people)


def _options(entry: dict[str, Any], where: str, problems: list[str]) -> dict[str, Any] | None:
    if "pin" in entry:
        # A PIN in clear text would sit in S3 and in every copy of the file.
        problems.append(
            f'{where}: "pin" in clear text is not accepted; use `hotline directory set-pin`'
        )
        return None
    timezone = entry.get("timezone", DEFAULT_TIMEZONE)
    if not isinstance(timezone, str):
        problems.append(f'{where}: "timezone" must be a string like Asia/Tokyo')
        return None
    try:
        zone(timezone)
        quiet = entry.get("quiet_hours")
        quiet_hours = None if quiet is None else QuietHours.parse(quiet, timezone)
    except QuietHoursError as exc:
        problems.append(f"{where}: {exc}")
        return None
    reading = entry.get("reading")
    if "reading" in entry and (not isinstance(reading, str) or not reading.strip()):
        problems.append(f'{where}: "reading" must be non-empty text (the name as spoken)')
        return None
    pin_hash = entry.get("pin_hash")
    if pin_hash is not None:
        try:
            check_pin_hash(pin_hash)
        except PinHashError as exc:
            problems.append(f"{where}: {exc}")
            return None
    return {
        "timezone": timezone,
        "quiet_hours": quiet_hours,
        "pin_hash": pin_hash,
        "reading": reading.strip() if reading is not None else None,
    }
