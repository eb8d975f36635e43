"""What the hotline's LINE account does with what a LINE user sends it (the webhook's events,
signature already verified): link a phone by its one-time code, unlink on unfollow, and take
a tapped "Yes" / "Not now" as the answer, through the same conditional write and the same
events as the link's page (`answering.settle`). Each returns the reply to send (free), or None.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from hotline_core.answering import settle
from hotline_core.line_messages import both_languages, parse_postback, reply_text
from hotline_core.requests import Outcome, State, hash_token, looks_like_token

if TYPE_CHECKING:
    from hotline_core.adapters.line_links import LineLinks
    from hotline_core.ports import EventPublisher, RequestStore

Message = dict[str, Any]
# What happened, for the log line and the metrics (never who, never the code or the token).
Result = Literal[
    "help",
    "linked",
    "wrong_code",
    "too_many_codes",
    "unlinked",
    "accepted",
    "accepted_late",
    "declined",
    "mutual",
    "already",
    "already_told",
    "too_late",
    "not_theirs",
    "invalid",
    "ignored",
]


@dataclass(frozen=True)
class Handled:
    result: Result
    reply: Message | None = None
    # For the answer-time metric: seconds from the call to the tap that settled it.
    answer_seconds: float | None = None


def on_follow(user_id: str, links: LineLinks) -> Handled:
    return Handled("help", both_languages("follow"))


def on_unfollow(user_id: str, links: LineLinks) -> Handled:
    links.unlink_user(user_id)
    return Handled("unlinked")


def on_text(user_id: str, text: str, links: LineLinks) -> Handled:
    """A link code: link, or say it was wrong (and count it). Anything else from someone not
    linked: how to link. From someone linked: nothing (the account only sends)."""
    from hotline_core.adapters.line_links import MAX_WRONG_CODES, looks_like_code

    if not looks_like_code(text):
        if links.phone_for(user_id) is None:
            return Handled("help", both_languages("follow"))
        return Handled("ignored")
    if links.wrong_codes(user_id) >= MAX_WRONG_CODES:
        return Handled("too_many_codes", both_languages("too_many"))
    if links.link(text, user_id) is not None:
        return Handled("linked", both_languages("linked"))
    if links.count_wrong_code(user_id) >= MAX_WRONG_CODES:
        return Handled("too_many_codes", both_languages("too_many"))
    return Handled("wrong_code", both_languages("wrong_code"))


def on_postback(
    user_id: str,
    data: str,
    *,
    links: LineLinks,
    store: RequestStore,
    bus: EventPublisher,
    now: datetime,
) -> Handled:
    """A tapped button. Answers only when the data names a request by its token and the LINE
    user who tapped is the one linked to that request's receiver. Raises PublishFailed when
    the answer is stored but not announced (tapping again announces it)."""
    postback = parse_postback(data)
    if postback is None or not looks_like_token(postback.token):
        return Handled("invalid", both_languages("invalid"))
    link_hash = hash_token(postback.token)
    request = store.get_by_link(link_hash)
    if request is None:
        return Handled("invalid", both_languages("invalid"))
    if links.phone_for(user_id) != request.receiver.phone:
        # Someone else's button (copied data, or a relinked phone): it answers nothing.
        return Handled("not_theirs", both_languages("invalid"))
    lang, caller = request.receiver.lang, request.caller.name
    transition = settle(link_hash, postback.answer, store=store, bus=bus, now=now)
    current = transition.request
    if transition.outcome is Outcome.LINK_EXPIRED and current is not None:
        return Handled("too_late", reply_text("too_late", lang, hotline=current.hotline_number))
    if current is None or transition.outcome is Outcome.NOT_FOUND:
        return Handled("invalid", both_languages("invalid"))
    if transition.applied:
        result: Result = {
            State.ACCEPTED: "accepted",
            State.ACCEPTED_LATE: "accepted_late",
            State.DECLINED: "declined",
        }.get(current.state, "already")  # type: ignore[assignment]
        seconds = (
            (current.answered_at - current.requested_at).total_seconds()
            if current.answered_at is not None
            else None
        )
        return Handled(
            result,
            reply_text(result, lang, caller=caller, hotline=current.hotline_number),
            answer_seconds=seconds,
        )
    # Nothing changed: a repeated tap, the other button after an answer, or too late.
    if current.state is State.ACCEPTED_MUTUAL:
        return Handled("mutual", reply_text("mutual", lang, caller=caller))
    if current.state is State.TIMED_OUT and postback.answer == "no":
        return Handled("already_told", reply_text("already_told", lang, caller=caller))
    # The same answer again, the other button after an answer, or a race lost to the timer.
    return Handled("already", reply_text("already", lang))
