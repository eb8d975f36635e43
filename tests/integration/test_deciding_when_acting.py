"""Every consumer decides, when it acts, whether its effect is still right: the real store and
claims in moto, a recording SMS sender, a clock the test sets. Each test fails without the
rule it names (issue 14's invariants 1 to 4 and 6)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from hotline_core import messages
from hotline_core.adapters.idempotency import CLAIM_SETTLED_AFTER, OnceOnly, OnceOnlyMessages
from hotline_core.adapters.store import DynamoRequestStore
from hotline_core.call import CallAnswer, request_call
from hotline_core.directory import parse_directory
from hotline_core.events import Accepted, Party, TimedOut
from hotline_core.ports import Preemption
from hotline_core.requests import (
    ALLOWED,
    MOVES,
    CallRequest,
    Link,
    Outcome,
    State,
    Step,
    new_link,
    time_out_expected_by,
    timer_fire_at,
)
from hotline_core.telling import OutcomeInFlight, invite_receiver, tell_caller
from hotline_core.time_out import start_timer
from tests.conftest import HandClock, RecordedTexts, call_requested

REGION = "ap-northeast-1"
TAKUMI = Party(name="タクミ", phone="+819011112222")
MIZUKI = Party(name="ミズキ", phone="+817033334444")
T0 = datetime(2026, 12, 4, 12, 0, 7, tzinfo=UTC)  # a Friday noon in UTC: 21:00 in Tokyo
WINDOW = timedelta(seconds=120)
BASE = "https://hotline.example"


@dataclass
class Bus:
    events: list[object] = field(default_factory=list)

    def publish(self, data: object, *, correlation_id: str) -> None:
        self.events.append(data)


@dataclass
class World:
    store: DynamoRequestStore
    once: OnceOnly
    sms: OnceOnlyMessages
    texts: RecordedTexts
    clock: HandClock
    bus: Bus
    ids: Iterator[int] = field(default_factory=itertools.count)

    def request(
        self, state: State = State.INQUIRY, *, at: datetime = T0, receiver: Party = MIZUKI
    ) -> tuple[CallRequest, Link]:
        request = CallRequest(
            request_id=f"r-{next(self.ids)}",
            caller=TAKUMI,
            receiver=receiver,
            hotline_number="+815012340001",
            requested_at=at,
            answer_by=at + WINDOW,
        )
        link = new_link(at)
        assert self.store.create(request, link).outcome.value == "created"
        # Walk the state machine to `state`, through the domain's own moves.
        path = {
            State.INQUIRY: [],
            State.ACCEPTED: [Step.ACCEPT],
            State.ACCEPTED_MUTUAL: [Step.MATCH],
            State.DECLINED: [Step.DECLINE],
            State.TIMED_OUT: [Step.TIME_OUT],
            State.ACCEPTED_LATE: [Step.TIME_OUT, Step.ACCEPT],
        }[state]
        for step in path:
            assert self.store.step(step, at, link_hash=link.token_hash).applied
        return self.store.get(request.request_id), link  # type: ignore[return-value]


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws():
        db = boto3.client("dynamodb", region_name=REGION)
        for name, key in (("requests", "pk"), ("claims", "id")):
            db.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        clock, texts = HandClock(T0), RecordedTexts()
        once = OnceOnly(db, "claims", clock)
        yield World(
            store=DynamoRequestStore(db, "requests"),
            once=once,
            sms=OnceOnlyMessages(texts, once),
            texts=texts,
            clock=clock,
            bus=Bus(),
        )


def _timed_out(request: CallRequest) -> TimedOut:
    return TimedOut(
        request_id=request.request_id,
        caller=request.caller,
        receiver=request.receiver,
        timed_out_at=request.answer_by,
    )


def _late_yes(request: CallRequest) -> Accepted:
    return Accepted(
        request_id=request.request_id,
        caller=request.caller,
        receiver=request.receiver,
        accepted_at=request.answer_by + timedelta(seconds=30),
        late=True,
    )


CANT_TALK = messages.text("timed_out", "ja", receiver="ミズキ")
FREE_NOW = messages.text("accepted_late", "ja", receiver="ミズキ", phone=MIZUKI.phone)


# --- 6. one state machine ------------------------------------------------------------------


@pytest.mark.parametrize("step", list(Step))
@pytest.mark.parametrize("start", list(State))
def test_the_store_moves_a_request_exactly_as_the_domain_state_machine_says(world, start, step):
    request, link = world.request(start)
    moves = dict(MOVES[step])

    transition = world.store.step(step, T0, link_hash=link.token_hash)

    after = world.store.get(request.request_id)
    assert after is not None
    if start in moves:
        assert transition.outcome is Outcome.APPLIED
        assert after.state is moves[start]
        assert (start, after.state) in ALLOWED
    else:
        assert transition.outcome is Outcome.ALREADY_SETTLED
        assert after.state is start


def test_an_answer_through_a_link_past_its_lifetime_changes_nothing_before_ttl_deletes_it(world):
    """TTL deletes lazily (up to days later): the write's own condition refuses the answer."""
    request, link = world.request(State.INQUIRY, at=T0 - timedelta(hours=25))

    transition = world.store.step(Step.ACCEPT, T0, link_hash=link.token_hash, via_link=True)

    assert transition.outcome is Outcome.LINK_EXPIRED
    assert world.store.get(request.request_id).state is State.INQUIRY  # type: ignore[union-attr]
    # The same write without the link (the timer) still applies: only answers expire.
    assert world.store.step(Step.TIME_OUT, T0, link_hash=link.token_hash).applied


