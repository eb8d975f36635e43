"""Unit tests for the local contact-flow interpreter and the two shipped flows (no AWS).

The Lambdas are small fakes: these tests pin down what a caller hears and what Connect would
send to the Lambda, not what the Lambdas do.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hotline_core.benefits import MAX_PIN_TRIES
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

REPO = Path(__file__).resolve().parents[2]
FLOW_DIR = REPO / "contact_flow"
# A real Connect contact-flow event, kept in the repository.
EVENT_FIXTURE = REPO / "tests" / "events" / "connect-contact-flow-event.json"

CALLER = "+819011112222"
HOTLINE_NUMBER = "+815012345678"
UNAVAILABLE = "ただいまご利用いただけません。しばらくしてからおかけ直しください。"
PIN_PROMPT = "暗証番号を入力し、最後にシャープを押してください。"
GREETING = "お電話ありがとうございます。会員特典のご案内です。"
# The hotline's first words, played before its Lambda is invoked.
HOTLINE_GREETING = "お電話ありがとうございます。"
GOODBYE = "お電話ありがとうございました。失礼いたします。"
NO_INPUT = "入力が確認できませんでした。"
WRONG_PIN = "暗証番号が違います"
SMS_SENT = "SMSをご確認ください"
NOT_REGISTERED = "この電話番号は登録されていません"


class FakeLambda:
    """Records every invocation and answers with `respond(event)`."""

    def __init__(self, respond: Callable[[dict[str, Any]], Any]) -> None:
        self.respond = respond
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, arn: str, event: dict[str, Any]) -> Any:
        self.calls.append((arn, event))
        return self.respond(event)

    @property
    def parameters(self) -> list[dict[str, str]]:
        return [event["Details"]["Parameters"] for _, event in self.calls]


def answer(response: Any) -> FakeLambda:
    return FakeLambda(lambda _event: response)


def failing_lambda(_event: dict[str, Any]) -> Any:
    raise RuntimeError("function crashed")


def make_contact(digits: str = "", caller: str = CALLER, **attributes: str) -> Contact:
    return Contact(
        contact_id="11111111-2222-3333-4444-555555555555",
        customer_number=caller,
        system_number=HOTLINE_NUMBER,
        digits=digits,
        attributes=dict(attributes),
    )


def tiny_flow(*actions: dict[str, Any]) -> dict[str, Any]:
    return {
        "Version": "2019-10-30",
        "StartAction": actions[0]["Identifier"],
        "Actions": list(actions),
    }


def say(identifier: str, text: str, next_action: str = "end") -> dict[str, Any]:
    return {
        "Identifier": identifier,
        "Type": "MessageParticipant",
        "Parameters": {"Text": text},
        "Transitions": {"NextAction": next_action},
    }


END = {"Identifier": "end", "Type": "DisconnectParticipant", "Parameters": {}, "Transitions": {}}


def invoke(
    identifier: str,
    next_action: str,
    *,
    errors: list[dict[str, str]] | None = None,
    **parameters: Any,
) -> dict[str, Any]:
    return {
        "Identifier": identifier,
        "Type": "InvokeLambdaFunction",
        "Parameters": {"LambdaFunctionARN": "arn:test", **parameters},
        "Transitions": {
            "NextAction": next_action,
            "Errors": errors if errors is not None else [on_error("NoMatchingError", "failed")],
        },
    }


def on_error(error_type: str, target: str) -> dict[str, str]:
    return {"ErrorType": error_type, "NextAction": target}


def equals(value: str, target: str) -> dict[str, Any]:
    return {"NextAction": target, "Condition": {"Operator": "Equals", "Operands": [value]}}


def key_tree(value: Any) -> Any:
    """The nested keys of a JSON value, with None kept so null fields must stay null."""
    if isinstance(value, dict):
        return {key: key_tree(item) for key, item in value.items()}
    return None if value is None else type(value).__name__


@pytest.fixture(scope="module")
def hotline_flow() -> dict[str, Any]:
    return load_flow(FLOW_DIR / "hotline.json")


@pytest.fixture(scope="module")
def benefits_flow() -> dict[str, Any]:
    return load_flow(FLOW_DIR / "benefits.json")


# --- the hotline line -----------------------------------------------------------------------


def test_registered_caller_hears_the_lambda_prompt_and_is_hung_up_on(
    hotline_flow: dict[str, Any],
) -> None:
    call_request = answer(
        {"registered": "true", "prompt": "みずきさんに聞いてみますね。", "receiver_name": "みずき"}
    )

    result = run_flow(hotline_flow, make_contact(), call_request)

    assert result.prompts == [HOTLINE_GREETING, "みずきさんに聞いてみますね。"]
    assert result.attributes == {"registered": "true"}
    assert result.external["receiver_name"] == "みずき"
    assert result.lambda_invocations == 1
    assert result.path[-2:] == ["announce-request", "disconnect"]
    assert result.voice == "Takumi"
    assert result.flow_logging is True
    arn, event = call_request.calls[0]
    assert arn == "${CallRequestFunction.Arn}"
    assert event["Details"]["ContactData"]["CustomerEndpoint"]["Address"] == CALLER
    assert event["Details"]["Parameters"] == {}


def test_unknown_caller_hears_the_not_registered_text_from_the_lambda(
    hotline_flow: dict[str, Any],
) -> None:
    call_request = answer({"registered": "false", "prompt": "この電話は登録されていません。"})

    result = run_flow(hotline_flow, make_contact(caller="+819099999999"), call_request)

    assert result.prompts == [HOTLINE_GREETING, "この電話は登録されていません。"]
    assert result.attributes == {"registered": "false"}
    assert "announce-not-registered" in result.path
    assert result.path[-1] == "disconnect"


def test_lambda_error_plays_the_static_apology(hotline_flow: dict[str, Any]) -> None:
    result = run_flow(hotline_flow, make_contact(), FakeLambda(failing_lambda))

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
        result = run_flow(
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
    result = run_flow(hotline_flow, make_contact(), answer(response))

    assert result.prompts == [HOTLINE_GREETING, UNAVAILABLE]
    assert "registered" not in result.attributes


def test_unexpected_registered_value_falls_to_the_apology(hotline_flow: dict[str, Any]) -> None:
    result = run_flow(hotline_flow, make_contact(), answer({"registered": "maybe", "prompt": "?"}))

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

    result = run_flow(benefits_flow, make_contact(digits="1234#"), fake)

    assert result.prompts == [GREETING, PIN_PROMPT, SMS_SENT, GOODBYE]
    assert result.attributes == {"memberId": "M-0001"}
    assert fake.parameters == [
        {"cmd": "getMemberId", "pinTries": "0"},
        {"cmd": "sendSms", "pinCode": "1234", "pinTries": "0"},
    ]
    assert all(arn == "${BenefitRequestFunction.Arn}" for arn, _ in fake.calls)
    # The attribute set after the first invocation travels with the second one.
    assert fake.calls[1][1]["Details"]["ContactData"]["Attributes"] == {"memberId": "M-0001"}
    assert result.path[-1] == "disconnect"


def test_wrong_pin_then_right_pin(benefits_flow: dict[str, Any]) -> None:
    fake = FakeLambda(benefit_lambda)

    result = run_flow(benefits_flow, make_contact(digits="9999#1234#"), fake)

    assert pins_sent(fake) == ["9999", "1234"]
    assert result.prompts == [GREETING, PIN_PROMPT, WRONG_PIN, PIN_PROMPT, SMS_SENT, GOODBYE]


def test_three_wrong_pins_end_the_call_without_a_fourth_try(
    benefits_flow: dict[str, Any],
) -> None:
    fake = FakeLambda(benefit_lambda)

    result = run_flow(benefits_flow, make_contact(digits="1111#2222#3333#1234#"), fake)

    assert pins_sent(fake) == ["1111", "2222", "3333"]
    assert result.prompts.count(PIN_PROMPT) == 3
    assert result.prompts.count(WRONG_PIN) == 3
    assert SMS_SENT not in result.prompts
    assert result.prompts[-1] == GOODBYE
    assert result.lambda_invocations == 4


def test_caller_who_is_not_a_member_is_hung_up_on(benefits_flow: dict[str, Any]) -> None:
    fake = FakeLambda(benefit_lambda)

    result = run_flow(benefits_flow, make_contact(digits="1234#", caller="+819088887777"), fake)

    assert result.prompts == [GREETING, NOT_REGISTERED]
    assert result.attributes == {"memberId": "-1"}
    assert pins_sent(fake) == []
    assert result.path[-1] == "disconnect"


def test_pin_timeouts_count_as_tries(benefits_flow: dict[str, Any]) -> None:
    fake = FakeLambda(benefit_lambda)

    result = run_flow(benefits_flow, make_contact(digits=""), fake)

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

    result = run_flow(benefits_flow, make_contact(digits="5555#"), fake)

    assert pins_sent(fake) == ["5555"]
    assert result.prompts[2:] == [WRONG_PIN, PIN_PROMPT, NO_INPUT, PIN_PROMPT, NO_INPUT, GOODBYE]


def test_sms_lambda_error_plays_the_apology(benefits_flow: dict[str, Any]) -> None:
    def member_then_crash(event: dict[str, Any]) -> dict[str, str]:
        if event["Details"]["Parameters"]["cmd"] == "getMemberId":
            return {"memberId": "M-0001"}
        raise TimeoutError("SMS provider down")

    result = run_flow(benefits_flow, make_contact(digits="1234#"), FakeLambda(member_then_crash))

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
    )
    assert prompts == ["ask-pin"]
    assert invocations == [
        ("getMemberId", "invoke-get-member-id"),
        ("sendSms", "invoke-send-sms"),
    ]

    fake = FakeLambda(benefit_lambda)
    result = run_flow(benefits_flow, make_contact(digits="1111#" * 10), fake)

    assert [p["pinTries"] for p in fake.parameters] == ["0", "0", "1", "2"]
    assert result.path.count("ask-pin") == result.path.count("invoke-send-sms") == 3
    assert result.prompts == [GREETING] + [PIN_PROMPT, WRONG_PIN] * 3 + [GOODBYE]


def test_a_lambda_that_does_not_say_ask_again_ends_the_loop(benefits_flow: dict[str, Any]) -> None:
    """The original contract ({"result": "Fail"} alone) is one try, never an endless loop."""

    def original_contract(event: dict[str, Any]) -> dict[str, str]:
        if event["Details"]["Parameters"]["cmd"] == "getMemberId":
            return {"memberId": "M-0001"}
        return {"result": "Fail"}

    result = run_flow(
        benefits_flow, make_contact(digits="1111#" * 5), FakeLambda(original_contract)
    )

    assert result.prompts == [GREETING, PIN_PROMPT, WRONG_PIN, GOODBYE]


# --- the flow files themselves --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "placeholder"),
    [("hotline", "${CallRequestFunction.Arn}"), ("benefits", "${BenefitRequestFunction.Arn}")],
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


def test_asynchronous_invocation_is_refused_rather_than_run_synchronously() -> None:
    flow = tiny_flow(invoke("call", "end", InvocationType="ASYNCHRONOUS"), END)

    with pytest.raises(FlowError, match="SYNCHRONOUS"):
        run_flow(flow, make_contact(), answer({}))


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
