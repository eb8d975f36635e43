"""Run Amazon Connect contact flows (Flow language 2019-10-30) locally, as Connect would.

The local runtime feeds `contact_flow/*.json` through `run_flow` so that the same flow JSON
that ships to Amazon Connect decides what a simulated caller hears and which Lambda is invoked
with which event. Anything this interpreter cannot run faithfully is a `FlowError`, never a
silent skip: a flow that "works locally" must not be one Connect would run differently.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hotline_tools.local.template import ACCOUNT, REGION

__all__ = [
    "DEFAULT_MAX_STEPS",
    "FLOW_LANGUAGE_VERSION",
    "LOCAL_INSTANCE_ARN",
    "POLLY_VOICES",
    "Contact",
    "FlowError",
    "FlowResult",
    "LambdaInvoker",
    "Spoken",
    "load_flow",
    "run_flow",
]

logger = logging.getLogger(__name__)

FLOW_LANGUAGE_VERSION = "2019-10-30"
LOCAL_INSTANCE_ARN = (
    f"arn:aws:connect:{REGION}:{ACCOUNT}:instance/00000000-0000-0000-0000-000000000000"
)
DEFAULT_MAX_STEPS = 200

# Connect rejects InvocationTimeLimitSeconds outside 1..8. Without one it waits 3 seconds, the
# block's documented default Timeout ("The default Timeout setting is 3 seconds. The maximum
# Timeout setting is 8 seconds": AWS Knowledge Center, connect-lambda-function-failures).
_MAX_LAMBDA_SECONDS = 8
_DEFAULT_LAMBDA_SECONDS = 3
# Connect refuses Lambda responses of 32 KB or more (UTF-8 JSON) and takes the error branch.
_MAX_LAMBDA_RESPONSE_BYTES = 32 * 1024
# Amazon Connect's default text-to-speech voice until UpdateContactTextToSpeechVoice runs
# ("This defaults to Joanna if this action is never run": Flow language reference,
# UpdateContactTextToSpeechVoice).
_DEFAULT_VOICE = "Joanna"
_DEFAULT_ENGINE = "standard"
# The Amazon Polly voices a flow may name here, with their language and the engines Polly
# documents for them (Amazon Polly Developer Guide, "Available voices"). Connect takes the
# error branch when "voice or engine are invalid, or if the selected voice does not support
# the selected engine" (UpdateContactTextToSpeechVoice); a voice missing from this table is a
# FlowError rather than a guess.
POLLY_VOICES: dict[str, tuple[str, frozenset[str]]] = {
    "Joanna": ("en-US", frozenset({"standard", "neural"})),
    "Matthew": ("en-US", frozenset({"standard", "neural"})),
    "Mizuki": ("ja-JP", frozenset({"standard"})),
    "Takumi": ("ja-JP", frozenset({"standard", "neural"})),
    "Kazuha": ("ja-JP", frozenset({"neural"})),
    "Tomoko": ("ja-JP", frozenset({"neural"})),
}
_ENGINES = {"standard", "neural", "generative", "long-form"}
# What Connect's "Store customer input" stores when the caller types nothing (see _get_input).
_STORED_INPUT_TIMEOUT = "Timeout"

_NO_MATCHING_ERROR = "NoMatchingError"
_NO_MATCHING_CONDITION = "NoMatchingCondition"
_INPUT_TIME_LIMIT_EXCEEDED = "InputTimeLimitExceeded"

# JSONPath references Connect substitutes into text, both as a whole value ("$.External.x")
# and embedded in a sentence ("Hello $.Attributes.name."). Attribute keys are letters, digits,
# "_" and "-", so the key stops at the first other character (a full stop, a Japanese word).
_REFERENCE = re.compile(
    r"\$\.(?:(?P<namespace>External|Attributes)\.(?P<key>[A-Za-z0-9_\-]+)"
    r"|(?P<system>StoredCustomerInput|CustomerEndpoint\.Address|SystemEndpoint\.Address"
    r"|ContactId)(?![A-Za-z0-9_]))"
)

LambdaInvoker = Callable[[str, dict[str, Any]], Any]
"""(function ARN exactly as written in the flow, the Connect event) -> the Lambda's response.

