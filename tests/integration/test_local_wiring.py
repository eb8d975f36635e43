"""The template is the local runtime's one source of wiring: change it and local behaviour
follows. Each test copies what the runtime reads to a temporary root
(tests/integration/project_copy.py), edits the copy's rules, events and resources, and runs
the real handlers from there."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from moto.core.models import MockAWS

from hotline_tools.local.engine import LocalHotline
from hotline_tools.local.template import TemplateError
from tests.conftest import MIZUKI, TAKUMI, schedules
from tests.integration import project_copy
from tests.integration.project_copy import (
    TIMED_OUT,
    add_resources,
    edit_template,
    invite_rule_block,
)

# Shared fixtures: pytest finds a fixture by its name in the test module.
project, started = project_copy.project, project_copy.started


INVITED = "タクミさんが話したいそうです"


def invite_event(root: Path, line: str) -> None:
    """One more property on InviteReceiverFunction's EventBridgeRule event."""
    invite_rule_block(root)
    edit_template(
        root,
        "            EventBusName: !Ref EventBus\n",
        f"            EventBusName: !Ref EventBus\n            {line}\n",
        after="  InviteReceiverFunction:\n",
    )


def received(local: LocalHotline, logical_id: str) -> list[Any]:
    """Every event the function's handler is invoked with from now on (retries too)."""
    seen: list[Any] = []
    invoke = local.host.invoke

    def spy(function: str, event: Any) -> Any:
        if function == logical_id:
            seen.append(copy.deepcopy(event))
        return invoke(function, event)

    local.host.invoke = spy  # type: ignore[method-assign]
    return seen


# --- change the template, and local behaviour follows --------------------------------------


def test_the_unchanged_copy_invites_and_starts_the_timer(project, started):
    local = started(project)

    local.call(TAKUMI)

    assert [m["to"] for m in local.sms() if INVITED in m["body"]] == [MIZUKI]
    assert len(schedules(local)) == 1


def test_a_rule_pattern_that_never_matches_invites_nobody_but_the_timer_still_starts(
    project, started
):
    invite_rule_block(project)
    edit_template(
        project,
        "detail-type: [CallRequested]",
        "detail-type: [NothingEverSendsThis]",
        after="  InviteReceiverFunction:\n",
    )
    local = started(project)

    answer = local.call(TAKUMI)

    assert answer["prompts"] == [
        "お電話ありがとうございます。",
        "ミズキさんに聞いてみます。電話を切ってお待ちください。",
    ]
    assert [e["detail-type"] for e in local.events()] == ["CallRequested"]
    assert local.sms() == []
    assert "InviteReceiverFunction" not in local.host.invocations
    [schedule] = schedules(local)
    assert schedule["Name"].startswith("answer-")
    # The rest of the wiring is untouched: the window ends and the caller is told (the
    # timer's at() is the window's end rounded up to a minute, fired within that minute).
    assert local.advance(240)["fired"] == 1
    [told] = local.sms(TAKUMI)
    assert TIMED_OUT in told["body"]


def test_a_disabled_function_rule_invites_nobody_but_the_timer_still_starts(project, started):
    invite_event(project, "State: DISABLED")
    local = started(project)

    local.call(TAKUMI)

    assert [e["detail-type"] for e in local.events()] == ["CallRequested"]
    assert local.sms() == []
    assert "InviteReceiverFunction" not in local.host.invocations
    assert len(schedules(local)) == 1  # StartTimerFunction's rule is enabled
    rule = local.client("events").describe_rule(
        Name="hotline-local-InviteReceiverFunction-CallRequested",
        EventBusName=local.stack.output("EventBusName"),
    )
    assert rule["State"] == "DISABLED"


def test_an_explicitly_enabled_function_rule_delivers(project, started):
    invite_event(project, "State: ENABLED")
    local = started(project)

    local.call(TAKUMI)

    assert [m["to"] for m in local.sms() if INVITED in m["body"]] == [MIZUKI]


def test_a_function_rules_input_path_hands_the_handler_only_that_part(project, started):
    invite_event(project, "InputPath: $.detail")
    local = started(project, answer_window=600)  # no time-out during the retries
    seen = received(local, "InviteReceiverFunction")

    local.call(TAKUMI)
    local.advance(181)  # Lambda's retries: 60 s, then 120 s after that (and real time)

    [event] = local.events()
    attempts = local.stack.functions["InviteReceiverFunction"].spec.max_retries + 1
    # The handler expects a whole EventBridge event, so the detail alone fails every attempt.
    assert seen == [event["detail"]] * attempts
    assert local.sms() == []
    [letter] = local.dead_letters
    assert letter["requestPayload"] == event["detail"]


