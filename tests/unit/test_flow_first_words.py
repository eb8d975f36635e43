"""The shipped contact flows speak before any synchronous Lambda can keep the caller in silence,
and the interpreter runs the voice and invocation parameters as the Flow language documents."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hotline_tools.local.flow import Contact, FlowError, load_flow, run_flow
from tests.unit.flow_helpers import END, invoke, on_error, tiny_flow

FLOW_DIR = Path(__file__).resolve().parents[2] / "contact_flow"
SHIPPED = sorted(FLOW_DIR.glob("*.json"))
# Actions that play a prompt to the caller (their Text or SSML is spoken).
SPEAKING = {"MessageParticipant", "GetParticipantInput"}


def _targets(action: dict[str, Any]) -> Iterator[str]:
    transitions = action.get("Transitions") or {}
    if isinstance(transitions.get("NextAction"), str):
        yield transitions["NextAction"]
    for branch in [*transitions.get("Conditions", []), *transitions.get("Errors", [])]:
        yield branch["NextAction"]


def silent_lambdas(flow: dict[str, Any]) -> list[list[str]]:
    """Every path from the start that reaches a synchronous InvokeLambdaFunction before any
    action has spoken (each path ends at that invocation)."""
    actions = {action["Identifier"]: action for action in flow["Actions"]}
    found: list[list[str]] = []

    def walk(identifier: str, path: list[str]) -> None:
        if identifier in path:
            return  # a loop that has not spoken yet adds no new path
        action = actions[identifier]
        path = [*path, identifier]
        kind = action["Type"]
        parameters = action.get("Parameters") or {}
        if kind in SPEAKING and ("Text" in parameters or "SSML" in parameters):
            return
        if kind == "InvokeLambdaFunction" and (
            parameters.get("InvocationType", "SYNCHRONOUS") == "SYNCHRONOUS"
        ):
            found.append(path)
            return
        for target in _targets(action):
            walk(target, path)

    walk(flow["StartAction"], [])
    return found


@pytest.mark.parametrize("path", SHIPPED, ids=[path.stem for path in SHIPPED])
def test_no_path_reaches_a_synchronous_lambda_before_the_first_prompt(path: Path) -> None:
    flow = load_flow(path)

    assert silent_lambdas(flow) == []


def test_the_walk_finds_a_lambda_invoked_before_the_greeting_on_any_branch() -> None:
    flow = {
        "StartAction": "voice",
        "Actions": [
            {
                "Identifier": "voice",
                "Type": "UpdateContactTextToSpeechVoice",
                "Parameters": {"TextToSpeechVoice": "Takumi"},
                "Transitions": {
                    "NextAction": "greet",
                    "Errors": [{"ErrorType": "NoMatchingError", "NextAction": "invoke"}],
                },
            },
            {"Identifier": "greet", "Type": "MessageParticipant", "Parameters": {"Text": "hi"}},
            {"Identifier": "invoke", "Type": "InvokeLambdaFunction", "Parameters": {}},
        ],
    }

    assert silent_lambdas(flow) == [["voice", "invoke"]]


# --- the interpreter: voice and invocation type ---------------------------------------------


def contact(customer_number: str | None = "+819011112222") -> Contact:
    return Contact(contact_id="c-1", customer_number=customer_number, system_number="+815012345678")


def voice_flow(**parameters: str) -> dict[str, Any]:
    return {
        "Version": "2019-10-30",
        "StartAction": "voice",
        "Actions": [
            {
                "Identifier": "voice",
                "Type": "UpdateContactTextToSpeechVoice",
                "Parameters": parameters,
                "Transitions": {
                    "NextAction": "ok",
                    "Errors": [{"ErrorType": "NoMatchingError", "NextAction": "failed"}],
                },
            },
            {
                "Identifier": "ok",
                "Type": "MessageParticipant",
                "Parameters": {"Text": "こんにちは"},
                "Transitions": {"NextAction": "end"},
            },
            {
                "Identifier": "failed",
                "Type": "MessageParticipant",
                "Parameters": {"Text": "fallback"},
                "Transitions": {"NextAction": "end"},
            },
            {"Identifier": "end", "Type": "DisconnectParticipant", "Parameters": {}},
        ],
    }


def no_lambda(_arn: str, _event: dict[str, Any]) -> Any:
    raise AssertionError("no Lambda in this flow")


def test_a_neural_voice_speaks_the_prompts_after_it() -> None:
    result = run_flow(
        voice_flow(TextToSpeechVoice="Kazuha", TextToSpeechEngine="Neural"), contact(), no_lambda
    )

    assert [(s.text, s.voice, s.engine) for s in result.spoken] == [
        ("こんにちは", "Kazuha", "neural")
    ]


def test_a_voice_without_the_engine_takes_the_error_branch_and_keeps_the_old_voice() -> None:
    # Mizuki has no neural voice: Connect "results in error if the selected voice does not
    # support the selected engine".
    result = run_flow(
        voice_flow(TextToSpeechVoice="Mizuki", TextToSpeechEngine="Neural"), contact(), no_lambda
    )

    assert result.prompts == ["fallback"]
    assert result.spoken[0].voice == "Joanna"


def test_a_voice_missing_from_the_local_table_is_not_guessed() -> None:
    with pytest.raises(FlowError, match="not in the local table"):
        run_flow(voice_flow(TextToSpeechVoice="Nobody"), contact(), no_lambda)


def test_a_voice_action_needs_its_error_branch() -> None:
    flow = voice_flow(TextToSpeechVoice="Takumi")
    del flow["Actions"][0]["Transitions"]["Errors"]

    with pytest.raises(FlowError, match="NoMatchingError branch must be defined"):
        run_flow(flow, contact(), no_lambda)


def _async_flow() -> dict[str, Any]:
    warm = invoke(
        "invoke",
        "end",
        errors=[on_error("NoMatchingError", "end")],
        InvocationType="ASYNCHRONOUS",
        LambdaInvocationAttributes={"warm": "1"},
    )
    return tiny_flow(warm, END)


def test_an_asynchronous_invocation_is_handed_over_and_the_flow_goes_on_at_once() -> None:
    handed: list[tuple[str, dict[str, Any]]] = []

    result = run_flow(
        _async_flow(),
        contact(),
        no_lambda,  # nothing waits on it: the synchronous invoker is never called
        invoke_async=lambda arn, event: handed.append((arn, event)),
    )

    assert [arn for arn, _ in handed] == ["arn:test"]
    assert handed[0][1]["Details"]["Parameters"] == {"warm": "1"}
    assert result.async_invocations == 1
    assert result.lambda_invocations == 0
    assert result.external == {}  # no result is loaded: $.External stays as it was
    assert result.path == ["invoke", "end"]


def test_an_asynchronous_invocation_without_anywhere_to_hand_it_is_an_error() -> None:
    with pytest.raises(FlowError, match="ASYNCHRONOUS invocation needs invoke_async"):
        run_flow(_async_flow(), contact(), no_lambda)


@pytest.mark.parametrize("path", SHIPPED, ids=[path.stem for path in SHIPPED])
def test_each_flow_warms_its_lambda_up_before_it_speaks_then_waits_on_it(path: Path) -> None:
    """The straight path from the start: an ASYNCHRONOUS warm-up of the function the flow
    later invokes synchronously comes before the first prompt, so its cold start runs while
    the greeting plays."""
    flow = load_flow(path)
    actions = {action["Identifier"]: action for action in flow["Actions"]}
    seen: list[dict[str, Any]] = []
    current: str | None = flow["StartAction"]
    while current is not None and len(seen) < len(actions):
        action = actions[current]
        seen.append(action)
        current = (action.get("Transitions") or {}).get("NextAction")
    kinds = [action["Type"] for action in seen]
    warm = seen[kinds.index("InvokeLambdaFunction")]["Parameters"]
    first_prompt = next(i for i, a in enumerate(seen) if a["Type"] in SPEAKING)
    assert kinds.index("InvokeLambdaFunction") < first_prompt
    assert warm["InvocationType"] == "ASYNCHRONOUS"
    assert warm["LambdaInvocationAttributes"] == {"warm": "1"}
    synchronous = [
        a["Parameters"]["LambdaFunctionARN"]
        for a in flow["Actions"]
        if a["Type"] == "InvokeLambdaFunction"
        and a["Parameters"].get("InvocationType", "SYNCHRONOUS") == "SYNCHRONOUS"
    ]
    assert synchronous and set(synchronous) == {warm["LambdaFunctionARN"]}


@pytest.mark.parametrize(
    ("number", "endpoint"),
    [
        (None, None),
        ("anonymous", {"Address": "anonymous", "Type": "TELEPHONE_NUMBER"}),
    ],
    ids=["no-caller-id", "anonymous"],
)
def test_a_withheld_number_reaches_the_lambda_as_connect_sends_it(
    number: str | None, endpoint: dict[str, str] | None
) -> None:
    events: list[dict[str, Any]] = []

    def record(_arn: str, event: dict[str, Any]) -> dict[str, str]:
        events.append(event)
        return {}

    flow = tiny_flow(invoke("invoke", "end", errors=[on_error("NoMatchingError", "end")]), END)

    run_flow(flow, contact(number), record)

    contact_data = events[0]["Details"]["ContactData"]
    assert contact_data.get("CustomerEndpoint") == endpoint
    assert ("CustomerEndpoint" in contact_data) is (endpoint is not None)
