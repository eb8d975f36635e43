"""The template is the local runtime's one source of wiring: change it and local behaviour
follows. Each test copies what the runtime reads (template.yaml, the functions' code, the
contact flows, the default directory) to a temporary root, edits the copy, and runs the real
handlers from there. Also: schedules fire in real time when nobody advances the clock."""

from __future__ import annotations

import json
import shutil
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
from hotline_tools.local.server import LocalServer
from hotline_tools.local.template import TemplateError
from tests.conftest import ROOT

TAKUMI, MIZUKI = "+819011112222", "+817033334444"
INVITED = "タクミさんが話したいそうです"
TIMED_OUT = "話せないようです"


def copy_project(target: Path) -> Path:
    """What the runtime reads from its root; hotline_core is the installed package (the
    layer), so core/ is not needed."""
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copy2(ROOT / "template.yaml", target / "template.yaml")
    for folder in ("producers", "consumers", "contact_flow"):
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


def schedules(local: LocalHotline) -> list[dict[str, Any]]:
    return list(local.client("scheduler").list_schedules()["Schedules"])


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
    # The rest of the wiring is untouched: the window ends and the caller is told.
    assert local.advance(180)["fired"] == 1
    [told] = local.sms(TAKUMI)
    assert TIMED_OUT in told["body"]


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
    local.advance(180)

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
          InputPath: $.detail
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
    # Scheduler fires within the minute it is set for, so the timer is rounded up to the next
    # whole minute: a one-second window times out within about a minute of real time.
    server = LocalServer(port=0, answer_window=1).start()  # its ticker runs in the background
    try:
        status, _ = post_json(server.url + "/_local/calls", {"from": TAKUMI})
        assert status == 200
        assert len(server.engine.sms(MIZUKI)) == 1

        def timed_out() -> list[dict[str, str]]:
            with urllib.request.urlopen(server.url + "/_local/sms", timeout=30) as response:
                sent = json.loads(response.read())
            return [m for m in sent if m["to"] == TAKUMI and TIMED_OUT in m["body"]]

        told = wait_for(timed_out, limit=120)

        assert told, "the answer timer did not fire in real time"
        assert server.engine.clock.offset == timedelta(0)  # only real time passed
        assert [e["detail-type"] for e in server.engine.events()] == ["CallRequested", "TimedOut"]
        assert server.engine.errors == []
    finally:
        server.stop()
