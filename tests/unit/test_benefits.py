"""The second line's domain with small fakes (no AWS): PIN shapes, lockout, outcomes, and the
benefit text. The handler's log and metric hygiene is checked against the real handler with
the adapters swapped for the same fakes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hotline_core import benefits
from hotline_core.benefits import Failure, PinOutcome, request_benefit
from hotline_core.events import BenefitRequested, EventData

PHONE = "+819011112222"
OTHER_PHONE = "+819033334444"
PIN = "123456"
URL = "https://example.jp/campaign/spring"
T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


class FakeMembers:
    def __init__(self, members: dict[str, str]) -> None:
        self.members = members
        self.lookups: list[str] = []

    def member_id(self, phone: str) -> str | None:
        self.lookups.append(phone)
        return self.members.get(phone)


class FakeBenefits:
    def __init__(self, benefits: dict[str, str]) -> None:
        self.benefits = benefits
        self.lookups = 0

    def campaign_url(self, pin: str) -> str | None:
        self.lookups += 1
        return self.benefits.get(pin)


@dataclass
class _Record:
    failures: int
    window_start: datetime
    locked_until: datetime | None = None


@dataclass
class FakeGuard:
    """Same rules as the DynamoDB adapter: a window opened by the first failure."""

    records: dict[str, _Record] = field(default_factory=dict)

    def locked_until(self, phone: str, now: datetime) -> datetime | None:
        record = self.records.get(phone)
        if record and record.locked_until and record.locked_until > now:
            return record.locked_until
        return None

    def record_failure(
        self, phone: str, now: datetime, *, window: timedelta, limit: int, lockout: timedelta
    ) -> Failure:
        record = self.records.get(phone)
        if record is None or record.window_start <= now - window:
            record = self.records[phone] = _Record(failures=0, window_start=now)
        record.failures += 1
        locked_now = record.failures >= limit and not self.locked_until(phone, now)
        if locked_now:
            record.locked_until = now + lockout
        return Failure(record.failures, locked_now)


class FakeBus:
    def __init__(self) -> None:
        self.published: list[tuple[EventData, str]] = []

    def publish(self, data: EventData, *, correlation_id: str) -> None:
        self.published.append((data, correlation_id))


class FakeOnceOnly:
    def __init__(self) -> None:
        self.sent: dict[str, tuple[str, str]] = {}

    def send_once(self, key: str, to: str, body: str) -> None:
        self.sent.setdefault(key, (to, body))


@pytest.fixture
def world() -> dict[str, Any]:
    return {
        "members": FakeMembers({PHONE: "M001"}),
        "benefits": FakeBenefits({PIN: URL}),
        "guard": FakeGuard(),
        "bus": FakeBus(),
    }


def attempt(world: dict[str, Any], pin: str, now: datetime = T0, phone: str = PHONE) -> Any:
    return request_benefit(phone=phone, pin=pin, contact_id="contact-1", now=now, **world)


# --- getMemberId ---------------------------------------------------------------------------
def test_a_member_gets_the_id_and_a_stranger_gets_minus_one(world: dict[str, Any]) -> None:
    assert benefits.member_answer(PHONE, world["members"]) == {"memberId": "M001"}
    assert benefits.member_answer(OTHER_PHONE, world["members"]) == {"memberId": "-1"}


# --- sendSms -------------------------------------------------------------------------------
def test_the_right_pin_publishes_benefit_requested(world: dict[str, Any]) -> None:
    answer = attempt(world, PIN)

    assert answer.outcome is PinOutcome.GRANTED
    assert answer.as_connect_map() == {"result": "Success"}
    [(event, correlation)] = world["bus"].published
    assert event == BenefitRequested(
        member_id="M001", phone=PHONE, campaign_url=URL, requested_at=T0
    )
    assert correlation == "contact-1"


def test_a_wrong_pin_fails_and_is_counted(world: dict[str, Any]) -> None:
    answer = attempt(world, "000000")

    assert answer.outcome is PinOutcome.WRONG
    assert answer.as_connect_map() == {"result": "Fail"}
    assert world["guard"].records[PHONE].failures == 1
    assert world["bus"].published == []


@pytest.mark.parametrize(
    "pin", ["", "123", "123456789", "12a4", " 1234", "1234 ", "Timeout", "１２３４", "-1234"]
)
def test_anything_but_4_to_8_digits_fails_without_a_lookup(world: dict[str, Any], pin: str) -> None:
    answer = attempt(world, pin)

    assert answer.outcome is PinOutcome.MALFORMED
    assert answer.as_connect_map() == {"result": "Fail"}
    assert world["benefits"].lookups == 0
    assert world["bus"].published == []


def test_a_stranger_fails_without_a_pin_lookup(world: dict[str, Any]) -> None:
    answer = attempt(world, PIN, phone=OTHER_PHONE)

    assert answer.outcome is PinOutcome.NOT_A_MEMBER
    assert answer.as_connect_map() == {"result": "Fail"}
    assert world["benefits"].lookups == 0
    assert world["bus"].published == []


# --- lockout -------------------------------------------------------------------------------
def test_the_fifth_wrong_pin_within_an_hour_locks_the_phone(world: dict[str, Any]) -> None:
    outcomes = [attempt(world, f"000{i}", T0 + timedelta(minutes=10 * i)).outcome for i in range(5)]

    assert outcomes == [PinOutcome.WRONG] * 4 + [PinOutcome.WRONG_AND_LOCKED]


def test_a_locked_phone_fails_even_with_the_right_pin_and_without_a_lookup(
    world: dict[str, Any],
) -> None:
    for i in range(5):
        attempt(world, f"000{i}")
    lookups = world["benefits"].lookups

    answer = attempt(world, PIN, T0 + timedelta(minutes=59))

    assert answer.outcome is PinOutcome.LOCKED
    assert answer.as_connect_map() == {"result": "Fail"}
    assert world["benefits"].lookups == lookups
    assert world["bus"].published == []


def test_the_lock_is_per_phone(world: dict[str, Any]) -> None:
    world["members"].members[OTHER_PHONE] = "M002"
    for i in range(5):
        attempt(world, f"000{i}")

    assert attempt(world, PIN, phone=OTHER_PHONE).outcome is PinOutcome.GRANTED


def test_the_lock_ends_after_an_hour(world: dict[str, Any]) -> None:
    for i in range(5):
        attempt(world, f"000{i}")

    assert attempt(world, PIN, T0 + timedelta(seconds=3599)).outcome is PinOutcome.LOCKED
    assert attempt(world, PIN, T0 + timedelta(seconds=3601)).outcome is PinOutcome.GRANTED


def test_after_the_lock_the_count_starts_again(world: dict[str, Any]) -> None:
    for i in range(5):
        attempt(world, f"000{i}")
    later = T0 + timedelta(hours=1, seconds=1)

    outcomes = [attempt(world, "9999", later).outcome for _ in range(5)]

    assert outcomes == [PinOutcome.WRONG] * 4 + [PinOutcome.WRONG_AND_LOCKED]


def test_wrong_pins_spread_over_more_than_an_hour_do_not_lock(world: dict[str, Any]) -> None:
    for i in range(4):
        attempt(world, f"000{i}", T0)
    outcome = attempt(world, "0005", T0 + timedelta(hours=1, seconds=1)).outcome

    assert outcome is PinOutcome.WRONG
    assert attempt(world, PIN, T0 + timedelta(hours=1, seconds=2)).granted


def test_a_right_pin_does_not_reset_the_count(world: dict[str, Any]) -> None:
    """PINs are shared campaign codes: a known one must not buy more guesses."""
    for i in range(4):
        attempt(world, f"000{i}")
    assert attempt(world, PIN).granted

    assert attempt(world, "0009").outcome is PinOutcome.WRONG_AND_LOCKED


def test_malformed_pins_are_not_counted(world: dict[str, Any]) -> None:
    for _ in range(10):
        attempt(world, "12")

    assert attempt(world, PIN).granted


# --- the text ------------------------------------------------------------------------------
def test_the_member_is_texted_the_url_as_plain_text_once_per_request() -> None:
    sms = FakeOnceOnly()
    event = BenefitRequested(member_id="M001", phone=PHONE, campaign_url=URL, requested_at=T0)

    benefits.text_member(event, sms)
    benefits.text_member(event, sms)  # a redelivery of the same event
    later = event.model_copy(update={"requested_at": T0 + timedelta(minutes=5)})
    benefits.text_member(later, sms)  # a second successful call

    bodies = [body for _, body in sms.sent.values()]
    assert bodies == [f"キャンペーンページ: {URL}"] * 2
    assert all(to == PHONE for to, _ in sms.sent.values())
    assert not any("<" in body or ">" in body for body in bodies)


# --- the handler: contract, logs and metrics -----------------------------------------------
@pytest.fixture
def handler(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("TABLE_NAME", "requests")
    monkeypatch.setenv("EVENT_BUS_NAME", "bus")
    monkeypatch.setenv("MEMBERS_TABLE_NAME", "members")
    monkeypatch.setenv("BENEFITS_TABLE_NAME", "benefits")
    monkeypatch.setenv("ATTEMPTS_TABLE_NAME", "attempts")
    import benefit_request
    from hotline_core.lambda_support import Deps
    from hotline_core.settings import Settings

    deps = Deps(Settings.from_env())
    deps.__dict__["bus"] = world["bus"]  # cached_property: preset the adapter
    tables = benefit_request.Tables.__new__(benefit_request.Tables)
    tables.members, tables.benefits, tables.guard = (
        world["members"],
        world["benefits"],
        world["guard"],
    )
    monkeypatch.setattr(benefit_request, "_deps", lambda: (deps, tables))
    return benefit_request.handler


def connect_event(**parameters: str) -> dict[str, Any]:
    from tests.conftest import load_event

    event = load_event("connect-contact-flow-event.json")
    event["Details"]["ContactData"]["CustomerEndpoint"]["Address"] = PHONE
    event["Details"]["Parameters"] = parameters
    return event


@dataclass
class Context:
    function_name: str = "benefit-request"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:ap-northeast-1:123456789012:function:b"
    aws_request_id: str = "req-1"


def test_the_handler_answers_the_contract_exactly(handler: Any) -> None:
    assert handler(connect_event(cmd="getMemberId"), Context()) == {"memberId": "M001"}
    assert handler(connect_event(cmd="sendSms", pinCode=PIN), Context()) == {"result": "Success"}
    assert handler(connect_event(cmd="sendSms", pinCode="0000"), Context()) == {"result": "Fail"}
    assert handler(connect_event(cmd="sendSms"), Context()) == {"result": "Fail"}


@pytest.mark.parametrize("parameters", [{"cmd": "deleteEverything"}, {}, {"pinCode": PIN}])
def test_an_unknown_or_missing_cmd_is_an_error(handler: Any, parameters: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="unknown cmd"):
        handler(connect_event(**parameters), Context())


def test_logs_never_hold_the_pin_or_the_full_phone(
    handler: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    for i in range(5):
        handler(connect_event(cmd="sendSms", pinCode=f"97531{i}"), Context())
    handler(connect_event(cmd="sendSms", pinCode=PIN), Context())

    out = capsys.readouterr().out
    assert PHONE not in out
    assert PIN not in out
    assert "97531" not in out
    metrics = [json.loads(line) for line in out.splitlines() if '"_aws"' in line]
    names = [m["Name"] for doc in metrics for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
    assert names.count("PinFailures") == 5
    assert names.count("Lockouts") == 1
    assert names.count("LockedAttempts") == 1