# --- 1. no "can't talk" after a text that said they can ------------------------------------


def test_a_time_out_text_retried_after_a_late_yes_is_never_sent(world):
    """The issue's story: "can't talk" throttled, the late yes texts "free now", and Lambda's
    retry of the "can't talk" a minute later must send nothing."""
    request, _ = world.request(State.ACCEPTED_LATE)

    tell_caller(_late_yes(request), world.sms, world.store)
    world.clock.now += timedelta(minutes=1)
    tell_caller(_timed_out(request), world.sms, world.store)

    assert world.texts.sent == [(TAKUMI.phone, FREE_NOW)]


def test_a_time_out_text_delivered_after_the_late_yes_happened_is_not_sent_either(world):
    """The late yes's own text not yet sent (its event still on the way): the request's state
    already says the caller can talk, so "can't talk" is wrong now."""
    request, _ = world.request(State.ACCEPTED_LATE)

    tell_caller(_timed_out(request), world.sms, world.store)
    tell_caller(_late_yes(request), world.sms, world.store)

    assert world.texts.sent == [(TAKUMI.phone, FREE_NOW)]


def test_in_order_the_caller_hears_cant_talk_then_free_now(world):
    request, link = world.request(State.TIMED_OUT)
    tell_caller(_timed_out(request), world.sms, world.store)
    world.store.step(Step.ACCEPT, T0 + WINDOW, link_hash=link.token_hash)

    tell_caller(_late_yes(request), world.sms, world.store)

    assert world.texts.sent == [(TAKUMI.phone, CANT_TALK), (TAKUMI.phone, FREE_NOW)]


def test_free_now_waits_while_cant_talk_is_being_sent_then_follows_it(world):
    """A "can't talk" claimed but not ended (its send is under way, or throttled and being
    retried inside its invocation): "free now" fails this invocation, so Lambda's retry a
    minute later sends it after; the order on the phone stays right."""
    request, _ = world.request(State.ACCEPTED_LATE)
    in_flight = world.once._owner()
    assert world.once._claim(f"outcome#{request.request_id}", in_flight)

    with pytest.raises(OutcomeInFlight):
        tell_caller(_late_yes(request), world.sms, world.store)
    assert world.texts.sent == []

    world.clock.now += CLAIM_SETTLED_AFTER  # no send outlives its function's timeout
    tell_caller(_late_yes(request), world.sms, world.store)
    assert world.texts.sent == [(TAKUMI.phone, FREE_NOW)]


def test_a_sent_cant_talk_marks_its_claim_ended_so_free_now_goes_at_once(world):
    request, link = world.request(State.TIMED_OUT)
    tell_caller(_timed_out(request), world.sms, world.store)
    world.store.step(Step.ACCEPT, T0 + WINDOW, link_hash=link.token_hash)

    assert world.sms.preempt(f"outcome#{request.request_id}") is Preemption.SETTLED
    tell_caller(_late_yes(request), world.sms, world.store)  # no OutcomeInFlight
    assert world.texts.sent[-1] == (TAKUMI.phone, FREE_NOW)


# --- 2. no invitation to a settled or closed request, or inside quiet hours ----------------


