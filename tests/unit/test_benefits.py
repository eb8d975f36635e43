"""The second line's domain with small fakes (no AWS): PIN shapes, lockout, outcomes, and the
benefit text. The handler's log and metric hygiene is checked against the real handler with
the adapters swapped for the same fakes."""

from __future__ import annotations

import json
import re
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
    failed_at: list[datetime] = field(default_factory=list)
    locked_until: datetime | None = None


@dataclass
class FakeGuard:
    """Same rules as the DynamoDB adapter: a sliding window over the latest failures."""

    records: dict[str, _Record] = field(default_factory=dict)

    def locked_until(self, phone: str, now: datetime) -> datetime | None:
        record = self.records.get(phone)
        if record and record.locked_until and record.locked_until > now:
            return record.locked_until
        return None

    def record_failure(
        self, phone: str, now: datetime, *, window: timedelta, limit: int, lockout: timedelta
    ) -> Failure:
        record = self.records.setdefault(phone, _Record())
        earlier = [t for t in record.failed_at if now - t < window]
        record.failed_at = [*earlier[max(0, len(earlier) - (limit - 1)) :], now]
        locked_now = len(record.failed_at) >= limit and not self.locked_until(phone, now)
        if locked_now:
            record.locked_until = now + lockout
        return Failure(len(record.failed_at), locked_now)


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
    assert world["guard"].records[PHONE].failed_at == [T0]
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


def test_the_window_slides_instead_of_restarting_after_the_first_failure(
    world: dict[str, Any],
) -> None:
    """Minutes 0, 50, 50, 50, then four at 61: the 5th, 6th and 7th wrong PINs all fall
    within one hour of each other, so the phone locks at minute 61 (a window opened by the
    first failure and reset after an hour never would)."""
    minutes = [0, 50, 50, 50, 61, 61, 61, 61]
    outcomes = [
        attempt(world, f"00{i:02d}", T0 + timedelta(minutes=m)).outcome
        for i, m in enumerate(minutes)
    ]

    # At 61 the failure of minute 0 is out of the window: 50, 50, 50, 61 are four, the next
    # 61 is the fifth; once locked, the rest fail without a lookup.
    assert (
        outcomes == [PinOutcome.WRONG] * 5 + [PinOutcome.WRONG_AND_LOCKED] + [PinOutcome.LOCKED] * 2
    )
    assert world["guard"].locked_until(PHONE, T0 + timedelta(minutes=61)) == T0 + timedelta(
        minutes=121
    )


@pytest.mark.parametrize(("fifth_after", "locks"), [(3599, True), (3600, False), (3601, False)])
def test_five_wrong_pins_lock_only_within_less_than_an_hour(
    world: dict[str, Any], fifth_after: int, locks: bool
) -> None:
    for i, offset in enumerate((0, 1000, 2000, 3000)):
        attempt(world, f"000{i}", T0 + timedelta(seconds=offset))

    fifth = attempt(world, "0009", T0 + timedelta(seconds=fifth_after)).outcome

    assert fifth is (PinOutcome.WRONG_AND_LOCKED if locks else PinOutcome.WRONG)


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


# --- the flow's PIN loop: the count the flow passes back -----------------------------------
def counted(world: dict[str, Any], pin: str, tries: int) -> dict[str, str]:
    answer = request_benefit(
        phone=PHONE, pin=pin, contact_id="contact-1", now=T0, tries=tries, **world
    )
    return answer.as_connect_map()


def test_every_failed_entry_costs_a_try_and_the_third_ends_the_loop(
    world: dict[str, Any],
) -> None:
    # A wrong PIN, a timeout (Connect stores "Timeout") and a short entry, one after another.
    answers = [counted(world, pin, tries) for tries, pin in enumerate(["0000", "Timeout", "12"])]

    assert answers == [
        {"result": "Fail", "pinTries": "1", "askAgain": "true"},
        {"result": "Fail", "pinTries": "2", "askAgain": "true"},
        {"result": "Fail", "pinTries": "3", "askAgain": "false"},
    ]
    assert world["guard"].records[PHONE].failed_at == [T0]  # only the PIN-shaped one counts
    assert world["benefits"].lookups == 1


