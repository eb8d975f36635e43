"""The hotline's use cases, one function per stimulus. No AWS here: everything goes through
the ports, so the same code runs on Lambda, in the local runtime and in unit tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from hotline_core import messages
from hotline_core.directory import Directory, Person
from hotline_core.events import Accepted, CallRequested, Declined, Party, TimedOut
from hotline_core.pages import Page, answer_page, error_page
from hotline_core.ports import (
    AnswerTimer,
    EventPublisher,
    LinkExpired,
    OnceOnlySender,
    RequestStore,
)
from hotline_core.requests import (
    CallRequest,
    Outcome,
    Reason,
    Status,
    hash_token,
    looks_like_token,
    new_link,
    timer_fire_at,
)


@dataclass(frozen=True)
class CallAnswer:
    """What the contact flow gets back: a flat string map (Connect's STRING_MAP)."""

    registered: bool
    prompt: str
    receiver_name: str = ""
    lang: str = "ja"
    created: bool = False

    def as_connect_map(self) -> dict[str, str]:
        return {
            "registered": "true" if self.registered else "false",
            "prompt": self.prompt,
            "receiver_name": self.receiver_name,
            "lang": self.lang,
        }


def choose_receiver(directory: Directory, caller: Person) -> Person:
    others = directory.others(caller.phone)
    # With two people there is only one possible receiver.
    return others[0]


def request_call(
    *,
    directory: Directory,
    caller_phone: str,
    hotline_number: str,
    request_id: str,
    now: datetime,
    answer_window: timedelta,
    link_base_url: str,
    store: RequestStore,
    bus: EventPublisher,
) -> CallAnswer:
    caller = directory.find(caller_phone)
    if caller is None:
        return CallAnswer(registered=False, prompt=messages.text("prompt_unregistered", "ja"))
    receiver = choose_receiver(directory, caller)
    answer = CallAnswer(
        registered=True,
        prompt=messages.text("prompt_asking", caller.lang, receiver=receiver.name),
        receiver_name=receiver.name,
        lang=caller.lang,
    )
    link = new_link(now)
    request = CallRequest(
        request_id=request_id,
        caller=Party.of(caller),
        receiver=Party.of(receiver),
        hotline_number=hotline_number,
        requested_at=now,
        answer_by=now + answer_window,
    )
    if not store.create(request, link):
        # Connect invoked us again for the same contact: the request and its event exist.
        return answer
    event = CallRequested(
        request_id=request_id,
        caller=request.caller,
        receiver=request.receiver,
        hotline_number=hotline_number,
        requested_at=now,
        answer_by=request.answer_by,
        link=f"{link_base_url.rstrip('/')}/a/{link.token}",
    )
    try:
        bus.publish(event, correlation_id=request_id)
    except Exception:
        # Without CallRequested nobody would be invited and no timer would run: undo the
        # request so the flow's error branch tells the caller at once to try again.
        store.discard(request, link)
        raise
    return CallAnswer(**{**answer.__dict__, "created": True})


def show_answer_page(*, token: str | None, store: RequestStore, now: datetime) -> Page:
    found = _find(token, store, now)
    if isinstance(found, Page):
        return found
    return answer_page(found)


def answer(
    *,
    token: str | None,
    answer: str | None,
    store: RequestStore,
    bus: EventPublisher,
    now: datetime,
) -> Page:
    found = _find(token, store, now)
    if isinstance(found, Page):
        return found
    request = found
    if answer not in ("yes", "no"):
        return error_page(400, "bad_answer", request.receiver.lang)
    transition = (
        store.accept(request.request_id, now)
        if answer == "yes"
        else store.decline(request.request_id, now)
    )
    current = transition.request or request
    if transition.applied or _settled_by(current, answer):
        # A repeat of the same answer announces it again: if the first publish failed, this
        # completes the request; if it did not, consumers are idempotent and nothing is sent.
        announce(current, bus)
    # A lost race or a different later answer: show how things stand, change nothing.
    return answer_page(current)


def _settled_by(request: CallRequest, answer: str) -> bool:
    if answer == "yes":
        return request.status is Status.ACCEPTED
    return request.status is Status.REFUSED and request.reason is Reason.DECLINED


def outcome_event(request: CallRequest) -> Accepted | Declined | TimedOut | None:
    """The event that announces how `request` ended; None while it is still open."""
    at = request.answered_at or request.answer_by
    common = {
        "request_id": request.request_id,
        "caller": request.caller,
        "receiver": request.receiver,
    }
    if request.status is Status.ACCEPTED:
        return Accepted(**common, accepted_at=at, late=request.late)
    if request.status is Status.REFUSED and request.reason is Reason.DECLINED:
        return Declined(**common, declined_at=at)
    if request.status is Status.REFUSED:
        return TimedOut(**common, timed_out_at=at)
    return None


def announce(request: CallRequest, bus: EventPublisher) -> None:
    event = outcome_event(request)
    if event is not None:
        bus.publish(event, correlation_id=request.request_id)


def _find(token: str | None, store: RequestStore, now: datetime) -> CallRequest | Page:
    if not token or not looks_like_token(token):
        return error_page(404, "not_found")
    try:
        request = store.find_by_link(hash_token(token), now)
    except LinkExpired:
        return error_page(410, "expired")
    if request is None:
        return error_page(404, "not_found")
    return request


def time_out(
    *, request_id: str, store: RequestStore, bus: EventPublisher, now: datetime
) -> Outcome:
    transition = store.time_out(request_id, now)
    if transition.request is not None:
        # Applied: announce the time-out. Already settled: the timer only fires after an
        # answer when announcing that answer failed (a published Accepted or Declined cancels
        # the timer), so announce the answer again; consumers make a repeat harmless.
        announce(transition.request, bus)
    return transition.outcome


# Consumers -------------------------------------------------------------------------------


def invite_receiver(event: CallRequested, sms: OnceOnlySender) -> None:
    body = messages.text("invite", event.receiver.lang, caller=event.caller.name, link=event.link)
    sms.send_once(f"invite#{event.request_id}", event.receiver.phone, body)


def start_timer(event: CallRequested, timer: AnswerTimer) -> bool:
    return timer.start(event.request_id, timer_fire_at(event.answer_by))


def cancel_timer(event: Accepted | Declined, timer: AnswerTimer) -> bool:
    return timer.cancel(event.request_id)


OutcomeEvent = Accepted | Declined | TimedOut
MessageKind = Literal["outcome", "late"]


def caller_message(event: OutcomeEvent) -> tuple[MessageKind, str]:
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


def tell_caller(event: OutcomeEvent, sms: OnceOnlySender) -> None:
    # One key per kind: whatever races happened, the caller gets one outcome and at most
    # one late "free now".
    kind, body = caller_message(event)
    sms.send_once(f"{kind}#{event.request_id}", event.caller.phone, body)


__all__ = [
    "CallAnswer",
    "Reason",
    "answer",
    "caller_message",
    "cancel_timer",
    "invite_receiver",
    "request_call",
    "show_answer_page",
    "start_timer",
    "tell_caller",
    "time_out",
]
