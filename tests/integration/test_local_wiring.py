"""The template is the local runtime's one source of wiring: change it and local behaviour
follows. Each test copies what the runtime reads (template.yaml, the functions' code, the
contact flows, the default directory) to a temporary root, edits the copy, and runs the real
handlers from there. Also: schedules fire in real time when nobody advances the clock."""

from __future__ import annotations

import copy
import json
import shutil
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from moto.core.models import MockAWS

from hotline_tools.local.engine import LocalHotline
from hotline_tools.local.flow import FlowError
from hotline_tools.local.server import LocalServer
from hotline_tools.local.template import TemplateError
from tests.conftest import MIZUKI, ROOT, TAKUMI, schedules

INVITED = "タクミさんが話したいそうです"
TIMED_OUT = "話せないようです"


def copy_project(target: Path) -> Path:
    """What the runtime reads from its root (generated/: what the template includes and
    nests); hotline_core is the installed package (the layer), so core/ is not needed."""
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copy2(ROOT / "template.yaml", target / "template.yaml")
    for folder in ("producers", "consumers", "contact_flow", "generated"):
        shutil.copytree(ROOT / folder, target / folder, ignore=ignore)
    (target / "tests" / "events").mkdir(parents=True)
    shutil.copy2(ROOT / "tests/events/phonenumber.json", target / "tests/events/phonenumber.json")
    return target


def edit_template(root: Path, old: str, new: str, *, after: str = "") -> None:
    """Replace the first `old` that follows `after` (a resource's heading), exactly once."""
    path = root / "template.yaml"
    text = path.read_text(encoding="utf-8")
    start = text.index(after) if after else 0
    at = text.index(old, start)
    path.write_text(text[:at] + new + text[at + len(old) :], encoding="utf-8")


def add_resources(root: Path, yaml_text: str) -> None:
    edit_template(root, "\nResources:\n", "\nResources:\n" + yaml_text)


def invite_rule_block(root: Path) -> str:
    """InviteReceiverFunction's own rule, as the template has it (to edit exactly that)."""
    text = (root / "template.yaml").read_text(encoding="utf-8")
    block = text[text.index("  InviteReceiverFunction:\n") : text.index("  StartTimerFunction:\n")]
    assert block.count("detail-type: [CallRequested]") == 1, "the template's layout changed"
    return block


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(tmp_path)


@pytest.fixture
def started() -> Iterator[Callable[..., LocalHotline]]:
    running: list[LocalHotline] = []

    def start(root: Path, **options: Any) -> LocalHotline:
        hotline = LocalHotline(root=root, **options).start()
        running.append(hotline)
        return hotline

    yield start
    for hotline in running:
        hotline.stop()


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

    assert answer["prompts"] == ["ミズキさんに聞いてみます。電話を切ってお待ちください。"]
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

    edit_template(
        project,
        """      EventInvokeConfig:
        MaximumRetryAttempts: 2
        DestinationConfig:
          OnFailure:
            Type: SQS
            Destination: !GetAtt ConsumerDeadLetterQueue.Arn
""",
        "      EventInvokeConfig:\n        MaximumRetryAttempts: 2\n",
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


# --- template parameters: the template's constraints are the one check ----------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"answer_window": 29}, r"AnswerWindowSeconds: '29' is below its MinValue 30"),
        ({"answer_window": 3601}, r"AnswerWindowSeconds: '3601' is above its MaxValue 3600"),
        ({"parameters": {"SmsProvider": "pigeon"}}, r"SmsProvider: 'pigeon' is not one of"),
        ({"base_url": "http://127.0.0.1:3000/x"}, r"PublicBaseUrl: .* AllowedPattern"),
    ],
)
def test_a_parameter_outside_the_templates_constraints_is_refused(options, message):
    with pytest.raises(TemplateError, match=message):
        LocalHotline(root=ROOT, **options)


def test_the_constraints_are_the_templates_own(project, started):
    edit_template(project, "MinValue: 30", "MinValue: 5", after="  AnswerWindowSeconds:\n")
    local = started(project, answer_window=5)

    local.call(TAKUMI)

    assert local.stack.functions["CallRequestFunction"].environment["ANSWER_WINDOW_SECONDS"] == "5"


# --- contact flows are checked whole at startup ----------------------------------------------


