"""A call request and its state machine: inquiry → accepted | refused, refused → accepted (late).

Every transition is one conditional write in the store; this module says which transitions
exist so the store, the producers and the property tests agree on one definition.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from hotline_core.events import Party

TOKEN_BYTES = 16  # 128 bits; base64url → 22 characters, short enough for one UCS-2 segment
LINK_LIFETIME = timedelta(hours=24)
REQUEST_RETENTION = timedelta(days=7)


class Status(StrEnum):
    INQUIRY = "inquiry"
    ACCEPTED = "accepted"
    REFUSED = "refused"


class Reason(StrEnum):
    DECLINED = "declined"
    TIMED_OUT = "timed_out"


class State(StrEnum):
    """Where a request is, as the people involved see it. Stored as `status` (+ `reason`,
    `late`, `mutual`): `STORED` says how."""

    INQUIRY = "inquiry"
    ACCEPTED = "accepted"
    ACCEPTED_LATE = "accepted/late"  # a yes after the time-out: "free now"
    ACCEPTED_MUTUAL = "accepted/mutual"  # the receiver called the caller back
    DECLINED = "refused/declined"
    TIMED_OUT = "refused/timed_out"


@dataclass(frozen=True)
class Stored:
    status: Status
    reason: Reason | None = None
    late: bool = False
    mutual: bool = False


STORED: dict[State, Stored] = {
    State.INQUIRY: Stored(Status.INQUIRY),
    State.ACCEPTED: Stored(Status.ACCEPTED),
    State.ACCEPTED_LATE: Stored(Status.ACCEPTED, late=True),
    State.ACCEPTED_MUTUAL: Stored(Status.ACCEPTED, mutual=True),
    State.DECLINED: Stored(Status.REFUSED, Reason.DECLINED),
    State.TIMED_OUT: Stored(Status.REFUSED, Reason.TIMED_OUT),
}


class Step(StrEnum):
    """What can happen to a request: a yes, a no, the timer, a mutual call."""

    ACCEPT = "accept"
    DECLINE = "decline"
    TIME_OUT = "time_out"
    MATCH = "match"


# The state machine, the one definition: each step's moves, tried in order (the first from
# the state the request is in applies; none: the step changes nothing). The store turns each
# move into one conditional write; the property test checks the system against the same table.
MOVES: dict[Step, tuple[tuple[State, State], ...]] = {
    Step.ACCEPT: ((State.INQUIRY, State.ACCEPTED), (State.TIMED_OUT, State.ACCEPTED_LATE)),
    Step.DECLINE: ((State.INQUIRY, State.DECLINED),),
    Step.TIME_OUT: ((State.INQUIRY, State.TIMED_OUT),),
    Step.MATCH: ((State.INQUIRY, State.ACCEPTED_MUTUAL),),
}
ALLOWED: frozenset[tuple[State, State]] = frozenset(
    move for moves in MOVES.values() for move in moves
)
# Where each positive text leaves the caller: after one of these, no "can't talk" may follow.
TOLD_CAN_TALK = frozenset({State.ACCEPTED, State.ACCEPTED_LATE, State.ACCEPTED_MUTUAL})


def state_of(status: Status, reason: Reason | None, *, late: bool, mutual: bool) -> State:
    """The state a stored item is in (`late` and `mutual` mean something only when accepted)."""
    accepted = status is Status.ACCEPTED
    stored = Stored(status, reason, late=late and accepted, mutual=mutual and accepted)
    for state, known in STORED.items():
        if known == stored:
            return state
    raise ValueError(f"no request state is stored as {stored}")


@dataclass(frozen=True)
class CallRequest:
    request_id: str
    caller: Party
    receiver: Party
    hotline_number: str
    requested_at: datetime
    answer_by: datetime
    state: State = State.INQUIRY
    answered_at: datetime | None = None
    link_hash: str | None = None  # where the store keeps it; known once stored

    @property
    def settled(self) -> bool:
        return self.state is not State.INQUIRY

    @property
    def late(self) -> bool:
        return self.state is State.ACCEPTED_LATE

    @property
    def mutual(self) -> bool:
        return self.state is State.ACCEPTED_MUTUAL

    def waiting(self, now: datetime) -> bool:
        """Still asking the receiver: in `inquiry` and inside the answer window."""
        return not self.settled and now < self.answer_by

    def overdue(self, now: datetime) -> bool:
        """Still in `inquiry` when its time-out should long have arrived: its timer was lost
        (a dead letter nobody re-drove). See `time_out_expected_by`."""
        return not self.settled and now >= time_out_expected_by(self.answer_by)


class Outcome(StrEnum):
    APPLIED = "applied"
    ALREADY_SETTLED = "already_settled"  # the other side of a race won, or a repeat
    NOT_FOUND = "not_found"
    LINK_EXPIRED = "link_expired"  # an answer through a link past its lifetime


@dataclass(frozen=True)
class Transition:
    outcome: Outcome
    request: CallRequest | None

    @property
    def applied(self) -> bool:
        return self.outcome is Outcome.APPLIED


class CreateOutcome(StrEnum):
    CREATED = "created"
    ALREADY_CREATED = "already_created"  # Connect invoked us again for the same contact
    PAIR_BLOCKED = "pair_blocked"  # a pair item each way may still be open: see its ids


@dataclass(frozen=True)
class Creation:
    outcome: CreateOutcome
    mine: str | None = None  # the request id in OPEN#<caller>#<receiver>, when it blocked
    theirs: str | None = None  # the request id in OPEN#<receiver>#<caller>, when it blocked


@dataclass(frozen=True)
class Link:
    token: str
    token_hash: str
    expires_at: datetime


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_link(now: datetime) -> Link:
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return Link(token=token, token_hash=hash_token(token), expires_at=now + LINK_LIFETIME)


def link_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/a/{token}"


def token_of(link: str) -> str:
    """The token in a link made by `link_url`."""
    return link.rsplit("/", 1)[-1]


def looks_like_token(token: str) -> bool:
    """Cheap shape check before any lookup: a forged or truncated token costs no read."""
    return len(token) == 22 and all(c.isalnum() or c in "-_" for c in token)


# --- When the time-out arrives -------------------------------------------------------------
# EventBridge Scheduler fires an at() schedule within the minute it names ("if you set your
# schedule to run at 1:00, it will invoke the target API between 1:00:00 and 1:00:59":
# Scheduler User Guide, "Schedule types"); Lambda retries a failed asynchronous invocation
# about 1 minute and then 2 minutes later (Lambda Developer Guide, "Asynchronous invocation").
# Past this after its timer's minute, an open request's timer is lost (a dead letter; its
# redrive ends the request) and the request no longer holds its caller back from asking again.
# Covers a timer started by StartTimer's last retry (3 minutes late), fired at the end of its
# minute, and the AnswerTimer function's own two retries (3 minutes more), with room to spare.
OVERDUE_AFTER = timedelta(minutes=15)


def _next_whole_minute(moment: datetime) -> datetime:
    whole_minute = math.ceil(moment.timestamp() / 60) * 60
    return datetime.fromtimestamp(whole_minute, tz=moment.tzinfo)


def timer_fire_at(answer_by: datetime, now: datetime | None = None) -> datetime:
    """When to ask Scheduler to fire: `answer_by` rounded up to the whole minute (it fires
    within the minute named, so never early); and never a moment already past, however late
    the timer is started (a retried or re-driven start): then the next whole minute."""
    fire_at = _next_whole_minute(answer_by)
    if now is not None and fire_at <= now:
        fire_at = _next_whole_minute(now + timedelta(seconds=1))
    return fire_at


def time_out_expected_by(answer_by: datetime) -> datetime:
    """The moment after which a request still open is overdue (see OVERDUE_AFTER)."""
    return timer_fire_at(answer_by) + OVERDUE_AFTER
