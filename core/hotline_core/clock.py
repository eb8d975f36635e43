"""The one source of "now" for the handlers. On Lambda it is the system clock; the local
runtime swaps it for its own clock so `POST /_local/clock/advance` moves time for everyone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime


def _system() -> datetime:
    return datetime.now(UTC)


source: Callable[[], datetime] = _system


def now() -> datetime:
    return source()


def use(new_source: Callable[[], datetime] | None) -> None:
    global source
    source = new_source or _system
