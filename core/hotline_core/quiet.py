"""Quiet hours: a daily span in the receiver's own time zone (`"22:00-07:00"` crosses
midnight) when the hotline texts them nothing, and when that span ends."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIMEZONE = "Asia/Tokyo"
# Files in a zoneinfo directory that are not places: the machine's own zone (differs between
# a laptop and Lambda), a placeholder, and a rules template.
NOT_PLACES = ("localtime", "Factory", "posixrules")
_SPAN = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-3]):([0-5][0-9])$")


class QuietHoursError(ValueError):
    """A quiet-hours span or time zone that cannot be used; the message says why."""


def zone(name: str) -> ZoneInfo:
    if name in NOT_PLACES or name.startswith(("posix/", "right/")):
        raise QuietHoursError(
            f"time zone {name!r} is not a place (use an IANA name like Asia/Tokyo)"
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise QuietHoursError(
            f"unknown time zone {name!r} (use an IANA name like Asia/Tokyo)"
        ) from exc


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time
    timezone: str = DEFAULT_TIMEZONE

    @classmethod
    def parse(cls, span: str, timezone: str = DEFAULT_TIMEZONE) -> QuietHours:
        match = _SPAN.fullmatch(span) if isinstance(span, str) else None
        if match is None:
            raise QuietHoursError(f"quiet_hours {span!r} is not HH:MM-HH:MM (like 22:00-07:00)")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if (h1, m1) == (h2, m2):
            raise QuietHoursError(f"quiet_hours {span!r} starts and ends at the same time")
        zone(timezone)
        return cls(start=time(h1, m1), end=time(h2, m2), timezone=timezone)

    @property
    def span(self) -> str:
        """As written in the directory: "22:00-07:00"."""
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def ends_at(self, now: datetime) -> datetime | None:
        """When the quiet hours that `now` falls in end (aware, in the zone); None when `now`
        is outside them."""
        tz = zone(self.timezone)
        local = now.astimezone(tz)
        clock = local.time().replace(tzinfo=None)
        if self.start < self.end:
            inside = self.start <= clock < self.end
        else:  # crosses midnight
            inside = clock >= self.start or clock < self.end
        if not inside:
            return None
        day = local.date() if clock < self.end else local.date() + timedelta(days=1)
        end = _wall_clock_reaches(day, self.end, tz)
        if end <= now:
            # Clocks went back and `now` is in the repeated hour: the end is the second time
            # the wall clock shows it.
            end = end.replace(fold=1)
        return end


def spoken_time(moment: datetime, lang: str) -> str:
    """A time of day as a person says it: "7時" / "7時30分", "7 AM" / "7:30 PM"."""
    if lang == "ja":
        return f"{moment.hour}時" + (f"{moment.minute}分" if moment.minute else "")
    hour = moment.hour % 12 or 12
    suffix = "AM" if moment.hour < 12 else "PM"
    return f"{hour}:{moment.minute:02d} {suffix}" if moment.minute else f"{hour} {suffix}"


def _wall_clock_reaches(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The first moment the wall clock in `tz` shows `at` or later on `day`: `at` itself, or,
    when clocks spring forward over it, the moment of the jump (02:30 never happens; quiet
    hours ending then end at 03:00, the first wall time after it)."""
    wall = datetime.combine(day, at)
    moment = wall.replace(tzinfo=tz)
    if moment.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall:
        return moment
    # In the gap: fold=1 reads `at` with the offset after the jump, fold=0 with the one
    # before; the jump lies between the two. Transitions fall on whole minutes.
    before = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    after = moment.astimezone(UTC)
    while after - before > timedelta(minutes=1):
        middle = before + (after - before) / 2
        if middle.astimezone(tz).replace(tzinfo=None) >= wall:
            after = middle
        else:
            before = middle
    jump = after.replace(second=0, microsecond=0)
    if jump.astimezone(tz).replace(tzinfo=None) < wall:
        jump += timedelta(minutes=1)
    return jump.astimezone(tz)