@pytest.mark.parametrize(
    "state", [State.ACCEPTED, State.DECLINED, State.TIMED_OUT, State.ACCEPTED_MUTUAL]
)
def test_an_invitation_delivered_after_the_request_settled_is_not_sent(world, state):
    request, link = world.request(state)

    skipped = invite_receiver(call_requested(request, link, BASE), world.sms, world.store, T0)

    assert skipped == "settled" and world.texts.sent == []


def test_an_invitation_delivered_after_the_window_closed_is_not_sent(world):
    request, link = world.request()
    late = request.answer_by  # a retry 1 + 2 minutes later, with a 120 s window

    skipped = invite_receiver(call_requested(request, link, BASE), world.sms, world.store, late)

    assert skipped == "window_closed" and world.texts.sent == []


def test_an_invitation_delivered_inside_the_receivers_quiet_hours_is_not_sent(world):
    sleeping = MIZUKI.model_copy(update={"quiet_hours": "20:55-07:00", "timezone": "Asia/Tokyo"})
    request, link = world.request(receiver=sleeping)  # T0 is 21:00:07 in Tokyo

    # The event carries the receiver's hours (the stored request does not need them).
    event = call_requested(request, link, BASE).model_copy(update={"receiver": sleeping})

    skipped = invite_receiver(event, world.sms, world.store, T0)

    assert skipped == "quiet_hours" and world.texts.sent == []


def test_an_invitation_in_time_is_sent_once(world):
    awake = MIZUKI.model_copy(update={"quiet_hours": "22:00-07:00", "timezone": "Asia/Tokyo"})
    request, link = world.request(receiver=awake)
    event = call_requested(request, link, BASE).model_copy(update={"receiver": awake})

    for _ in range(2):
        assert invite_receiver(event, world.sms, world.store, T0) is None

    assert [to for to, _ in world.texts.sent] == [MIZUKI.phone]


# --- 3. a timer started late still ends the request ----------------------------------------


@dataclass
class Timer:
    started: list[tuple[str, datetime]] = field(default_factory=list)

    def start(self, request_id: str, fire_at: datetime, *, link_hash: str | None = None) -> bool:
        self.started.append((request_id, fire_at))
        return True

    def cancel(self, request_id: str) -> bool:
        return False


@pytest.mark.parametrize("late_by", [0, 61, 181, 3 * 24 * 3600])
def test_a_timer_started_late_fires_at_the_next_whole_minute_never_in_the_past(world, late_by):
    request, link = world.request()
    now = request.answer_by + timedelta(seconds=late_by)
    timer = Timer()

    start_timer(call_requested(request, link, BASE), timer, now)

    ((_, fire_at),) = timer.started
    assert fire_at > now and fire_at.second == 0 and fire_at - now <= timedelta(minutes=1)


def test_a_timer_started_in_time_fires_at_the_window_rounded_up():
    assert timer_fire_at(T0 + WINDOW, T0) == datetime(2026, 12, 4, 12, 3, tzinfo=UTC)


# --- 4. a repeat call while the time-out is on its way creates nothing ---------------------

DIRECTORY = parse_directory(
    '[{"name": "タクミ", "phone": "+819011112222"}, {"name": "ミズキ", "phone": "+817033334444"}]'
)


def _call(world: World, now: datetime, request_id: str) -> CallAnswer:
    return request_call(
        directory=DIRECTORY,
        caller_phone=TAKUMI.phone,
        hotline_number="+815012340001",
        request_id=request_id,
        now=now,
        answer_window=WINDOW,
        link_base_url=BASE,
        store=world.store,
        bus=world.bus,
    )


def test_a_repeat_call_after_the_window_but_before_the_time_out_creates_no_second_request(world):
    first = _call(world, T0, "first")
    assert first.created
    in_the_gap = T0 + WINDOW + timedelta(minutes=3)  # Scheduler's minute, a retried timer

    repeat = _call(world, in_the_gap, "second")

    assert not repeat.created and repeat.outcome == "repeat"
    assert world.store.get("second") is None
    assert [type(e).__name__ for e in world.bus.events] == ["CallRequested"]


def test_a_request_whose_timer_was_lost_does_not_keep_its_caller_from_asking_again(world):
    """Its timer's dead letter, re-driven, ends it; the caller need not wait for that."""
    first = _call(world, T0, "first")
    assert first.created
    overdue = time_out_expected_by(T0 + WINDOW)
    assert _call(world, overdue - timedelta(seconds=1), "second").outcome == "repeat"

    again = _call(world, overdue, "third")

    assert again.created
    assert [type(e).__name__ for e in world.bus.events] == ["CallRequested", "CallRequested"]