Raising means the invocation failed (as a Lambda error would); the flow takes its error branch.
"""
AsyncLambdaInvoker = Callable[[str, dict[str, Any]], None]
"""(function ARN as written in the flow, the Connect event): hand an ASYNCHRONOUS invocation
over to Lambda; returns at once, whatever the function later does."""


class FlowError(Exception):
    """A flow this interpreter cannot run: bad structure, unknown action, missing branch."""


@dataclass
class Contact:
    """One inbound voice call: who calls, which number they dialled, what they will press.

    `customer_number` None is a call with no caller ID at all: Connect then sends no
    CustomerEndpoint. A withheld number that the carrier names ("anonymous") is passed as it is.
    """

    contact_id: str
    customer_number: str | None
    system_number: str
    digits: str = ""
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Spoken:
    """One prompt as the caller heard it: its text and the Polly voice that spoke it."""

    text: str
    voice: str
    engine: str


@dataclass
class FlowResult:
    """What happened on the call, in the order the caller experienced it."""

    contact_id: str
    prompts: list[str]
    attributes: dict[str, str]
    external: dict[str, str]
    lambda_invocations: int  # synchronous: the caller waited on each
    path: list[str]
    async_invocations: int = 0  # ASYNCHRONOUS: handed over, nobody waited
    voice: str = _DEFAULT_VOICE
    flow_logging: bool = False
    spoken: list[Spoken] = field(default_factory=list)


@dataclass
class _CallState:
    """Mutable state of one run: the flow data Connect keeps per contact, plus our records."""

    contact: Contact
    attributes: dict[str, str]
    external: dict[str, Any] = field(default_factory=dict)
    stored_input: str = ""
    digits_left: str = ""
    prompts: list[str] = field(default_factory=list)
    spoken: list[Spoken] = field(default_factory=list)
    path: list[str] = field(default_factory=list)
    lambda_invocations: int = 0
    async_invocations: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    voice: str = _DEFAULT_VOICE
    engine: str = _DEFAULT_ENGINE
    flow_logging: bool = False

    def say(self, text: str) -> None:
        self.prompts.append(text)
        self.spoken.append(Spoken(text=text, voice=self.voice, engine=self.engine))


@dataclass(frozen=True)
class _Step:
    """How an action ended: go to `next_action`, take an error branch, or end the call."""

    next_action: str | None = None
    error: str | None = None
    ends_call: bool = False


def load_flow(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a flow file and check, for every action whether a call reaches it or not, what
    Connect would reject or this interpreter could not run, before the first call.

    Besides the version, start action and unique identifiers, every action's Type must be one
    this interpreter runs, every transition target must exist (Connect refuses to save such a
    flow, so a typo fails here, not mid-call) and a Lambda's time limit must be 1..8 seconds.
    Every error names the file.
    """
    where = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as handle:
            flow = json.load(handle)
    except (OSError, json.JSONDecodeError) as exc:
        raise FlowError(f"cannot read flow {where!r}: {exc}") from exc
    try:
        actions = _index_actions(flow)
        for identifier, action in actions.items():
            action_type = action.get("Type")
            if action_type != "InvokeLambdaFunction" and action_type not in _HANDLERS:
                raise FlowError(_unsupported(action))
            if action_type == "InvokeLambdaFunction":
                _time_limit(_parameters(action), identifier)
            for target in _transition_targets(action):
                if target not in actions:
                    raise FlowError(
                        f"action {identifier!r} ({action_type}) transitions to unknown action "
                        f"{target!r}"
                    )
    except FlowError as exc:
        raise FlowError(f"flow {where}: {exc}") from exc
    checked: dict[str, Any] = flow
    return checked