def test_a_function_rules_input_hands_the_handler_that_constant(project, started):
    invite_event(project, """Input: !Sub '{"constant": ["ja", 1], "stack": "${AWS::StackName}"}'""")
    local = started(project)
    seen = received(local, "InviteReceiverFunction")

    local.call(TAKUMI)

    assert seen and all(
        event == {"constant": ["ja", 1], "stack": "hotline-local"} for event in seen
    )
    assert local.sms() == []


def test_a_named_function_rule_is_created_with_that_name(project, started):
    invite_event(project, "RuleName: invite-the-receiver")
    local = started(project)

    local.call(TAKUMI)

    bus = local.stack.output("EventBusName")
    names = [r["Name"] for r in local.client("events").list_rules(EventBusName=bus)["Rules"]]
    assert "invite-the-receiver" in names
    assert "hotline-local-InviteReceiverFunction-CallRequested" not in names
    assert [m["to"] for m in local.sms() if INVITED in m["body"]] == [MIZUKI]


UNSUPPORTED_EVENT_PROPERTIES = {
    "an unknown property": ("Filters: [x]", r"property Filters is not emulated"),
    "an input transformer": (
        "InputTransformer: { InputTemplate: '{\"id\": <id>}', InputPathsMap: { id: $.id } }",
        r"InputTransformer on a function target is not emulated",
    ),
    "a wildcard input path": ("InputPath: $.detail[*]", r"InputPath '\$\.detail\[\*\]'"),
    "input that is not JSON": ("Input: '{not json'", r"Input must be JSON text"),
    "an unknown state": ("State: ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS", r"State ENABLED_"),
}


@pytest.mark.parametrize("kind", list(UNSUPPORTED_EVENT_PROPERTIES))
def test_a_function_event_property_the_runtime_cannot_honour_names_function_and_event(
    project, kind
):
    line, message = UNSUPPORTED_EVENT_PROPERTIES[kind]
    invite_event(project, line)
    mocks = MockAWS._nested_count

    with pytest.raises(TemplateError) as raised:
        LocalHotline(root=project).start()

    assert str(raised.value).startswith(
        "InviteReceiverFunction event CallRequested (EventBridgeRule): "
    )
    assert raised.match(message)
    assert MockAWS._nested_count == mocks


def test_input_and_input_path_together_are_refused(project):
    invite_event(project, "InputPath: $.detail\n            Input: '{}'")

    with pytest.raises(TemplateError, match=r"CallRequested.*Input and InputPath exclude each"):
        LocalHotline(root=project).start()


def test_a_function_without_an_on_failure_destination_loses_the_event_after_retries(
    project, started, monkeypatch
):
    from hotline_core.adapters.sms import SnsSms

    # The consumers' EventInvokeConfig is written once, on InviteReceiverFunction, as an
    # anchor the others name: InviteReceiverFunction's own config replaces it here.
    edit_template(
        project,
        "      EventInvokeConfig: &consumer_invocations\n",
        "      EventInvokeConfig:\n        MaximumRetryAttempts: 2\n"
        "      X-Consumers: &consumer_invocations\n",
        after="  InviteReceiverFunction:\n",
    )

    def unreachable(self: SnsSms, to: str, body: str) -> None:
        raise ConnectionError("SMS provider unreachable")

    monkeypatch.setattr(SnsSms, "send", unreachable)
    local = started(project, answer_window=600)  # no time-out during the retries
    assert local.stack.functions["InviteReceiverFunction"].dead_letter_queue is None

    local.call(TAKUMI)
    local.advance(181)  # Lambda's retries: 60 s, then 120 s after that (and real time)

    # As Lambda does: three attempts, then the event is discarded; every failure is kept.
    assert local.dead_letters == []
    assert (
        local.handler_errors
        == (("InviteReceiverFunction", "ConnectionError", "SMS provider unreachable"),) * 3
    )
    queue = local.stack.refs["ConsumerDeadLetterQueue"]["Ref"]
    assert "Messages" not in local.client("sqs").receive_message(QueueUrl=queue)


def test_a_standalone_rule_targeting_a_function_is_delivered_to_it(project, started):
    edit_template(
        project,
        "detail-type: [CallRequested]",
        "detail-type: [NothingEverSendsThis]",
        after="  InviteReceiverFunction:\n",
    )
    add_resources(
        project,
        """  InviteByStandaloneRule:
    Type: AWS::Events::Rule
    Properties:
      EventBusName: !Ref EventBus
      EventPattern:
        source: [hotline]
        detail-type: [CallRequested]
      Targets:
        - Id: invite
          Arn: !GetAtt InviteReceiverFunction.Arn
""",
    )
    local = started(project)

    local.call(TAKUMI)

    assert [m["to"] for m in local.sms() if INVITED in m["body"]] == [MIZUKI]
    assert local.host.invocations["InviteReceiverFunction"] == 1


