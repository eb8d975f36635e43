"""The end of the answer window: its one-shot timer, started when a call asks and cancelled
when the receiver answers, and the time-out it brings when it fires first."""

from __future__ import annotations

from datetime import datetime

from hotline_core.events import Accepted, CallRequested, Declined, MutualCallMatched
from hotline_core.outcomes import announce
from hotline_core.ports import AnswerTimer, EventPublisher, RequestStore
from hotline_core.requests import Outcome, Step, hash_token, timer_fire_at, token_of


def time_out(
    *,
    request_id: str,
    store: RequestStore,
    bus: EventPublisher,
    now: datetime,
    link_hash: str | None = None,
) -> Outcome:
    transition = store.step(Step.TIME_OUT, now, request_id=request_id, link_hash=link_hash)
    if transition.request is not None:
        # Applied: announce the time-out. Already settled: the timer only fires after an
        # answer when announcing that answer failed (a published Accepted or Declined cancels
        # the timer), so announce the answer again; consumers make a repeat harmless.
        announce(transition.request, bus)
    return transition.outcome


def start_timer(event: CallRequested, timer: AnswerTimer, now: datetime) -> bool:
    # The timer carries where the request is stored, so firing costs one write, no lookup.
    # Never a moment already past: a late start (a retry, a re-drive) fires at the next minute.
    link_hash = hash_token(token_of(event.link))
    return timer.start(event.request_id, timer_fire_at(event.answer_by, now), link_hash=link_hash)


def cancel_timer(event: Accepted | Declined | MutualCallMatched, timer: AnswerTimer) -> bool:
    return timer.cancel(event.request_id)