def test_the_right_pin_on_the_last_try_is_granted_and_ends_the_loop(world: dict[str, Any]) -> None:
    assert counted(world, PIN, 2) == {"result": "Success", "pinTries": "2", "askAgain": "false"}
    assert len(world["bus"].published) == 1


def test_a_locked_phone_costs_tries_like_a_wrong_pin(world: dict[str, Any]) -> None:
    for i in range(5):
        attempt(world, f"000{i}")

    assert counted(world, PIN, 0) == {"result": "Fail", "pinTries": "1", "askAgain": "true"}


@pytest.mark.parametrize(
    ("parameters", "tries"),
    [
        ({}, None),
        ({"pinTries": "0"}, 0),
        ({"pinTries": "2"}, 2),
        ({"pinTries": "99"}, 99),
        ({"pinTries": ""}, 0),
        ({"pinTries": "²"}, 0),
        ({"pinTries": "-1"}, 0),
        ({"pinTries": "100"}, 0),
        ({"pinTries": "x"}, 0),
    ],
)
def test_the_count_is_read_as_ascii_digits_or_not_at_all(
    parameters: dict[str, str], tries: int | None
) -> None:
    assert benefits.pin_tries(parameters) == tries


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
    from hotline_core.runtime.deps import Deps
    from hotline_core.settings import Settings

    deps = Deps(Settings.from_env())
    # cached_property: preset the adapters
    deps.__dict__.update(
        bus=world["bus"],
        members=world["members"],
        benefits=world["benefits"],
        attempt_guard=world["guard"],
    )
    monkeypatch.setattr(benefit_request, "deps", lambda: deps)
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


def test_the_handler_hands_back_the_count_the_flow_passes(handler: Any) -> None:
    assert handler(connect_event(cmd="getMemberId", pinTries="0"), Context()) == {
        "memberId": "M001",
        "pinTries": "0",
    }
    assert handler(connect_event(cmd="sendSms", pinCode="0000", pinTries="2"), Context()) == {
        "result": "Fail",
        "pinTries": "3",
        "askAgain": "false",
    }


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


# --- Connect flow logs never hold a PIN ----------------------------------------------------
FLOWS = ("hotline.json", "benefits.json")
PIN_PARAMETER = re.compile(r"pin(code)?", re.IGNORECASE)  # "pin", "pinCode"; not "pin_proof"
STORED_INPUT = "$.StoredCustomerInput"


def load_flow_file(name: str) -> dict[str, Any]:
    from tests.conftest import ROOT

    flow: dict[str, Any] = json.loads((ROOT / "contact_flow" / name).read_text(encoding="utf-8"))
    return flow


def _is_pin_prompt(action: dict[str, Any]) -> bool:
    """A stored-input prompt that can take a PIN (4-8 digits); a one-key menu cannot."""
    parameters = action.get("Parameters", {})
    if action["Type"] != "GetParticipantInput" or parameters.get("StoreInput") != "True":
        return False
    validation = parameters.get("InputValidation", {}).get("CustomValidation", {})
    return int(validation.get("MaximumLength", "20")) >= 4


def _targets(action: dict[str, Any]) -> list[str]:
    transitions = action.get("Transitions", {})
    branches = [*transitions.get("Conditions", []), *transitions.get("Errors", [])]
    nexts = [transitions["NextAction"]] if "NextAction" in transitions else []
    return nexts + [branch["NextAction"] for branch in branches]