def test_the_local_event_list_is_every_event_whatever_the_templates_event_log_keeps(
    project, started
):
    # The template's EventLogRule shapes the CloudWatch log on AWS; /_local/events is the
    # runtime contract's "every event the bus accepted", so narrowing the rule changes nothing.
    edit_template(
        project,
        'source: [{ prefix: "" }]',
        "detail-type: [TimedOut]",
        after="  EventLogRule:\n",
    )
    local = started(project)

    local.call(TAKUMI)
    local.advance(240)  # the window's end rounded up to a minute, fired within that minute

    assert [e["detail-type"] for e in local.events()] == ["CallRequested", "TimedOut"]


def test_without_an_event_log_rule_the_runtime_still_lists_every_event(project, started):
    edit_template(  # the condition is false locally: the rule is not there
        project,
        "Type: AWS::Events::Rule\n",
        "Type: AWS::Events::Rule\n    Condition: HasConnect\n",
        after="  EventLogRule:\n",
    )
    local = started(project)

    local.call(TAKUMI)

    assert [e["detail-type"] for e in local.events()] == ["CallRequested"]


def test_an_unknown_resource_type_is_an_error_naming_it(project):
    add_resources(
        project,
        """  MysteryMachine:
    Type: AWS::StepFunctions::StateMachine
    Properties: {}
""",
    )

    with pytest.raises(TemplateError, match=r"MysteryMachine.*AWS::StepFunctions::StateMachine"):
        LocalHotline(root=project).start()


UNSUPPORTED_RULES = {
    "a schedule": """      ScheduleExpression: rate(5 minutes)
      Targets:
        - Id: timer
          Arn: !GetAtt AnswerTimerFunction.Arn
""",
    "an SNS target": """      EventBusName: !Ref EventBus
      EventPattern: { source: [hotline] }
      Targets:
        - Id: page-someone
          Arn: !Ref AlarmTopic
""",
    "a foreign ARN": """      EventBusName: !Ref EventBus
      EventPattern: { source: [hotline] }
      Targets:
        - Id: elsewhere
          Arn: arn:aws:states:ap-northeast-1:123456789012:stateMachine:elsewhere
""",
    "a reshaped function event": """      EventBusName: !Ref EventBus
      EventPattern: { source: [hotline] }
      Targets:
        - Id: invite
          Arn: !GetAtt InviteReceiverFunction.Arn
          InputTransformer: { InputTemplate: '"x"' }
""",
    "an unknown target property": """      EventBusName: !Ref EventBus
      EventPattern: { source: [hotline] }
      Targets:
        - Id: invite
          Arn: !GetAtt InviteReceiverFunction.Arn
          SqsParameters: { MessageGroupId: x }
""",
}


@pytest.mark.parametrize("kind", list(UNSUPPORTED_RULES))
def test_a_standalone_rule_the_runtime_cannot_honour_is_an_error_naming_it(project, kind):
    add_resources(
        project,
        "  UnhonourableRule:\n    Type: AWS::Events::Rule\n    Properties:\n"
        + UNSUPPORTED_RULES[kind],
    )
    mocks = MockAWS._nested_count

    with pytest.raises(TemplateError, match=r"UnhonourableRule \(AWS::Events::Rule\)"):
        LocalHotline(root=project).start()
    assert MockAWS._nested_count == mocks  # the failed start stopped its moto mock


def test_a_standalone_rules_input_path_hands_the_function_that_part(project, started):
    add_resources(
        project,
        """  RequestIdsToTheTimer:
    Type: AWS::Events::Rule
    Properties:
      EventBusName: !Ref EventBus
      EventPattern:
        source: [hotline]
        detail-type: [CallRequested]
      Targets:
        - Id: timer
          Arn: !GetAtt AnswerTimerFunction.Arn
          InputPath: $.detail.data.request_id
""",
    )
    local = started(project)
    seen = received(local, "AnswerTimerFunction")

    answer = local.call(TAKUMI)
    local.advance(181)  # Lambda's retries: 60 s, then 120 s after that (and real time)

    # A bare string is not the timer's input: each attempt fails, and the template's
    # TimerDeadLetterQueue gets what the rule delivered.
    assert seen[0] == answer["contact_id"]
    [letter] = local.dead_letters
    assert letter["requestPayload"] == answer["contact_id"]


def test_a_disabled_standalone_rule_delivers_nothing(project, started):
    add_resources(
        project,
        """  DisabledRule:
    Type: AWS::Events::Rule
    Properties:
      EventBusName: !Ref EventBus
      State: DISABLED
      EventPattern:
        source: [hotline]
      Targets:
        - Id: timer
          Arn: !GetAtt AnswerTimerFunction.Arn
""",
    )
    local = started(project)

    local.call(TAKUMI)

    assert "AnswerTimerFunction" not in local.host.invocations
    assert local.dead_letters == []
