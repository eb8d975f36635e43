"""The second line's use cases: look a caller up as a member, and turn a PIN typed on the
keypad into `BenefitRequested`, with a per-phone lockout against guessing. No AWS here."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from hotline_core import messages
from hotline_core.events import BenefitRequested
from hotline_core.pins import is_pin_shaped
from hotline_core.ports import EventPublisher, OnceOnlySender

MAX_WRONG_PINS = 5
FAILURE_WINDOW = timedelta(hours=1)
LOCKOUT = timedelta(hours=1)
MAX_PIN_TRIES = 3  # PIN entries per call; the lockout spans calls
NOT_A_MEMBER = "-1"  # what the original design's flow compares against
# DTMF keys are ASCII: str.isdigit() would also take "²" (and int() then fails on it).
_TRIES = re.compile(r"[0-9]{1,2}")


class Members(Protocol):
    def member_id(self, phone: str) -> str | None: ...


class Benefits(Protocol):
    def campaign_url(self, pin: str) -> str | None: ...


@dataclass(frozen=True)
class Failure:
    """A wrong PIN as recorded: how many fell within the last window (this one included, at
    most the limit), and whether this one locked the phone (exactly one concurrent failure
    gets `locked_now`)."""

    failures: int
    locked_now: bool


class AttemptGuard(Protocol):
    def locked_until(self, phone: str, now: datetime) -> datetime | None:
        """The end of the phone's lockout when it is locked at `now`, else None."""

    def record_failure(
        self, phone: str, now: datetime, *, window: timedelta, limit: int, lockout: timedelta
    ) -> Failure:
        """Record one wrong PIN at `now`. A sliding window, not a fixed one: when this is the
        `limit`-th wrong PIN less than `window` after the earliest of them, the phone is
        locked for `lockout` from `now`, however the earlier failures were spread."""


class PinOutcome(StrEnum):
    GRANTED = "granted"
    NOT_A_MEMBER = "not_a_member"
    MALFORMED = "malformed"  # not 4-8 digits: fails without a lookup, no lockout count
    LOCKED = "locked"  # already locked: fails without a lookup, whatever was typed
    WRONG = "wrong"
    WRONG_AND_LOCKED = "wrong_and_locked"  # this wrong PIN started the lockout


@dataclass(frozen=True)
class PinAnswer:
    outcome: PinOutcome
    member_id: str | None = None
    tries: int | None = None  # this call's failed entries after this one; None: not counted

    @property
    def granted(self) -> bool:
        return self.outcome is PinOutcome.GRANTED

    @property
    def counts_as_failure(self) -> bool:
        """A PIN that did not unlock anything (the PinFailures metric); a locked phone's
        attempts are counted apart (LockedAttempts), as are lockouts (Lockouts)."""
        return self.outcome in (PinOutcome.MALFORMED, PinOutcome.WRONG, PinOutcome.WRONG_AND_LOCKED)

    def as_connect_map(self) -> dict[str, str]:
        """The original contract; a flow that counts its tries also gets the count back and
        whether to ask again, so the flow needs no arithmetic and the limit lives here."""
        answer = {"result": "Success" if self.granted else "Fail"}
        if self.tries is not None:
            again = not self.granted and self.tries < MAX_PIN_TRIES
            answer |= {"pinTries": str(self.tries), "askAgain": "true" if again else "false"}
        return answer


def pin_tries(parameters: Mapping[str, str]) -> int | None:
    """The `pinTries` the flow passes back (this call's failed PIN entries so far), or None
    when it passes none: the original contract, answered exactly as before."""
    tries = parameters.get("pinTries")
    if tries is None:
        return None
    return int(tries) if _TRIES.fullmatch(tries) else 0


def member_answer(phone: str, members: Members, tries: int | None = None) -> dict[str, str]:
    """`getMemberId`: the member id, or "-1" for a phone that is not registered; with the
    count the flow starts its PIN loop from, when it passes one. A withheld number (`phone`
    "") is "-1" as in the original contract, without a lookup, marked `withheld` so the flow
    can ask for a call with the number shown."""
    if not phone:
        return {"memberId": NOT_A_MEMBER, "withheld": "true"}
    answer = {"memberId": members.member_id(phone) or NOT_A_MEMBER}
    if tries is not None:
        answer["pinTries"] = str(tries)
    return answer


def request_benefit(
    *,
    phone: str,
    pin: str,
    contact_id: str,
    now: datetime,
    members: Members,
    benefits: Benefits,
    guard: AttemptGuard,
    bus: EventPublisher,
    tries: int | None = None,
) -> PinAnswer:
    """`sendSms`: a member's right PIN publishes `BenefitRequested`; everything else fails.

    Cheap refusals come first so that neither a locked phone nor a malformed PIN ever reaches
    the benefits table (a locked phone first: whatever it types is a locked attempt). A right
    PIN does not reset the count: PINs are shared campaign codes, so a member who knows one
    could otherwise interleave it to guess others without limit.

    With `tries` (the flow's count so far), every entry that fails costs one try, whatever
    failed: a wrong PIN, a short one, a timeout ("Timeout" is not a PIN) or a locked phone.
    """
    answer = _check_pin(phone, pin, contact_id, now, members, benefits, guard, bus)
    if tries is None:
        return answer
    return replace(answer, tries=tries if answer.granted else tries + 1)


def _check_pin(
    phone: str,
    pin: str,
    contact_id: str,
    now: datetime,
    members: Members,
    benefits: Benefits,
    guard: AttemptGuard,
    bus: EventPublisher,
) -> PinAnswer:
    if not phone:  # withheld: nobody to look up
        return PinAnswer(PinOutcome.NOT_A_MEMBER)
    member_id = members.member_id(phone)
    if member_id is None:
        return PinAnswer(PinOutcome.NOT_A_MEMBER)
    if guard.locked_until(phone, now) is not None:
        return PinAnswer(PinOutcome.LOCKED, member_id)
    if not is_pin_shaped(pin):
        return PinAnswer(PinOutcome.MALFORMED, member_id)
    url = benefits.campaign_url(pin)
    if url is None:
        failure = guard.record_failure(
            phone, now, window=FAILURE_WINDOW, limit=MAX_WRONG_PINS, lockout=LOCKOUT
        )
        outcome = PinOutcome.WRONG_AND_LOCKED if failure.locked_now else PinOutcome.WRONG
        return PinAnswer(outcome, member_id)
    bus.publish(
        BenefitRequested(member_id=member_id, phone=phone, campaign_url=url, requested_at=now),
        correlation_id=contact_id,
    )
    return PinAnswer(PinOutcome.GRANTED, member_id)


def text_member(event: BenefitRequested, sms: OnceOnlySender) -> None:
    """Text the campaign URL as plain text, once per request. The key is what identifies one
    request across EventBridge redeliveries and Lambda retries (the same payload every time);
    two calls that both succeed differ in `requested_at`, so the member gets both texts."""
    key = f"benefit#{event.member_id}#{event.requested_at.isoformat()}#{event.campaign_url}"
    sms.send_once(key, event.phone, messages.text("benefit", "ja", url=event.campaign_url))
