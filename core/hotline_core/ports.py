"""What the domain needs from the outside world. Adapters implement these; tests use fakes."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from hotline_core.directory import Lang
    from hotline_core.events import EventData
    from hotline_core.requests import CallRequest, Creation, Link, Step, Transition


class RequestStore(Protocol):
    def create(self, request: CallRequest, link: Link, *, settled: Iterable[str] = ()) -> Creation:
        """Store a new request in `inquiry`, its link and its caller → receiver pair item,
        unless a request either way between the two may still be waiting (its id is in the
        answer; ids in `settled` are known to be answered and do not block)."""

    def discard(self, request: CallRequest, link: Link) -> None:
        """Undo `create` (only while nobody can have seen the request)."""

    def get(self, request_id: str) -> CallRequest | None: ...

    def get_by_link(self, link_hash: str) -> CallRequest | None:
        """The request stored under a link, whatever the link's lifetime."""

    def get_many(self, request_ids: Iterable[str]) -> dict[str, CallRequest]: ...

    def newest_request(self, caller_phone: str, receiver_phone: str) -> CallRequest | None:
        """The newest request from caller to receiver (maybe settled), or None."""

    def find_by_link(self, token_hash: str, now: datetime) -> CallRequest | None:
        """The request a link points to; raises LinkExpired for an expired link."""

    def step(
        self,
        step: Step,
        now: datetime,
        *,
        request_id: str | None = None,
        link_hash: str | None = None,
        via_link: bool = False,
    ) -> Transition:
        """Apply one step of the state machine (`requests.MOVES`) as conditional writes."""


class EventPublisher(Protocol):
    def publish(self, data: EventData, *, correlation_id: str) -> None:
        """Put the event on the bus; raises PublishFailed when it could not."""


class PublishFailed(RuntimeError):
    """The event was not accepted by the bus after retries, or the bus could not be reached.
    `maybe_published`: the last attempt got no answer, so the event may be on the bus after
    all (undoing the state it announces would orphan the consumers' work)."""

    def __init__(self, message: str, *, maybe_published: bool) -> None:
        super().__init__(message)
        self.maybe_published = maybe_published


class SmsSender(Protocol):
    def send(self, to: str, body: str) -> None: ...


class Preemption(StrEnum):
    """What `OnceOnlySender.preempt` found."""

    PREEMPTED = "preempted"  # claimed now, or before by a preempt: that text will never go
    SETTLED = "settled"  # claimed by a send that has ended (sent, or decided not to)
    IN_FLIGHT = "in_flight"  # claimed by a send that may be under way this moment


class OnceOnlySender(Protocol):
    def send_once(
        self,
        key: str,
        to: str,
        body: str,
        *,
        line: Sequence[Mapping[str, Any]] | None = None,
        still_right: Callable[[], bool] | None = None,
        mark_ended: bool = False,
    ) -> None:
        """Send unless a message with this key was already sent (or claimed). `still_right`
        is asked once the key is claimed, just before sending: False sends nothing, and the
        claim stays (the decision is final for this key). `mark_ended`: say on the claim
        when the send is over, for a `preempt` that waits on it. By the person's channel:
        `body` by SMS, or for a person linked to LINE the LINE messages `line` (default:
        `body` as one text), and `body` by SMS if LINE fails."""

    def preempt(self, key: str) -> Preemption:
        """Claim `key` without sending, so no message with it is ever sent; or say whether
        the send that claimed it first has ended."""


class AnswerTimer(Protocol):
    def start(self, request_id: str, fire_at: datetime, *, link_hash: str | None = None) -> bool:
        """Create the one-shot schedule; False when it already exists."""

    def cancel(self, request_id: str) -> bool:
        """Delete the schedule; False when there was none (fired, or never created)."""


class LinkExpired(Exception):
    """The link existed but its lifetime is over; `lang` is its receiver's, for the page."""

    def __init__(self, ref: str, lang: Lang = "ja") -> None:
        super().__init__(ref)
        self.lang: Lang = lang