def add_unreached_action(root: Path, action: dict[str, Any]) -> Path:
    """An action no call reaches, appended to the hotline flow."""
    path = root / "contact_flow/hotline.json"
    flow = json.loads(path.read_text(encoding="utf-8"))
    flow["Actions"].append(action)
    path.write_text(json.dumps(flow, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (
            {"Identifier": "queue-it", "Type": "TransferContactToQueue", "Transitions": {}},
            r"unsupported action Type 'TransferContactToQueue' \(Identifier 'queue-it'\)",
        ),
        (
            {
                "Identifier": "say-bye",
                "Type": "MessageParticipant",
                "Parameters": {"Text": "bye"},
                "Transitions": {"NextAction": "nowhere"},
            },
            r"action 'say-bye' \(MessageParticipant\) transitions to unknown action 'nowhere'",
        ),
    ],
)
def test_a_broken_action_no_call_reaches_stops_the_runtime_at_startup(project, action, message):
    path = add_unreached_action(project, action)

    with pytest.raises(FlowError, match=message) as raised:
        LocalHotline(root=project)
    assert str(raised.value).startswith(f"flow {path}: ")

    # The server refuses to start too, and leaves its port free.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FlowError, match=message):
        LocalServer(port=port, root=project)
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))


# --- the lines are the template's contact flows ---------------------------------------------


def test_the_shipped_flows_keep_their_numbers():
    assert LocalHotline(root=ROOT).lines == {
        "hotline": "+815012340001",
        "benefits": "+815012340002",
    }


def post_json(url: str, data: Any) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(data).encode(), method="POST", headers={"Content-Type": "x/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_new_flow_is_a_new_line_and_a_removed_one_is_gone(project):
    shutil.copy2(project / "contact_flow/hotline.json", project / "contact_flow/support.json")
    (project / "contact_flow/benefits.json").unlink()
    server = LocalServer(port=0, root=project).start()
    try:
        with urllib.request.urlopen(server.url + "/_local/directory", timeout=30) as response:
            lines = json.loads(response.read())["lines"]
        status, answer = post_json(
            server.url + "/_local/calls", {"from": TAKUMI, "line": "support"}
        )
        gone, error = post_json(server.url + "/_local/calls", {"from": TAKUMI, "line": "benefits"})
    finally:
        server.stop()

    assert lines == {"hotline": "+815012340001", "support": "+815012340003"}
    assert status == 200
    assert answer["prompts"] == ["ミズキさんに聞いてみます。電話を切ってお待ちください。"]
    assert gone == 400
    assert error["error"] == '"line" must be one of hotline, support'


# --- real time --------------------------------------------------------------------------------


def wait_for(predicate: Callable[[], Any], *, limit: float) -> Any:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if found := predicate():
            return found
        time.sleep(0.25)
    return None


def test_a_schedule_fires_in_real_time_when_nobody_advances_the_clock():
    server = LocalServer(port=0).start()  # its ticker runs in the background
    try:
        status, _ = post_json(server.url + "/_local/calls", {"from": TAKUMI})
        assert status == 200
        assert len(server.engine.sms(MIZUKI)) == 1
        # The answer timer, brought forward to two seconds from now (the shortest window the
        # template allows would cost a test minutes of real time).
        scheduler = server.engine.client("scheduler")
        [summary] = scheduler.list_schedules()["Schedules"]
        timer = scheduler.get_schedule(Name=summary["Name"], GroupName=summary["GroupName"])
        # Scheduler may fire it anywhere in the minute of its at(); take the earliest moment,
        # or the test would wait up to a minute of real time.
        server.engine.schedule_moment = lambda name, earliest, latest: earliest
        soon = server.engine.clock.now() + timedelta(seconds=2)
        scheduler.update_schedule(
            Name=timer["Name"],
            GroupName=timer["GroupName"],
            ScheduleExpression=f"at({soon:%Y-%m-%dT%H:%M:%S})",
            ScheduleExpressionTimezone="UTC",
            FlexibleTimeWindow=timer["FlexibleTimeWindow"],
            Target=timer["Target"],
        )

        def timed_out() -> list[dict[str, str]]:
            with urllib.request.urlopen(server.url + "/_local/sms", timeout=30) as response:
                sent = json.loads(response.read())
            return [m for m in sent if m["to"] == TAKUMI and TIMED_OUT in m["body"]]

        told = wait_for(timed_out, limit=60)

        assert told, "the answer timer did not fire in real time"
        assert server.engine.clock.offset == timedelta(0)  # only real time passed
        assert [e["detail-type"] for e in server.engine.events()] == ["CallRequested", "TimedOut"]
        assert server.engine.errors == []
    finally:
        server.stop()
