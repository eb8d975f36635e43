"""What people are texted, and whether it is still right to text them: the receiver's
invitation, the caller's outcome (and a late "free now"), both people's numbers in a mutual call.

Each consumer decides when it acts, from the request's current state and the clock, whether
its text is still right: EventBridge delivers late, twice and in any order, Lambda retries a
minute and three minutes later, and an operator may re-drive a dead letter days later."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from hotline_core import line_messages, messages
from hotline_core.events import (
    Accepted,
    CallRequested,
    Declined,
    MutualCallMatched,
    Party,
    TimedOut,
)
from hotline_core.outcomes import OutcomeEvent
from hotline_core.ports import OnceOnlySender, Preemption, RequestStore
from hotline_core.requests import TOLD_CAN_TALK, CallRequest, hash_token, token_of

InviteSkip = Literal["gone", "settled", "window_closed", "quiet_hours"]


def invitation_blocked(
    request: CallRequest | None, receiver: Party, now: datetime
) -> InviteSkip | None:
    """Why an invitation must not go out now (None: it may)."""
    if request is None:
        return "gone"  # past its retention: a re-drive long after
    if request.settled:
        return "settled"
    if now >= request.answer_by:
        return "window_closed"
    if receiver.quiet_hours is not None:
        # Imported here: two consumers import this module, and only a receiver with quiet
        # hours needs them (and zoneinfo) on a cold start.
        from hotline_core.quiet import DEFAULT_TIMEZONE, QuietHours

        quiet = QuietHours.parse(receiver.quiet_hours, receiver.timezone or DEFAULT_TIMEZONE)
        if quiet.ends_at(now) is not None:
            return "quiet_hours"
    return None


def invite_receiver(
    event: CallRequested, sms: OnceOnlySender, store: RequestStore, now: datetime
) -> InviteSkip | None:
    """Invite the receiver (the link by SMS, two buttons by LINE), once, while the request
    still waits for them; why not, otherwise. Decided once the invitation is claimed (one
    read), so a delivery racing an answer or the time-out cannot slip through, and the
    decision is final for the request."""
    blocked: InviteSkip | None = None

    def still_right() -> bool:
        nonlocal blocked
        request = store.get_by_link(hash_token(token_of(event.link)))
        blocked = invitation_blocked(request, event.receiver, now)
        return blocked is None

    lang, caller = event.receiver.lang, event.caller.name
    body = messages.text("invite", lang, caller=caller, link=event.link)
    # By LINE (where the receiver linked it): the name and two buttons, no link.
    buttons = line_messages.invitation(caller, lang, token_of(event.link))
    sms.send_once(
        f"invite#{event.request_id}",
        event.receiver.phone,
        body,
        line=buttons,
        still_right=still_right,
    )
    return blocked


# The outcomes the caller alone is told of; in a mutual call both people are texted.
CallerOutcome = Accepted | Declined | TimedOut
MessageKind = Literal["outcome", "late"]


def caller_message(event: CallerOutcome) -> tuple[MessageKind, str]:
    """The one text the caller gets for this outcome, and which of their two possible
    messages it is: the outcome, or the late "free now" after a time-out."""
    lang = event.caller.lang
    receiver = event.receiver.name
    if isinstance(event, Accepted):
        key = "accepted_late" if event.late else "accepted"
        body = messages.text(key, lang, receiver=receiver, phone=event.receiver.phone)
        return ("late" if event.late else "outcome"), body
    key = "declined" if isinstance(event, Declined) else "timed_out"
    return "outcome", messages.text(key, lang, receiver=receiver)


class OutcomeInFlight(RuntimeError):
    """The caller's "can't talk" is being sent right now: "free now" must wait for it, so this
    invocation fails and Lambda's retry a minute later sends it after."""


def tell_caller(event: OutcomeEvent, sms: OnceOnlySender, store: RequestStore) -> None:
    """One key per kind: whatever races happened, the caller gets one outcome and at most
    one late "free now", and never a "can't talk" after any text saying they can talk."""
    if isinstance(event, MutualCallMatched):
        tell_both(event, sms)
        return
    kind, body = caller_message(event)
    outcome_key = f"outcome#{event.request_id}"
    if isinstance(event, TimedOut):
        # A late yes may have come in since (and may arrive first): decided once claimed, so
        # a "free now" that follows finds this claim settled, or in flight, and waits.
        def still_timed_out() -> bool:
            current = store.get(event.request_id)
            return current is not None and current.state not in TOLD_CAN_TALK

        sms.send_once(
            outcome_key, event.caller.phone, body, still_right=still_timed_out, mark_ended=True
        )
        return
    # "free now" settles the caller's outcome: a "can't talk" not yet sent never will be;
    # one being sent this moment goes first.
    if kind == "late" and sms.preempt(outcome_key) is Preemption.IN_FLIGHT:
        raise OutcomeInFlight(f"{outcome_key} is being sent: the late text waits for it")
    sms.send_once(f"{kind}#{event.request_id}", event.caller.phone, body)


def tell_both(event: MutualCallMatched, sms: OnceOnlySender) -> None:
    """Both want to talk: each gets the other's number. The first caller's text is their
    one outcome (same key as any other outcome, so they never get two); the one who called
    back is told the other will call, so they do not ring each other at the same moment."""
    first, second = event.caller, event.receiver
    sms.send_once(
        f"outcome#{event.request_id}",
        first.phone,
        messages.text("mutual_first", first.lang, other=second.name, phone=second.phone),
    )
    sms.send_once(
        f"mutual#{event.request_id}",
        second.phone,
        messages.text("mutual_second", second.lang, other=first.name, phone=first.phone),
    )