def run_flow(
    flow: dict[str, Any],
    contact: Contact,
    invoke_lambda: LambdaInvoker,
    *,
    invoke_async: AsyncLambdaInvoker | None = None,
    lambda_time_limit_override: float | None = None,
    max_steps: int = DEFAULT_MAX_STEPS,
) -> FlowResult:
    """Run `flow` for one inbound call until it disconnects.

    `invoke_async` takes each ASYNCHRONOUS invocation (the flow goes on at once, as in
    Connect); a flow that has one fails without it.

    `lambda_time_limit_override` replaces every InvocationTimeLimitSeconds (tests use a
    fraction of a second to exercise the timeout branch quickly). `max_steps` bounds the
    number of actions so that a flow looping on itself fails instead of hanging.
    """
    if lambda_time_limit_override is not None and lambda_time_limit_override <= 0:
        raise ValueError("lambda_time_limit_override must be positive")
    actions = _index_actions(flow)
    state = _CallState(
        contact=contact,
        attributes=dict(contact.attributes),
        digits_left=contact.digits,
    )
    current: str = flow["StartAction"]
    while True:
        if len(state.path) >= max_steps:
            raise FlowError(
                f"flow still running after {max_steps} actions (last: {current!r}); is it looping?"
            )
        action = actions.get(current)
        if action is None:
            previous = state.path[-1] if state.path else "StartAction"
            raise FlowError(f"{previous!r} transitions to unknown action {current!r}")
        state.path.append(current)
        step = _run_action(action, state, invoke_lambda, lambda_time_limit_override, invoke_async)
        if step.ends_call:
            break
        if step.error is not None:
            current = _error_target(action, step.error)
        elif step.next_action is not None:
            current = step.next_action
        else:
            raise FlowError(f"action {current!r} has no NextAction and does not end the call")
    return FlowResult(
        contact_id=contact.contact_id,
        prompts=state.prompts,
        attributes=state.attributes,
        external={key: _as_text(value) for key, value in state.external.items()},
        lambda_invocations=state.lambda_invocations,
        async_invocations=len(state.async_invocations),
        path=state.path,
        voice=state.voice,
        flow_logging=state.flow_logging,
        spoken=state.spoken,
    )


# --- flow structure -------------------------------------------------------------------------


