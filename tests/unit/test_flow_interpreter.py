"""Unit tests for the local contact-flow interpreter (no AWS): the event it sends a Lambda, its
semantics (references, input, comparisons, error branches, time limits) and the flows it
refuses, as Connect would.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from hotline_tools.local import flow as flow_module
from hotline_tools.local.flow import (
    LOCAL_INSTANCE_ARN,
    Contact,
    FlowError,
    FlowResult,
    Spoken,
    load_flow,
    run_flow,
)
from tests.unit import flow_helpers
from tests.unit.flow_helpers import (
    CALLER,
    END,
    EVENT_FIXTURE,
    HOTLINE_NUMBER,
    FakeLambda,
    answer,
    equals,
    failing_lambda,
    invoke,
    key_tree,
    make_contact,
    on_error,
    say,
    tiny_flow,
)

# Shared fixtures: pytest finds a fixture by its name in the test module.
hotline_flow = flow_helpers.hotline_flow


# --- the Lambda event -----------------------------------------------------------------------


def captured_event(contact: Contact | None = None, **parameters: str) -> dict[str, Any]:
    fake = answer({"ok": "yes"})
    flow = tiny_flow(invoke("call", "end", LambdaInvocationAttributes=parameters), END)
    run_flow(flow, contact or make_contact(), fake)
    return fake.calls[0][1]


def test_event_has_exactly_the_keys_of_a_real_connect_event() -> None:
    assert EVENT_FIXTURE.is_file(), f"{EVENT_FIXTURE} is missing: the test compares against it"
    expected = json.loads(EVENT_FIXTURE.read_text(encoding="utf-8"))

    assert key_tree(captured_event()) == key_tree(expected)


def test_event_values_describe_the_call() -> None:
    event = captured_event(make_contact(plan="gold"), cmd="x")

    assert event["Name"] == "ContactFlowEvent"
    data = event["Details"]["ContactData"]
    assert data["Channel"] == "VOICE"
    assert data["InitiationMethod"] == "INBOUND"
    assert data["InstanceARN"] == LOCAL_INSTANCE_ARN
    assert data["ContactId"] == data["InitialContactId"] == data["PreviousContactId"]
    assert data["CustomerEndpoint"] == {"Address": CALLER, "Type": "TELEPHONE_NUMBER"}
    assert data["SystemEndpoint"] == {"Address": HOTLINE_NUMBER, "Type": "TELEPHONE_NUMBER"}
    assert data["MediaStreams"] is None
    assert data["Queue"] is None
    assert data["Attributes"] == {"plan": "gold"}
    assert event["Details"]["Parameters"] == {"cmd": "x"}


def test_lambda_cannot_change_the_contact_through_its_event() -> None:
    def vandal(event: dict[str, Any]) -> dict[str, str]:
        event["Details"]["ContactData"]["Attributes"]["plan"] = "stolen"
        return {}

    contact = make_contact(plan="gold")
    flow = tiny_flow(invoke("call", "end"), END)

    result = run_flow(flow, contact, FakeLambda(vandal))

    assert result.attributes == {"plan": "gold"}
    assert contact.attributes == {"plan": "gold"}


# --- interpreter semantics ------------------------------------------------------------------


def test_references_resolve_whole_and_inside_sentences() -> None:
    flow = tiny_flow(
        invoke("call", "ask", LambdaInvocationAttributes={"who": "$.Attributes.name"}),
        {
            "Identifier": "ask",
            "Type": "GetParticipantInput",
            "Parameters": {
                "Text": "番号をどうぞ",
                "StoreInput": "True",
                "InputValidation": {"CustomValidation": {"MaximumLength": "4"}},
            },
            "Transitions": {
                "NextAction": "remember",
                "Errors": [on_error("NoMatchingError", "end")],
            },
        },
        {
            "Identifier": "remember",
            "Type": "UpdateContactAttributes",
            "Parameters": {
                "Attributes": {"greeting": "$.External.greeting", "pin": "$.StoredCustomerInput"}
            },
            "Transitions": {"NextAction": "speak", "Errors": [on_error("NoMatchingError", "end")]},
        },
        say(
            "speak",
            "$.Attributes.greeting、$.Attributes.nameさん。"
            "From $.CustomerEndpoint.Address to $.SystemEndpoint.Address, call $.ContactId. "
            "PIN $.StoredCustomerInput; missing [$.External.nothing][$.Attributes.nothing].",
        ),
        END,
    )
    fake = answer({"greeting": "こんにちは"})

    result = run_flow(flow, make_contact(digits="42#", name="たくみ"), fake)

    assert fake.parameters == [{"who": "たくみ"}]
    assert result.attributes["pin"] == "42"
    assert result.attributes["greeting"] == "こんにちは"
    assert result.prompts[-1] == (
        f"こんにちは、たくみさん。From {CALLER} to {HOTLINE_NUMBER}, "
        "call 11111111-2222-3333-4444-555555555555. PIN 42; missing [][]."
    )


def test_each_invocation_replaces_external() -> None:
    responses = iter([{"first": "1"}, {"second": "2"}])
    flow = tiny_flow(
        invoke("one", "two"),
        invoke("two", "speak"),
        say("speak", "[$.External.first][$.External.second]"),
        END,
    )

    result = run_flow(flow, make_contact(), FakeLambda(lambda _e: next(responses)))

    assert result.external == {"second": "2"}
    assert result.prompts == ["[][2]"]
    assert result.lambda_invocations == 2


def test_json_response_validation_accepts_nested_values() -> None:
    flow = tiny_flow(
        invoke("call", "speak", ResponseValidation={"ResponseType": "JSON"}),
        say("speak", "$.External.count"),
        say("failed", "failed"),
        END,
    )

    result = run_flow(flow, make_contact(), answer({"count": 3, "detail": {"a": "b"}}))

    assert result.prompts == ["3"]
    assert result.external == {"count": "3", "detail": '{"a": "b"}'}


def menu_flow() -> dict[str, Any]:
    return tiny_flow(
        {
            "Identifier": "menu",
            "Type": "GetParticipantInput",
            "Parameters": {"Text": "1 or 2", "StoreInput": "False"},
            "Transitions": {
                "Conditions": [equals("1", "one"), equals("2", "two")],
                "Errors": [
                    on_error("InputTimeLimitExceeded", "silence"),
                    on_error("NoMatchingCondition", "other"),
                    on_error("NoMatchingError", "end"),
                ],
            },
        },
        say("one", "one", "menu"),
        say("two", "two"),
        say("silence", "silence"),
        say("other", "other"),
        END,
    )


@pytest.mark.parametrize(
    ("digits", "spoken"),
    [
        ("2", ["1 or 2", "two"]),
        ("12", ["1 or 2", "one", "1 or 2", "two"]),
        ("9", ["1 or 2", "other"]),
        ("", ["1 or 2", "silence"]),
        ("1", ["1 or 2", "one", "1 or 2", "silence"]),
    ],
)
def test_menu_takes_one_key_per_prompt(digits: str, spoken: list[str]) -> None:
    result = run_flow(menu_flow(), make_contact(digits=digits), answer({}))

    assert result.prompts == spoken


def pin_flow(maximum: str, *, timeout_branch: bool) -> dict[str, Any]:
    def ask(identifier: str, next_action: str) -> dict[str, Any]:
        errors = [on_error("NoMatchingError", "end")]
        if timeout_branch:
            errors.insert(0, on_error("InputTimeLimitExceeded", "silence"))
        return {
            "Identifier": identifier,
            "Type": "GetParticipantInput",
            "Parameters": {
                "Text": f"ask {identifier}",
                "StoreInput": "True",
                "InputValidation": {"CustomValidation": {"MaximumLength": maximum}},
                "DTMFConfiguration": {"InputTerminationSequence": "#"},
            },
            "Transitions": {"NextAction": next_action, "Errors": errors},
        }

    return tiny_flow(
        ask("first", "echo-first"),
        say("echo-first", "got $.StoredCustomerInput", "second"),
        ask("second", "echo-second"),
        say("echo-second", "got $.StoredCustomerInput"),
        say("silence", "silence"),
        END,
    )


@pytest.mark.parametrize(
    ("digits", "spoken"),
    [
        ("12#34", ["got 12", "got 34"]),
        ("1234567#", ["got 1234", "got 567"]),
        ("1234#56#", ["got 1234", "got 56"]),
        ("#7#", ["got ", "got 7"]),
        ("12#", ["got 12", "silence"]),
    ],
)
def test_stored_input_stops_at_hash_end_or_maximum_length(digits: str, spoken: list[str]) -> None:
    result = run_flow(pin_flow("4", timeout_branch=True), make_contact(digits=digits), answer({}))

    assert [p for p in result.prompts if not p.startswith("ask")] == spoken


def test_stored_input_without_timeout_branch_stores_timeout_like_connect() -> None:
    result = run_flow(pin_flow("4", timeout_branch=False), make_contact(digits=""), answer({}))

    assert result.prompts[:2] == ["ask first", "got Timeout"]


@pytest.mark.parametrize(
    ("operator", "operands", "value", "matches"),
    [
        ("Equals", ["a", "b"], "b", True),
        ("NumberGreaterThan", ["3"], "10", True),
        ("NumberGreaterThan", ["3"], "2", False),
        ("NumberLessThan", ["3"], "2.5", True),
        ("NumberLessOrEqualTo", ["3"], "3", True),
        ("NumberGreaterOrEqualTo", ["3"], "not a number", False),
        ("TextStartsWith", ["+81"], "+8190", True),
        ("TextContains", ["90"], "+8190", True),
        ("TextEndsWith", ["90"], "+8190", True),
    ],
)
def test_compare_operators(operator: str, operands: list[str], value: str, matches: bool) -> None:
    flow = tiny_flow(
        {
            "Identifier": "check",
            "Type": "Compare",
            "Parameters": {"ComparisonValue": "$.Attributes.value"},
            "Transitions": {
                "Conditions": [
                    {"NextAction": "yes", "Condition": {"Operator": operator, "Operands": operands}}
                ],
                "Errors": [on_error("NoMatchingCondition", "no")],
            },
        },
        say("yes", "yes"),
        say("no", "no"),
        END,
    )

    result = run_flow(flow, make_contact(value=value), answer({}))

    assert result.prompts == ["yes" if matches else "no"]


def test_specific_error_branch_wins_over_the_catch_all() -> None:
    flow = tiny_flow(
        {
            "Identifier": "check",
            "Type": "Compare",
            "Parameters": {"ComparisonValue": "$.Attributes.value"},
            "Transitions": {
                "Conditions": [equals("x", "end")],
                "Errors": [
                    on_error("NoMatchingError", "catch-all"),
                    on_error("NoMatchingCondition", "specific"),
                ],
            },
        },
        say("catch-all", "catch-all"),
        say("specific", "specific"),
        END,
    )

    result = run_flow(flow, make_contact(value="y"), answer({}))

    assert result.prompts == ["specific"]


def test_catch_all_error_branch_is_used_when_no_specific_one_exists() -> None:
    flow = tiny_flow(
        invoke("call", "end", errors=[on_error("NoMatchingError", "failed")]),
        say("failed", "failed"),
        END,
    )

    result = run_flow(flow, make_contact(), FakeLambda(failing_lambda))

    assert result.prompts == ["failed"]
    assert result.path == ["call", "failed", "end"]


# --- flows the interpreter refuses ----------------------------------------------------------


def test_unknown_action_type_names_the_type_and_identifier() -> None:
    flow = tiny_flow(
        {
            "Identifier": "to-queue",
            "Type": "TransferContactToQueue",
            "Parameters": {},
            "Transitions": {"NextAction": "end"},
        },
        END,
    )

    with pytest.raises(FlowError, match=r"TransferContactToQueue.*to-queue"):
        run_flow(flow, make_contact(), answer({}))


def test_missing_transition_target_is_an_error() -> None:
    flow = tiny_flow(say("hello", "hello", "nowhere"), END)

    with pytest.raises(FlowError, match="nowhere"):
        run_flow(flow, make_contact(), answer({}))


def test_error_without_any_branch_is_an_error() -> None:
    flow = tiny_flow(invoke("call", "end", errors=[]), END)

    with pytest.raises(FlowError, match=r"call.*NoMatchingError"):
        run_flow(flow, make_contact(), FakeLambda(failing_lambda))


def test_endless_loop_is_stopped() -> None:
    flow = tiny_flow(say("again", "again", "again"), END)

    with pytest.raises(FlowError, match="looping"):
        run_flow(flow, make_contact(), answer({}))


def test_the_flows_own_time_limit_is_the_one_enforced() -> None:
    # "1" second in the flow, a Lambda that needs 1.5: the error branch, after one second.
    release = threading.Event()

    def needs_a_second_and_a_half(_event: dict[str, Any]) -> dict[str, str]:
        release.wait(timeout=1.5)
        return {"late": "true"}

    flow = tiny_flow(
        invoke("call", "ok", InvocationTimeLimitSeconds="1"),
        say("ok", "ok"),
        say("failed", "no"),
        END,
    )
    try:
        result = run_flow(flow, make_contact(), FakeLambda(needs_a_second_and_a_half))
    finally:
        release.set()

    assert result.path == ["call", "failed", "end"]
    assert result.external == {}


def test_without_a_time_limit_connect_waits_its_default_three_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waited: list[float] = []

    def no_answer_in_time(invoker: Any, arn: str, event: Any, limit: float, name: str) -> None:
        waited.append(limit)
        return None  # still running at the limit

    monkeypatch.setattr(flow_module, "_call_with_time_limit", no_answer_in_time)
    flow = tiny_flow(invoke("call", "ok"), say("ok", "ok"), say("failed", "no"), END)

    result = run_flow(flow, make_contact(), answer({}))

    assert waited == [3.0]
    assert result.path == ["call", "failed", "end"]


def test_a_reference_that_is_not_text_names_the_action() -> None:
    flow = tiny_flow(
        {
            "Identifier": "greet",
            "Type": "MessageParticipant",
            "Parameters": {"Text": 5},
            "Transitions": {"NextAction": "end"},
        },
        END,
    )

    with pytest.raises(FlowError, match=r"action 'greet' \(MessageParticipant\): expected a str"):
        run_flow(flow, make_contact(), answer({}))


def test_time_limit_above_eight_seconds_is_rejected() -> None:
    flow = tiny_flow(invoke("call", "end", InvocationTimeLimitSeconds="10"), END)

    with pytest.raises(FlowError, match="InvocationTimeLimitSeconds"):
        run_flow(flow, make_contact(), answer({}))


def test_asynchronous_invocation_is_never_run_synchronously() -> None:
    flow = tiny_flow(invoke("call", "end", InvocationType="ASYNCHRONOUS"), END)
    handed: list[str] = []

    result = run_flow(
        flow,
        make_contact(),
        FakeLambda(lambda _e: pytest.fail("an ASYNCHRONOUS invocation was waited on")),
        invoke_async=lambda arn, _event: handed.append(arn),
    )

    assert len(handed) == 1
    assert (result.lambda_invocations, result.async_invocations) == (0, 1)


def test_time_limit_override_must_be_positive(hotline_flow: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="positive"):
        run_flow(hotline_flow, make_contact(), answer({}), lambda_time_limit_override=0)


@pytest.mark.parametrize(
    ("flow", "message"),
    [
        ({"Version": "2020-01-01", "StartAction": "end", "Actions": [END]}, "Version"),
        ({"Version": "2019-10-30", "Actions": [END]}, "StartAction"),
        ({"Version": "2019-10-30", "StartAction": "gone", "Actions": [END]}, "gone"),
        ({"Version": "2019-10-30", "StartAction": "end", "Actions": [END, END]}, "duplicate"),
        (tiny_flow(say("hello", "hello", "nowhere"), END), "nowhere"),
        # Actions no call reaches are checked too: the second is after the disconnect.
        (
            tiny_flow(END, say("unreached", "hi", "nowhere")),
            r"action 'unreached' \(MessageParticipant\) transitions to unknown action 'nowhere'",
        ),
        (
            tiny_flow(
                END,
                {"Identifier": "to-queue", "Type": "TransferContactToQueue", "Transitions": {}},
            ),
            r"unsupported action Type 'TransferContactToQueue' \(Identifier 'to-queue'\)",
        ),
        (
            tiny_flow(END, invoke("slow", "end", InvocationTimeLimitSeconds="9")),
            r"action 'slow': InvocationTimeLimitSeconds must be 1\.\.8",
        ),
    ],
    ids=[
        "version",
        "no-start",
        "start-unknown",
        "duplicate-id",
        "dangling-target",
        "unreached-dangling-target",
        "unreached-unknown-type",
        "unreached-time-limit",
    ],
)
def test_load_flow_rejects_flows_connect_would_reject(
    tmp_path: Path, flow: dict[str, Any], message: str
) -> None:
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(flow), encoding="utf-8")

    with pytest.raises(FlowError, match=message) as raised:
        load_flow(path)
    assert str(raised.value).startswith(f"flow {path}: ")


def test_result_records_the_visited_path() -> None:
    flow = tiny_flow(say("hello", "hello", "bye"), say("bye", "bye"), END)

    result = run_flow(flow, make_contact(), answer({}))

    assert result == FlowResult(
        contact_id="11111111-2222-3333-4444-555555555555",
        prompts=["hello", "bye"],
        attributes={},
        external={},
        lambda_invocations=0,
        path=["hello", "bye", "end"],
        spoken=[Spoken("hello", "Joanna", "standard"), Spoken("bye", "Joanna", "standard")],
    )
