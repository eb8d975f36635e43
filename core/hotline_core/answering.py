"""The receiver's side, through the link in their SMS: the answer page, and a yes or a no
pressed on it (one conditional write, then the outcome announced)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from hotline_core.outcomes import announce
from hotline_core.pages import Page, answer_page, error_page
from hotline_core.ports import EventPublisher, LinkExpired, RequestStore
from hotline_core.requests import (
    MOVES,
    CallRequest,
    Outcome,
    Step,
    Transition,
    hash_token,
    looks_like_token,
)


def show_answer_page(*, token: str | None, store: RequestStore, now: datetime) -> Page:
    found = _find(token, store, now)
    if isinstance(found, Page):
        return found
    return answer_page(found)


@dataclass(frozen=True)
class Answered:
    """What an answer through the link did: the page to show, and the request as this answer
    settled it (None when it changed nothing: a repeat, a lost race, a bad or late form)."""

    page: Page
    settled: CallRequest | None = None


def answer(
    *,
    token: str | None,
    answer: str | None,
    store: RequestStore,
    bus: EventPublisher,
    now: datetime,
) -> Answered:
    if answer not in ("yes", "no"):
        # Read the request only to say it in the receiver's language.
        found = _find(token, store, now)
        if isinstance(found, Page):
            return Answered(found)
        return Answered(error_page(400, "bad_answer", found.receiver.lang))
    if not token or not looks_like_token(token):
        return Answered(error_page(404, "not_found"))
    said: Literal["yes", "no"] = "yes" if answer == "yes" else "no"
    transition = settle(hash_token(token), said, store=store, bus=bus, now=now)
    if transition.outcome is Outcome.NOT_FOUND or transition.request is None:
        return Answered(error_page(404, "not_found"))
    if transition.outcome is Outcome.LINK_EXPIRED:
        return Answered(error_page(410, "expired", transition.request.receiver.lang))
    # A lost race or a different later answer: show how things stand, change nothing.
    current = transition.request
    return Answered(answer_page(current), current if transition.applied else None)


def settle(
    link_hash: str,
    answer: Literal["yes", "no"],
    *,
    store: RequestStore,
    bus: EventPublisher,
    now: datetime,
) -> Transition:
    """A yes or a no, whatever it came through (the link's page, a LINE button): one
    conditional write, no read first (it fails for a missing or expired link), then the
    outcome announced. Raises PublishFailed when the answer is stored but not announced."""
    step = Step.ACCEPT if answer == "yes" else Step.DECLINE
    transition = store.step(step, now, link_hash=link_hash, via_link=True)
    current = transition.request
    if current is None or transition.outcome in (Outcome.NOT_FOUND, Outcome.LINK_EXPIRED):
        return transition
    if transition.applied or settled_by(current, step):
        # A repeat of the same answer announces it again: if the first publish failed, this
        # completes the request; if it did not, consumers are idempotent and nothing is sent.
        announce(current, bus)
    return transition


def settled_by(request: CallRequest, step: Step) -> bool:
    """Whether `request` is where `step` would have taken it (a repeat of the answer)."""
    return any(request.state is target for _, target in MOVES[step])


def _find(token: str | None, store: RequestStore, now: datetime) -> CallRequest | Page:
    if not token or not looks_like_token(token):
        return error_page(404, "not_found")
    try:
        request = store.find_by_link(hash_token(token), now)
    except LinkExpired as expired:
        return error_page(410, "expired", expired.lang)
    if request is None:
        return error_page(404, "not_found")
    return request
