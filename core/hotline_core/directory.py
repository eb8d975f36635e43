"""The directory of people (`phonenumber.json`): parsing and validation.

Two formats. The original: a JSON array of {"name", "phone"} entries (optional "lang",
"quiet_hours", "timezone", "pin_hash"), one circle answering whatever number was dialled.
Several hotlines: {"circles": [{"number": "+81…", "members": [...]}]}, where the dialled
number picks the circle. A bad directory is an error that names the problem, never a
half-working hotline.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from hotline_core.phone import is_e164
from hotline_core.pins import PinHashError, check_pin_hash
from hotline_core.quiet import DEFAULT_TIMEZONE, QuietHours, QuietHoursError, zone

Lang = Literal["ja", "en"]
LANGS: tuple[Lang, ...] = ("ja", "en")
MIN_MEMBERS, MAX_MEMBERS = 2, 9  # the menu is one digit, 1-8 for the others


class DirectoryError(ValueError):
    """The directory cannot be used; the message says exactly why."""


@dataclass(frozen=True)
class Person:
    name: str
    phone: str
    lang: Lang = "ja"
    timezone: str = DEFAULT_TIMEZONE
    quiet_hours: QuietHours | None = None
    pin_hash: str | None = None


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

    def find(self, phone: str) -> Person | None:
        return next((p for p in self.people if p.phone == phone), None)

    def others(self, phone: str) -> tuple[Person, ...]:
        return tuple(p for p in self.people if p.phone != phone)


def parse_directory(raw: bytes | str) -> Directory:
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DirectoryError(f"directory is not valid JSON: {exc}") from exc
    if isinstance(data, list):
        return Directory(circles=(Circle(number=None, people=_people(data, "")),))
    if isinstance(data, dict) and "circles" in data:
        return Directory(circles=_circles(data))
    raise DirectoryError(
        'directory must be a JSON array of {"name", "phone"} entries, or '
        '{"circles": [{"number", "members"}]}'
    )


def _circles(data: dict[str, Any]) -> tuple[Circle, ...]:
    extra = sorted(set(data) - {"circles"})
    if extra:
        raise DirectoryError(f"directory has unknown key(s) {', '.join(map(repr, extra))}")
    raw_circles = data["circles"]
    if not isinstance(raw_circles, list) or not raw_circles:
        raise DirectoryError('"circles" must be a non-empty array')
    circles: list[Circle] = []
    numbers: dict[str, int] = {}
    for index, raw in enumerate(raw_circles, start=1):
        where = f"circle {index}"
        if not isinstance(raw, dict):
            raise DirectoryError(f'{where}: must be an object with "number" and "members"')
        number, members = raw.get("number"), raw.get("members")
        if not isinstance(number, str) or not is_e164(number):
            raise DirectoryError(f'{where}: "number" is not an E.164 number (like +815012340001)')
        if number in numbers:
            raise DirectoryError(f"{where}: number is also used by circle {numbers[number]}")
        if not isinstance(members, list):
            raise DirectoryError(f'{where}: "members" must be an array of people')
        numbers[number] = index
        circles.append(Circle(number=number, people=_people(members, f"{where}, ")))
    return tuple(circles)


def _people(entries: Sequence[Any], prefix: str) -> tuple[Person, ...]:
    people: list[Person] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries, start=1):
        where = f"{prefix}entry {index}"
        if not isinstance(entry, dict):
            raise DirectoryError(f'{where}: must be an object with "name" and "phone"')
        name, phone, lang = entry.get("name"), entry.get("phone"), entry.get("lang", "ja")
        if not isinstance(name, str) or not name.strip():
            raise DirectoryError(f'{where}: "name" is missing or empty')
        where = f"{prefix}entry {index} ({name})"
        if not isinstance(phone, str) or not is_e164(phone):
            # The value itself is left out: error messages end up in logs.
            raise DirectoryError(f"{where}: phone is not an E.164 number (like +819011112222)")
        if phone in seen:
            raise DirectoryError(f"{where}: phone is also used by entry {seen[phone]}")
        if lang not in LANGS:
            raise DirectoryError(f"{where}: lang {lang!r} is not one of {', '.join(LANGS)}")
        seen[phone] = index
        people.append(Person(name=name.strip(), phone=phone, lang=lang, **_options(entry, where)))
    if len(people) < MIN_MEMBERS:
        raise DirectoryError(
            f"{prefix or 'directory '}needs at least two people, found {len(people)}"
        )
    if len(people) > MAX_MEMBERS:
        raise DirectoryError(
            f"{prefix or 'directory '}has {len(people)} people; a circle has at most "
            f"{MAX_MEMBERS} (the menu is one digit)"
        )
    return tuple(people)


def _options(entry: dict[str, Any], where: str) -> dict[str, Any]:
    if "pin" in entry:
        # A PIN in clear text would sit in S3 and in every copy of the file.
        raise DirectoryError(
            f'{where}: "pin" in clear text is not accepted; use `hotline directory set-pin`'
        )
    timezone = entry.get("timezone", DEFAULT_TIMEZONE)
    if not isinstance(timezone, str):
        raise DirectoryError(f'{where}: "timezone" must be a string like Asia/Tokyo')
    try:
        zone(timezone)
        quiet = entry.get("quiet_hours")
        quiet_hours = None if quiet is None else QuietHours.parse(quiet, timezone)
    except QuietHoursError as exc:
        raise DirectoryError(f"{where}: {exc}") from exc
    pin_hash = entry.get("pin_hash")
    if pin_hash is not None:
        try:
            check_pin_hash(pin_hash)
        except PinHashError as exc:
            raise DirectoryError(f"{where}: {exc}") from exc
    return {"timezone": timezone, "quiet_hours": quiet_hours, "pin_hash": pin_hash}
