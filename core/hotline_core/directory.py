"""The directory of people (`phonenumber.json`): parsing and validation.

The file is the original format, a JSON array of {"name", "phone"} with optional extra fields.
A bad directory is an error that names the problem, never a half-working hotline.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from hotline_core.phone import is_e164

Lang = Literal["ja", "en"]
LANGS: tuple[Lang, ...] = ("ja", "en")


class DirectoryError(ValueError):
    """The directory cannot be used; the message says exactly why."""


@dataclass(frozen=True)
class Person:
    name: str
    phone: str
    lang: Lang = "ja"


@dataclass(frozen=True)
class Directory:
    people: tuple[Person, ...]

    def find(self, phone: str) -> Person | None:
        for person in self.people:
            if person.phone == phone:
                return person
        return None

    def others(self, phone: str) -> tuple[Person, ...]:
        return tuple(p for p in self.people if p.phone != phone)


def parse_directory(raw: bytes | str) -> Directory:
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DirectoryError(f"directory is not valid JSON: {exc}") from exc
    if not isinstance(data, list):
        raise DirectoryError('directory must be a JSON array of {"name", "phone"} entries')
    return Directory(people=_people(data))


def _people(entries: Sequence[Any]) -> tuple[Person, ...]:
    people: list[Person] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries, start=1):
        where = f"entry {index}"
        if not isinstance(entry, dict):
            raise DirectoryError(f'{where}: must be an object with "name" and "phone"')
        name, phone, lang = entry.get("name"), entry.get("phone"), entry.get("lang", "ja")
        if not isinstance(name, str) or not name.strip():
            raise DirectoryError(f'{where}: "name" is missing or empty')
        where = f"entry {index} ({name})"
        if not isinstance(phone, str) or not is_e164(phone):
            # The value itself is left out: error messages end up in logs.
            raise DirectoryError(f"{where}: phone is not an E.164 number (like +819011112222)")
        if phone in seen:
            raise DirectoryError(f"{where}: phone is also used by entry {seen[phone]}")
        if lang not in LANGS:
            raise DirectoryError(f"{where}: lang {lang!r} is not one of {', '.join(LANGS)}")
        seen[phone] = index
        people.append(Person(name=name.strip(), phone=phone, lang=lang))
    if len(people) < 2:
        raise DirectoryError(f"directory needs at least two people, found {len(people)}")
    return tuple(people)
