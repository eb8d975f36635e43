"""What the contact-flow tests share: what the shipped flows say, a recording fake Lambda,
contacts, tiny flows built from a few actions, and the two shipped flows, loaded once per test
module."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hotline_tools.local.flow import Contact, load_flow

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