def reachable_states(flow: dict[str, Any]) -> set[tuple[str, bool, bool]]:
    """Every (action, flow logging on?, $.StoredCustomerInput holds a PIN?) a call can be
    in, over every branch (conditions and errors alike). Logging starts on: with flow logs
    enabled on the instance, Connect logs a flow until it is told not to."""
    actions = {action["Identifier"]: action for action in flow["Actions"]}
    seen: set[tuple[str, bool, bool]] = set()
    todo = [(flow["StartAction"], True, False)]
    while todo:
        state = todo.pop()
        if state in seen:
            continue
        seen.add(state)
        identifier, logging, holds_pin = state
        action = actions[identifier]
        if action["Type"] == "UpdateFlowLoggingBehavior":
            logging = action["Parameters"]["FlowLoggingBehavior"] == "Enabled"
        if action["Type"] == "GetParticipantInput" and action["Parameters"]["StoreInput"] == "True":
            holds_pin = _is_pin_prompt(action)  # each stored input replaces the previous one
        todo += [(target, logging, holds_pin) for target in _targets(action)]
    return seen


def pin_leaks(flow: dict[str, Any]) -> list[str]:
    """What Connect would write into its flow logs that contains or asks for a PIN."""
    actions = {action["Identifier"]: action for action in flow["Actions"]}
    leaks: set[str] = set()
    for identifier, logging, holds_pin in reachable_states(flow):
        action = actions[identifier]
        if not logging:
            continue
        if _is_pin_prompt(action):
            leaks.add(f"{identifier}: asks for a PIN")
        if holds_pin and STORED_INPUT in json.dumps(action.get("Parameters", {})):
            leaks.add(f"{identifier}: reads {STORED_INPUT} while it holds the PIN")
        if action["Type"] == "InvokeLambdaFunction":
            passed = action["Parameters"].get("LambdaInvocationAttributes", {})
            leaks.update(
                f"{identifier}: passes {name} to a Lambda"
                for name in passed
                if PIN_PARAMETER.fullmatch(name)
            )
    return sorted(leaks)


@pytest.mark.parametrize("name", FLOWS)
def test_no_pin_is_handled_while_flow_logging_is_on(name: str) -> None:
    flow = load_flow_file(name)

    assert pin_leaks(flow) == []
    # The walk really reaches the PIN handling, with logging off.
    pin_states = [s for s in reachable_states(flow) if s[2]]
    assert pin_states and any(not logging for _, logging, _ in pin_states)


@pytest.mark.parametrize(
    ("name", "identifier"),
    [
        (name, action["Identifier"])
        for name in FLOWS
        for action in load_flow_file(name)["Actions"]
        if action.get("Parameters", {}).get("FlowLoggingBehavior") == "Disabled"
    ],
)
def test_every_logging_off_is_needed(name: str, identifier: str) -> None:
    """The walk finds the leak when any one logging-off step is turned into logging-on."""
    flow = load_flow_file(name)
    for action in flow["Actions"]:
        if action["Identifier"] == identifier:
            action["Parameters"]["FlowLoggingBehavior"] = "Enabled"

    assert pin_leaks(flow) != []


def test_a_lambda_given_the_pin_under_any_name_with_logging_on_is_a_leak() -> None:
    flow = load_flow_file("hotline.json")
    for action in flow["Actions"]:
        if action["Identifier"] == "invoke-call-request":  # logging is on here
            action["Parameters"]["LambdaInvocationAttributes"] = {"pinCode": "1234"}

    assert pin_leaks(flow) == ["invoke-call-request: passes pinCode to a Lambda"]


def test_the_benefits_flow_logs_again_after_every_pin_check() -> None:
    """Only the PIN handling goes unlogged: everything the caller hears after it, on every
    path (wrong PIN, no input, a Lambda error, success), is logged again."""
    flow = load_flow_file("benefits.json")
    types = {action["Identifier"]: action["Type"] for action in flow["Actions"]}
    unlogged = {identifier for identifier, logging, _ in reachable_states(flow) if not logging}

    assert {types[i] for i in unlogged} == {
        "GetParticipantInput",
        "Compare",
        "InvokeLambdaFunction",
        "UpdateFlowLoggingBehavior",
    }
    assert all(
        i.startswith(("ask-pin", "check-pin-entered", "invoke-send-sms", "pin-logging-"))
        for i in unlogged
    )
    spoken = {i for i, t in types.items() if t in ("MessageParticipant", "DisconnectParticipant")}
    assert not unlogged & spoken
