"""How a request's end is announced: the event for the state it ended in, put on the bus.
Whatever settles a request (an answer, a mutual call, the timer) announces it this way."""

from __future__ import annotations

from hotline_core.events import Accepted, Declined, MutualCallMatched, TimedOut
from hotline_core.ports import EventPublisher
from hotline_core.requests import CallRequest, State

OutcomeEvent = Accepted | Declined | TimedOut | MutualCallMatched


def outcome_event(request: CallRequest) -> OutcomeEvent | None:
    """The event that announces how `request` ended; None while it is still open."""
    at = request.answered_at or request.answer_by
    common = {
        "request_id": request.request_id,
        "caller": request.caller,
        "receiver": request.receiver,
    }
    match request.state:
        case State.ACCEPTED_MUTUAL:
            return MutualCallMatched(**common, matched_at=at)
        case State.ACCEPTED | State.ACCEPTED_LATE:
            return Accepted(**common, accepted_at=at, late=request.late)
        case State.DECLINED:
            return Declined(**common, declined_at=at)
        case State.TIMED_OUT:
            return TimedOut(**common, timed_out_at=at)
    return None


def announce(request: CallRequest, bus: EventPublisher) -> None:
    event = outcome_event(request)
    if event is not None:
        bus.publish(event, correlation_id=request.request_id)
