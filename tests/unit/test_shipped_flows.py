"""The two shipped contact flows run by the local interpreter (no AWS), with small fake Lambdas:
what a caller of the hotline and of the benefits line hears and what Connect would send to the
Lambda, not what the Lambdas do; and the flow files themselves.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from hotline_core.benefits import MAX_PIN_TRIES
from hotline_tools.local.flow import FlowResult, load_flow, run_flow
from tests.unit import flow_helpers
from tests.unit.flow_helpers import (
    CALLER,
    FLOW_DIR,
    GOODBYE,
    GREETING,
    HOTLINE_GREETING,
    NO_INPUT,
    NOT_REGISTERED,
    PIN_PROMPT,
    SMS_SENT,
    UNAVAILABLE,
    WRONG_PIN,
    FakeLambda,
    answer,
    failing_lambda,
    make_contact,
)

# Shared fixtures: pytest finds a fixture by its name in the test module.
benefits_flow, hotline_flow = flow_helpers.benefits_flow, flow_helpers.hotline_flow


def run_shipped(flow: dict[str, Any], contact: Any, invoke: Any, **options: Any) -> FlowResult:
    """A shipped flow first warms its Lambda up ASYNCHRONOUSLY (handed over, never waited
    on: `invoke` sees only the synchronous invocations), exactly once per call."""
    handed: list[dict[str, Any]] = []
    result = run_flow(
        flow, contact, invoke, invoke_async=lambda _arn, event: handed.append(event), **options
    )
    assert [event["Details"]["Parameters"] for event in handed] == [{"warm": "1"}]
    return result


# --- the hotline line -----------------------------------------------------------------------


def test_registered_caller_hears_the_lambda_prompt_and_is_hung_up_on(
    hotline_flow: dict[str, Any],
) -> None:
    call_request = answer(
        {"registered": "true", "prompt": "みずきさんに聞いてみますね。", "receiver_name": "みずき"}
    )

    result = run_shipped(hotline_flow, make_contact(), call_request)

    assert result.prompts == [HOTLINE_GREETING, "みずきさんに聞いてみますね。"]
    assert result.attributes == {"registered": "true"}
    assert result.external["receiver_name"] == "みずき"
    assert result.lambda_invocations == 1
    assert result.path[-2:] == ["announce-request", "disconnect"]
    assert result.voice == "Takumi"
    assert result.flow_logging is True
    arn, event = call_request.calls[0]
    assert arn == "${CallRequestFunctionAliaslive}"
    assert event["Details"]["ContactData"]["CustomerEndpoint"]["Address"] == CALLER
    assert event["Details"]["Parameters"] == {}


def test_unknown_caller_hears_the_not_registered_text_from_the_lambda(
    hotline_flow: dict[str, Any],
) -> None:
    call_request = answer({"registered": "false", "prompt": "この電話は登録されていません。"})

    result = run_shipped(hotline_flow, make_contact(caller="+819099999999"), call_request)

    assert result.prompts == [HOTLINE_GREETING, "この電話は登録されていません。"]
    assert result.attributes == {"registered": "false"}
    assert "announce-not-registered" in result.path
    assert result.path[-1] == "disconnect"


def test_lambda_error_plays_the_static_apology(hotline_flow: dict[str, Any]) -> None:
    result = run_shipped(hotline_flow, make_contact(), FakeLambda(failing_lambda))

    assert result.prompts == [HOTLINE_GREETING, UNAVAILABLE]
    assert "registered" not in result.attributes
    assert result.lambda_invocations == 1
    assert result.path[-2:] == ["announce-unavailable", "disconnect"]


def test_lambda_slower_than_the_time_limit_takes_the_error_branch(
    hotline_flow: dict[str, Any],
) -> None:
    release = threading.Event()

    def too_slow(_event: dict[str, Any]) -> dict[str, str]:
        release.wait(timeout=5)
        return {"registered": "true", "prompt": "late"}

    try:
        result = run_shipped(
            hotline_flow, make_contact(), FakeLambda(too_slow), lambda_time_limit_override=0.05
        )
    finally:
        release.set()

    assert result.prompts == [HOTLINE_GREETING, UNAVAILABLE]
    assert result.external == {}


@pytest.mark.parametrize(
    "response",
    [
        {"registered": True, "prompt": "a bool is not a string"},
        {"registered": "true", "prompt": {"nested": "object"}},
        ["registered", "true"],
        None,
        "true",
    ],
    ids=["bool-value", "nested-value", "list", "none", "string"],
)
def test_response_that_is_not_a_string_map_takes_the_error_branch(
    hotline_flow: dict[str, Any], response: Any
) -> None:
    result = run_shipped(hotline_flow, make_contact(), answer(response))

    assert result.prompts == [HOTLINE_GREETING, UNAVAILABLE]
    assert "registered" not in result.attributes


def test_unexpected_registered_value_falls_to_the_apology(hotline_flow: dict[str, Any]) -> None:
    result = run_shipped(
        hotline_flow, make_contact(), answer({"registered": "maybe", "prompt": "?"})
    )

    assert result.prompts == [HOTLINE_GREETING, UNAVAILABLE]
    assert result.attributes == {"registered": "maybe"}


# --- the benefits line ----------------------------------------------------------------------

MEMBERS = {CALLER: "M-0001"}
RIGHT_PIN = "1234"


def benefit_lambda(event: dict[str, Any]) -> dict[str, str]:
    """The benefits Lambda's contract: it hands back the `pinTries` the flow passes, counting
    every entry that failed, and says whether to ask again."""
    parameters = event["Details"]["Parameters"]
    if parameters["cmd"] == "getMemberId":
        phone = event["Details"]["ContactData"]["CustomerEndpoint"]["Address"]
        return {"memberId": MEMBERS.get(phone, "-1"), "pinTries": parameters["pinTries"]}
    granted = parameters["pinCode"] == RIGHT_PIN
    tries = int(parameters["pinTries"]) + (0 if granted else 1)
    return {
        "result": "Success" if granted else "Fail",
        "pinTries": str(tries),
        "askAgain": "true" if not granted and tries < MAX_PIN_TRIES else "false",
    }


def pins_sent(fake: FakeLambda) -> list[str]:
    """The entries checked as PINs. A timeout reaches the check too, as Connect's "Timeout"
    (so that the Lambda counts the try), but nothing was typed: it is not a PIN sent."""
    return [
        p["pinCode"] for p in fake.parameters if p["cmd"] == "sendSms" and p["pinCode"] != "Timeout"
    ]


def test_member_with_the_right_pin_is_told_to_check_sms(benefits_flow: dict[str, Any]) -> None:
    fake = FakeLambda(benefit_lambda)

    result = run_shipped(benefits_flow, make_contact(digits="1234#"), fake)

    assert result.prompts == [GREETING, PIN_PROMPT, SMS_SENT, GOODBYE]
    assert result.attributes == {"memberId": "M-0001"}
    assert fake.parameters == [
        {"cmd": "getMemberId", "pinTries": "0"},
        {"cmd": "sendSms", "pinCode": "1234", "pinTries": "0"},
    ]
    assert all(arn == "${BenefitRequestFunctionAliaslive}" for arn, _ in fake.calls)
    # The attribute set after the first invocation travels with the second one.
    assert fake.calls[1][1]["Details"]["ContactData"]["Attributes"] == {"memberId": "M-0001"}
    assert result.path[-1] == "disconnect"


def test_wrong_pin_then_right_pin(benefits_flow: dict[str, Any]) -> None:
    fake = FakeLambda(benefit_lambda)

    result = run_shipped(benefits_flow, make_contact(digits="9999#1234#"), fake)

    assert pins_sent(fake) == ["9999", "1234"]
    assert result.prompts == [GREETING, PIN_PROMPT, WRONG_PIN, PIN_PROMPT, SMS_SENT, GOODBYE]


def test_three_wrong_pins_end_the_call_without_a_fourth_try(
    benefits_flow: dict[str, Any],
) -> None:
    fake = FakeLambda(benefit_lambda)

    result = run_shipped(benefits_flow, make_contact(digits="1111#2222#3333#1234#"), fake)

    assert pins_sent(fake) == ["1111", "2222", "3333"]
    assert result.prompts.count(PIN_PROMPT) == 3
    assert result.prompts.count(WRONG_PIN) == 3
    assert SMS_SENT not in result.prompts
    assert result.prompts[-1] == GOODBYE
    assert result.lambda_invocations == 4


def test_caller_who_is_not_a_member_is_hung_up_on(benefits_flow: dict[str, Any]) -> None:
    fake = FakeLambda(benefit_lambda)

    result = run_shipped(benefits_flow, make_contact(digits="1234#", caller="+819088887777"), fake)

    assert result.prompts == [GREETING, NOT_REGISTERED]
    assert result.attributes == {"memberId": "-1"}
    assert pins_sent(fake) == []
    assert result.path[-1] == "disconnect"


def test_pin_timeouts_count_as_tries(benefits_flow: dict[str, Any]) -> None:
    fake = FakeLambda(benefit_lambda)

    result = run_shipped(benefits_flow, make_contact(digits=""), fake)

    assert result.prompts == [
        GREETING,
        PIN_PROMPT,
        NO_INPUT,
        PIN_PROMPT,
        NO_INPUT,
        PIN_PROMPT,
        NO_INPUT,
        GOODBYE,
    ]
    assert pins_sent(fake) == []
    # Each silence reaches the one PIN check as Connect's "Timeout", which counts the try.
    assert [p.get("pinCode") for p in fake.parameters[1:]] == ["Timeout"] * 3


def test_wrong_pin_then_silence(benefits_flow: dict[str, Any]) -> None:
    fake = FakeLambda(benefit_lambda)

    result = run_shipped(benefits_flow, make_contact(digits="5555#"), fake)

    assert pins_sent(fake) == ["5555"]
    assert result.prompts[2:] == [WRONG_PIN, PIN_PROMPT, NO_INPUT, PIN_PROMPT, NO_INPUT, GOODBYE]


def test_sms_lambda_error_plays_the_apology(benefits_flow: dict[str, Any]) -> None:
    def member_then_crash(event: dict[str, Any]) -> dict[str, str]:
        if event["Details"]["Parameters"]["cmd"] == "getMemberId":
            return {"memberId": "M-0001"}
        raise TimeoutError("SMS provider down")

    result = run_shipped(benefits_flow, make_contact(digits="1234#"), FakeLambda(member_then_crash))

    assert result.prompts == [GREETING, PIN_PROMPT, UNAVAILABLE]
    assert result.path[-1] == "disconnect"


def test_the_benefits_flow_asks_and_checks_the_pin_once_in_a_loop(
    benefits_flow: dict[str, Any],
) -> None:
    """One PIN prompt and one PIN check, looped on the count the Lambda hands back, not one
    copy per try; a caller who keeps typing is cut off after the third try."""
    actions = benefits_flow["Actions"]
    prompts = [a["Identifier"] for a in actions if a["Type"] == "GetParticipantInput"]
    invocations = sorted(
        (a["Parameters"]["LambdaInvocationAttributes"]["cmd"], a["Identifier"])
        for a in actions
        if a["Type"] == "InvokeLambdaFunction"
        and a["Parameters"].get("InvocationType", "SYNCHRONOUS") == "SYNCHRONOUS"
    )
    assert prompts == ["ask-pin"]
    assert invocations == [
        ("getMemberId", "invoke-get-member-id"),
        ("sendSms", "invoke-send-sms"),
    ]

    fake = FakeLambda(benefit_lambda)
    result = run_shipped(benefits_flow, make_contact(digits="1111#" * 10), fake)

    assert [p["pinTries"] for p in fake.parameters] == ["0", "0", "1", "2"]
    assert result.path.count("ask-pin") == result.path.count("invoke-send-sms") == 3
    assert result.prompts == [GREETING] + [PIN_PROMPT, WRONG_PIN] * 3 + [GOODBYE]


def test_a_lambda_that_does_not_say_ask_again_ends_the_loop(benefits_flow: dict[str, Any]) -> None:
    """The original contract ({"result": "Fail"} alone) is one try, never an endless loop."""

    def original_contract(event: dict[str, Any]) -> dict[str, str]:
        if event["Details"]["Parameters"]["cmd"] == "getMemberId":
            return {"memberId": "M-0001"}
        return {"result": "Fail"}

    result = run_shipped(
        benefits_flow, make_contact(digits="1111#" * 5), FakeLambda(original_contract)
    )

    assert result.prompts == [GREETING, PIN_PROMPT, WRONG_PIN, GOODBYE]


# --- the flow files themselves --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "placeholder"),
    [
        ("hotline", "${CallRequestFunctionAliaslive}"),
        ("benefits", "${BenefitRequestFunctionAliaslive}"),
    ],
)
def test_flow_file_has_only_its_lambda_placeholder_for_fn_sub(name: str, placeholder: str) -> None:
    # The template inlines these files with Fn::Sub: any other "${" would be substituted too.
    text = (FLOW_DIR / f"{name}.json").read_text(encoding="utf-8")

    assert text.count("${") == text.count(placeholder) >= 1


@pytest.mark.parametrize("name", ["hotline", "benefits"])
def test_every_action_is_reachable_from_the_start(name: str) -> None:
    flow = load_flow(FLOW_DIR / f"{name}.json")
    actions = {action["Identifier"]: action for action in flow["Actions"]}
    seen: set[str] = set()
    todo = [flow["StartAction"]]
    while todo:
        identifier = todo.pop()
        if identifier in seen:
            continue
        seen.add(identifier)
        transitions = actions[identifier]["Transitions"]
        todo += [transitions["NextAction"]] if "NextAction" in transitions else []
        todo += [b["NextAction"] for b in transitions.get("Conditions", [])]
        todo += [b["NextAction"] for b in transitions.get("Errors", [])]

    assert seen == set(actions)
