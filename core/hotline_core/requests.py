"""A call request and its state machine: inquiry → accepted | refused, refused → accepted (late).

Every transition is one conditional write in the store; this module says which transitions
exist so the store, the producers and the property tests agree on one definition.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass, replace
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


# (from status, from reason) → to status, for each kind of step; what is not here is refused.
ALLOWED: set[tuple[Status, Reason | None, Status]] = {
    (Status.INQUIRY, None, Status.ACCEPTED),
    (Status.INQUIRY, None, Status.REFUSED),
    (Status.REFUSED, Reason.TIMED_OUT, Status.ACCEPTED),
}


@dataclass(frozen=True)
class CallRequest:
    request_id: str
    caller: Party
    receiver: Party
    hotline_number: str
    requested_at: datetime
    answer_by: datetime
    status: Status = Status.INQUIRY
    reason: Reason | None = None
    late: bool = False
    answered_at: datetime | None = None
    mutual: bool = False  # accepted because the receiver called the caller back
    link_hash: str | None = None  # where the store keeps it; known once stored

    @property
    def open(self) -> bool:
        return self.status is Status.INQUIRY

    def waiting(self, now: datetime) -> bool:
        """Still asking the receiver: in `inquiry` and inside the answer window."""
        return self.open and now < self.answer_by

    def accepted(self, now: datetime) -> CallRequest:
        late = self.status is Status.REFUSED
        return replace(self, status=Status.ACCEPTED, reason=None, late=late, answered_at=now)

    def refused(self, reason: Reason, now: datetime) -> CallRequest:
        return replace(self, status=Status.REFUSED, reason=reason, answered_at=now)


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


def timer_fire_at(answer_by: datetime) -> datetime:
    """Scheduler fires within the minute it is set for: round up so it never fires early."""
    epoch = answer_by.timestamp()
    whole_minute = math.ceil(epoch / 60) * 60
    return datetime.fromtimestamp(whole_minute, tz=answer_by.tzinfo)