def _index_actions(flow: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(flow, dict):
        raise FlowError("a flow is a JSON object")
    if flow.get("Version") != FLOW_LANGUAGE_VERSION:
        raise FlowError(
            f"unsupported flow Version {flow.get('Version')!r}; expected {FLOW_LANGUAGE_VERSION!r}"
        )
    raw_actions = flow.get("Actions")
    if not isinstance(raw_actions, list) or not raw_actions:
        raise FlowError("flow has no Actions")
    actions: dict[str, dict[str, Any]] = {}
    for action in raw_actions:
        if not isinstance(action, dict) or not isinstance(action.get("Identifier"), str):
            raise FlowError(f"every action needs a string Identifier: {action!r}")
        identifier: str = action["Identifier"]
        if identifier in actions:
            raise FlowError(f"duplicate action Identifier {identifier!r}")
        _transition_targets(action)  # checks the branch shapes; targets are checked lazily
        actions[identifier] = action
    start = flow.get("StartAction")
    if not isinstance(start, str) or not start:
        raise FlowError("flow has no StartAction")
    if start not in actions:
        raise FlowError(f"StartAction {start!r} is not the Identifier of any action")
    return actions


def _transitions(action: Mapping[str, Any]) -> dict[str, Any]:
    transitions = action.get("Transitions") or {}
    if not isinstance(transitions, dict):
        raise FlowError(f"action {action['Identifier']!r}: Transitions must be an object")
    return transitions


def _transition_targets(action: Mapping[str, Any]) -> list[str]:
    transitions = _transitions(action)
    targets: list[str] = []
    if isinstance(transitions.get("NextAction"), str):
        targets.append(transitions["NextAction"])
    branches = [*transitions.get("Conditions", []), *transitions.get("Errors", [])]
    for branch in branches:
        if not isinstance(branch, dict) or not isinstance(branch.get("NextAction"), str):
            raise FlowError(f"action {action['Identifier']!r}: branch without NextAction")
        targets.append(branch["NextAction"])
    return targets


def _error_target(action: Mapping[str, Any], error_type: str) -> str:
    """Connect's rule: the branch for this ErrorType, else the NoMatchingError catch-all."""
    errors = _transitions(action).get("Errors", [])
    for wanted in (error_type, _NO_MATCHING_ERROR):
        for branch in errors:
            if branch.get("ErrorType") == wanted:
                target: str = branch["NextAction"]
                return target
    raise FlowError(
        f"action {action['Identifier']!r} ({action.get('Type')}) raised {error_type} "
        f"but defines neither a {error_type} nor a {_NO_MATCHING_ERROR} branch"
    )


def _next_action(action: Mapping[str, Any]) -> _Step:
    return _Step(next_action=_transitions(action).get("NextAction"))


def _parameters(action: Mapping[str, Any]) -> dict[str, Any]:
    parameters = action.get("Parameters") or {}
    if not isinstance(parameters, dict):
        raise FlowError(f"action {action['Identifier']!r}: Parameters must be an object")
    return parameters


# --- references -----------------------------------------------------------------------------


def _as_text(value: Any) -> str:
    # JSON-validated responses may nest; text and attributes only ever hold strings.
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _resolve(value: Any, state: _CallState, action: Mapping[str, Any]) -> str:
    """Substitute every reference in `value`; a reference to nothing becomes empty text."""
    if not isinstance(value, str):
        raise FlowError(
            f"action {action['Identifier']!r} ({action.get('Type')}): expected a string "
            f"parameter, got {value!r}"
        )

    def substitute(match: re.Match[str]) -> str:
        namespace, key, system = match.group("namespace", "key", "system")
        if namespace == "External":
            return _as_text(state.external.get(key, ""))
        if namespace == "Attributes":
            return state.attributes.get(key, "")
        system_values = {
            "StoredCustomerInput": state.stored_input,
            "CustomerEndpoint.Address": state.contact.customer_number or "",
            "SystemEndpoint.Address": state.contact.system_number,
            "ContactId": state.contact.contact_id,
        }
        return system_values[system]

    return _REFERENCE.sub(substitute, value)


def _spoken_text(action: Mapping[str, Any], state: _CallState) -> str:
    parameters = _parameters(action)
    for key in ("Text", "SSML"):
        if key in parameters:
            return _resolve(parameters[key], state, action)
    raise FlowError(
        f"action {action['Identifier']!r} ({action['Type']}): only Text or SSML prompts "
        "can be played locally"
    )


# --- actions --------------------------------------------------------------------------------


def _run_action(
    action: dict[str, Any],
    state: _CallState,
    invoke_lambda: LambdaInvoker,
    lambda_time_limit_override: float | None,
    invoke_async: AsyncLambdaInvoker | None,
) -> _Step:
    action_type = action.get("Type")
    if action_type == "InvokeLambdaFunction":
        return _invoke_lambda(
            action, state, invoke_lambda, lambda_time_limit_override, invoke_async
        )
    handler = _HANDLERS.get(action_type) if isinstance(action_type, str) else None
    if handler is None:
        raise FlowError(_unsupported(action))
    return handler(action, state)


def _unsupported(action: Mapping[str, Any]) -> str:
    return (
        f"unsupported action Type {action.get('Type')!r} (Identifier "
        f"{action['Identifier']!r}): the local runtime runs "
        f"{', '.join(sorted([*_HANDLERS, 'InvokeLambdaFunction']))}"
    )


def _message_participant(action: dict[str, Any], state: _CallState) -> _Step:
    state.say(_spoken_text(action, state))
    return _next_action(action)


def _disconnect(action: dict[str, Any], state: _CallState) -> _Step:
    return _Step(ends_call=True)


def _update_voice(action: dict[str, Any], state: _CallState) -> _Step:
    """UpdateContactTextToSpeechVoice: TextToSpeechVoice, TextToSpeechEngine and
    TextToSpeechStyle "may be defined statically or dynamically"; the action "results in error
    if voice or engine are invalid, or if the selected voice does not support the selected
    engine", and its NoMatchingError branch "must always be defined" (Flow language reference).
    On that error the voice in effect stays as it was."""
    parameters = _parameters(action)
    identifier = action["Identifier"]
    if "TextToSpeechVoice" not in parameters:
        raise FlowError(f"action {identifier!r}: TextToSpeechVoice is required")
    if not any(
        branch.get("ErrorType") == _NO_MATCHING_ERROR
        for branch in _transitions(action).get("Errors", [])
    ):
        raise FlowError(f"action {identifier!r}: a NoMatchingError branch must be defined")
    voice = _resolve(parameters["TextToSpeechVoice"], state, action)
    engine = _resolve(parameters.get("TextToSpeechEngine", _DEFAULT_ENGINE), state, action)
    style = _resolve(parameters.get("TextToSpeechStyle", "None"), state, action)
    engine = engine.lower() or _DEFAULT_ENGINE
    if style not in ("None", "Conversational", "Newscaster"):
        return _Step(error=_NO_MATCHING_ERROR)
    if engine not in _ENGINES:
        return _Step(error=_NO_MATCHING_ERROR)
    known = POLLY_VOICES.get(voice)
    if known is None:
        if not voice:
            return _Step(error=_NO_MATCHING_ERROR)
        raise FlowError(
            f"action {identifier!r}: voice {voice!r} is not in the local table of Polly voices "
            f"({', '.join(sorted(POLLY_VOICES))}); add it with its language and engines"
        )
    if engine not in known[1]:
        return _Step(error=_NO_MATCHING_ERROR)
    state.voice, state.engine = voice, engine
    return _next_action(action)


def _update_logging(action: dict[str, Any], state: _CallState) -> _Step:
    behavior = _parameters(action).get("FlowLoggingBehavior")
    if behavior not in ("Enabled", "Disabled"):
        raise FlowError(
            f"action {action['Identifier']!r}: FlowLoggingBehavior must be Enabled or Disabled"
        )
    state.flow_logging = behavior == "Enabled"
    return _next_action(action)


def _update_attributes(action: dict[str, Any], state: _CallState) -> _Step:
    parameters = _parameters(action)
    target = parameters.get("TargetContact", "Current")
    if target != "Current":
        raise FlowError(
            f"action {action['Identifier']!r}: TargetContact {target!r} is not supported locally"
        )
    attributes = parameters.get("Attributes")
    if not isinstance(attributes, dict):
        raise FlowError(f"action {action['Identifier']!r}: Attributes must be an object")
    # Resolve every value before writing any, as Connect sets them together.
    resolved = {key: _resolve(value, state, action) for key, value in attributes.items()}
    state.attributes.update(resolved)
    return _next_action(action)


def _condition_matches(condition: Mapping[str, Any], value: str, where: str) -> bool:
    operator = condition.get("Operator")
    operands = condition.get("Operands")
    if not isinstance(operands, list) or not all(isinstance(op, str) for op in operands):
        raise FlowError(f"{where}: condition Operands must be a list of strings")
    if operator == "Equals":
        return value in operands
    text_tests: dict[str, Callable[[str, str], bool]] = {
        "TextStartsWith": str.startswith,
        "TextEndsWith": str.endswith,
        "TextContains": str.__contains__,
    }
    if operator in text_tests:
        return any(text_tests[operator](value, operand) for operand in operands)
    number_tests: dict[str, Callable[[float, float], bool]] = {
        "NumberGreaterThan": lambda a, b: a > b,
        "NumberGreaterOrEqualTo": lambda a, b: a >= b,
        "NumberLessThan": lambda a, b: a < b,
        "NumberLessOrEqualTo": lambda a, b: a <= b,
    }
    if operator in number_tests:
        try:
            number = float(value)
            limits = [float(operand) for operand in operands]
        except ValueError:
            # Text is not a number: the condition is simply false, as in Connect.
            return False
        return any(number_tests[operator](number, limit) for limit in limits)
    raise FlowError(f"{where}: unsupported condition Operator {operator!r}")


def _first_matching_condition(action: Mapping[str, Any], value: str) -> _Step:
    where = f"action {action['Identifier']!r}"
    for branch in _transitions(action).get("Conditions", []):
        if _condition_matches(branch.get("Condition") or {}, value, where):
            return _Step(next_action=branch["NextAction"])
    return _Step(error=_NO_MATCHING_CONDITION)


def _compare(action: dict[str, Any], state: _CallState) -> _Step:
    value = _resolve(_parameters(action).get("ComparisonValue"), state, action)
    return _first_matching_condition(action, value)


def _get_input(action: dict[str, Any], state: _CallState) -> _Step:
    parameters = _parameters(action)
    identifier = action["Identifier"]
    state.say(_spoken_text(action, state))
    store_input = parameters.get("StoreInput", "False")
    if store_input not in ("True", "False"):
        raise FlowError(f"action {identifier!r}: StoreInput must be 'True' or 'False'")

    if store_input == "False":
        # A menu: Connect takes a single key press and routes on it.
        for branch in _transitions(action).get("Conditions", []):
            if (branch.get("Condition") or {}).get("Operator") != "Equals":
                raise FlowError(f"action {identifier!r}: menu conditions only support Equals")
        if not state.digits_left:
            return _Step(error=_INPUT_TIME_LIMIT_EXCEEDED)
        pressed, state.digits_left = state.digits_left[0], state.digits_left[1:]
        return _first_matching_condition(action, pressed)

    validation = parameters.get("InputValidation") or {}
    if "CustomValidation" not in validation or "InputEncryption" in parameters:
        # Phone-number validation and encryption change what is stored; faking them would
        # let a flow pass locally that behaves differently on Connect.
        raise FlowError(
            f"action {identifier!r}: stored input is only supported with CustomValidation "
            "and without InputEncryption"
        )
    try:
        maximum = int(validation["CustomValidation"]["MaximumLength"])
    except (KeyError, TypeError, ValueError) as exc:
        raise FlowError(f"action {identifier!r}: MaximumLength must be a number") from exc
    terminator = (parameters.get("DTMFConfiguration") or {}).get("InputTerminationSequence", "#")

    if not state.digits_left:
        # The caller typed nothing. The Flow language names this InputTimeLimitExceeded, but
        # Connect's "Store customer input" block documents success with "Timeout" stored, and
        # console exports define no such branch; honour whichever the flow was written for.
        if any(
            branch.get("ErrorType") == _INPUT_TIME_LIMIT_EXCEEDED
            for branch in _transitions(action).get("Errors", [])
        ):
            return _Step(error=_INPUT_TIME_LIMIT_EXCEEDED)
        state.stored_input = _STORED_INPUT_TIMEOUT
        return _next_action(action)

    entered, rest = _take_entry(state.digits_left, terminator, maximum)
    state.stored_input = entered
    state.digits_left = rest
    return _next_action(action)


def _take_entry(digits: str, terminator: str, maximum: int) -> tuple[str, str]:
    """Split one stored-input entry off the keys the caller will press.

    Input ends at the terminator (consumed, not stored), at the end of the keys, or when
    MaximumLength digits are in. A terminator typed right after a full-length entry still
    belongs to that entry, so "12345678#" means the same whatever the maximum is.
    """
    position = digits.find(terminator) if terminator else -1
    if 0 <= position <= maximum:
        return digits[:position], digits[position + len(terminator) :]
    entered, rest = digits[:maximum], digits[maximum:]
    if terminator and rest.startswith(terminator):
        rest = rest[len(terminator) :]
    return entered, rest


@dataclass
class _LambdaOutcome:
    response: Any = None
    failure: BaseException | None = None


def _invoke_lambda(
    action: dict[str, Any],
    state: _CallState,
    invoke_lambda: LambdaInvoker,
    lambda_time_limit_override: float | None,
    invoke_async: AsyncLambdaInvoker | None,
) -> _Step:
    parameters = _parameters(action)
    identifier = action["Identifier"]
    arn = parameters.get("LambdaFunctionARN")
    if not isinstance(arn, str) or not arn:
        raise FlowError(f"action {identifier!r}: LambdaFunctionARN is required")
    invocation_type = parameters.get("InvocationType", "SYNCHRONOUS")
    if invocation_type not in ("SYNCHRONOUS", "ASYNCHRONOUS"):
        raise FlowError(f"action {identifier!r}: unknown InvocationType {invocation_type!r}")
    time_limit = _time_limit(parameters, identifier)
    if lambda_time_limit_override is not None:
        time_limit = lambda_time_limit_override
    response_type = (parameters.get("ResponseValidation") or {}).get("ResponseType", "STRING_MAP")
    if response_type not in ("STRING_MAP", "JSON"):
        raise FlowError(f"action {identifier!r}: unknown ResponseType {response_type!r}")
    invocation_attributes = parameters.get("LambdaInvocationAttributes") or {}
    if not isinstance(invocation_attributes, dict):
        raise FlowError(f"action {identifier!r}: LambdaInvocationAttributes must be an object")

    event = _contact_flow_event(
        state,
        {key: _resolve(value, state, action) for key, value in invocation_attributes.items()},
    )
    if invocation_type == "ASYNCHRONOUS":
        # "The contact is routed to the next block without waiting for the Lambda to
        # complete" (admin guide, AWS Lambda function block, Execution mode). The Flow
        # language documents no action that waits for or loads its result on a voice
        # contact (its Wait action's Events are "CustomerReturned" and
        # "BotParticipantDisconnected", chat only), so $.External is left as it was and the
        # invocation is handed to `invoke_async` (the runtime puts it in Lambda's queue of
        # asynchronous invocations). The flows use it only to warm the function up while
        # the greeting plays.
        state.async_invocations.append((arn, event))
        if invoke_async is None:
            raise FlowError(f"action {identifier!r}: an ASYNCHRONOUS invocation needs invoke_async")
        invoke_async(arn, event)
        return _next_action(action)
    state.lambda_invocations += 1
    outcome = _call_with_time_limit(invoke_lambda, arn, event, time_limit, identifier)
    problem = _response_problem(outcome, time_limit, response_type)
    if problem is not None:
        logger.warning("flow action %s: Lambda %s failed: %s", identifier, arn, problem)
        return _Step(error=_NO_MATCHING_ERROR)
    assert outcome is not None  # _response_problem reports a missing outcome
    # Each successful invocation replaces $.External wholesale, as in Connect.
    state.external = dict(outcome.response)
    return _next_action(action)


def _time_limit(parameters: Mapping[str, Any], identifier: str) -> float:
    raw = parameters.get("InvocationTimeLimitSeconds", str(_DEFAULT_LAMBDA_SECONDS))
    try:
        seconds = int(raw)
    except (TypeError, ValueError) as exc:
        raise FlowError(
            f"action {identifier!r}: InvocationTimeLimitSeconds must be an integer"
        ) from exc
    if not 1 <= seconds <= _MAX_LAMBDA_SECONDS:
        raise FlowError(
            f"action {identifier!r}: InvocationTimeLimitSeconds must be 1..{_MAX_LAMBDA_SECONDS}"
        )
    return float(seconds)


def _contact_flow_event(state: _CallState, parameters: dict[str, str]) -> dict[str, Any]:
    """The event Connect sends to a Lambda: same keys as a real ContactFlowEvent."""
    contact = state.contact
    contact_data: dict[str, Any] = {
        "Attributes": dict(state.attributes),
        "Channel": "VOICE",
        "ContactId": contact.contact_id,
        "CustomerEndpoint": {
            "Address": contact.customer_number,
            "Type": "TELEPHONE_NUMBER",
        },
        # A fresh inbound call is its own initial and previous contact.
        "InitialContactId": contact.contact_id,
        "InitiationMethod": "INBOUND",
        "InstanceARN": LOCAL_INSTANCE_ARN,
        "MediaStreams": None,
        "PreviousContactId": contact.contact_id,
        "Queue": None,
        "SystemEndpoint": {
            "Address": contact.system_number,
            "Type": "TELEPHONE_NUMBER",
        },
    }
    if contact.customer_number is None:
        # No caller ID at all: the contact has no CustomerEndpoint.
        del contact_data["CustomerEndpoint"]
    return {
        "Details": {"ContactData": contact_data, "Parameters": parameters},
        "Name": "ContactFlowEvent",
    }


def _call_with_time_limit(
    invoke_lambda: LambdaInvoker,
    arn: str,
    event: dict[str, Any],
    time_limit: float,
    identifier: str,
) -> _LambdaOutcome | None:
    """Run the invoker in a worker thread; None when it is still running at the limit.

    The thread is a daemon because a Python call cannot be cancelled: Connect likewise stops
    waiting without stopping the Lambda, and a stuck invoker must not keep the process alive.
    """
    outcome = _LambdaOutcome()
    # The Lambda gets its own copy, so it cannot reach into this contact's state.
    event_copy = copy.deepcopy(event)

    def call() -> None:
        try:
            outcome.response = invoke_lambda(arn, event_copy)
        except Exception as exc:  # noqa: BLE001 - any Lambda failure is the error branch
            outcome.failure = exc

    worker = threading.Thread(target=call, name=f"lambda-{identifier}", daemon=True)
    worker.start()
    worker.join(time_limit)
    return None if worker.is_alive() else outcome


def _response_problem(
    outcome: _LambdaOutcome | None, time_limit: float, response_type: str
) -> str | None:
    """Why Connect would reject this Lambda result, or None when it would accept it."""
    if outcome is None:
        return f"no response within {time_limit:g} s"
    if outcome.failure is not None:
        return f"raised {outcome.failure!r}"
    response = outcome.response
    if not isinstance(response, dict) or not all(isinstance(key, str) for key in response):
        return f"response is not a JSON object: {response!r}"
    if response_type == "STRING_MAP" and not all(
        isinstance(value, str) for value in response.values()
    ):
        return f"STRING_MAP response has non-string values: {response!r}"
    try:
        size = len(json.dumps(response, ensure_ascii=False).encode("utf-8"))
    except (TypeError, ValueError) as exc:
        return f"response is not JSON-serialisable: {exc}"
    if size >= _MAX_LAMBDA_RESPONSE_BYTES:
        return f"response is {size} bytes; Connect accepts less than 32 KB"
    return None


_HANDLERS: dict[str, Callable[[dict[str, Any], _CallState], _Step]] = {
    "MessageParticipant": _message_participant,
    "GetParticipantInput": _get_input,
    "DisconnectParticipant": _disconnect,
    "UpdateContactAttributes": _update_attributes,
    "Compare": _compare,
    "UpdateContactTextToSpeechVoice": _update_voice,
    "UpdateFlowLoggingBehavior": _update_logging,
}
