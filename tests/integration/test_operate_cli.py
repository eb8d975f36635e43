"""The operator's commands: `hotline replay`, `hotline events tail`, `hotline directory`.

AWS is moto. moto's CloudFormation cannot deploy the SAM template, so each test deploys a
tiny plain CloudFormation stack in moto whose outputs have the same names as the real stack's
(EventBusName, EventBusArn, ArchiveArn, EventLogGroupName, DirectoryBucketName): the CLI is
exercised end to end through describe_stacks, exactly as it runs against a real deployment.
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, NoRegionError
from moto import mock_aws
from rich.console import Console
from typer.testing import CliRunner

from hotline_core.phone import mask_phone
from hotline_tools import operate
from hotline_tools.cli import app
from hotline_tools.local.server import LocalServer
from tests.conftest import MIZUKI, TAKUMI

STACK = "hotline-test"
runner = CliRunner()

STACK_TEMPLATE = {
    "Resources": {
        "EventBus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": "hotline-bus"}},
        "EventArchive": {
            "Type": "AWS::Events::Archive",
            "Properties": {
                "ArchiveName": "hotline-archive",
                "SourceArn": {"Fn::GetAtt": ["EventBus", "Arn"]},
            },
        },
        "DirectoryBucket": {"Type": "AWS::S3::Bucket"},
        "EventLogGroup": {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {"LogGroupName": "/aws/events/hotline-test-hotline"},
        },
        # As in template.yaml: every event to the log group, under a generated name.
        "EventLogRule": {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "EventBusName": {"Fn::GetAtt": ["EventBus", "Name"]},
                "EventPattern": {"source": [{"prefix": ""}]},
                "Targets": [{"Id": "event-log", "Arn": {"Fn::GetAtt": ["EventLogGroup", "Arn"]}}],
            },
        },
    },
    "Outputs": {
        # moto's Ref of an EventBus is not its name; Name is (the real stack Refs it).
        "EventBusName": {"Value": {"Fn::GetAtt": ["EventBus", "Name"]}},
        "EventBusArn": {"Value": {"Fn::GetAtt": ["EventBus", "Arn"]}},
        "ArchiveArn": {"Value": {"Fn::GetAtt": ["EventArchive", "Arn"]}},
        "DirectoryBucketName": {"Value": {"Ref": "DirectoryBucket"}},
        "EventLogGroupName": {"Value": {"Ref": "EventLogGroup"}},
    },
}


@pytest.fixture
def stack() -> Iterator[dict[str, str]]:
    with mock_aws():
        cfn = boto3.client("cloudformation")
        cfn.create_stack(StackName=STACK, TemplateBody=json.dumps(STACK_TEMPLATE))
        outputs = cfn.describe_stacks(StackName=STACK)["Stacks"][0]["Outputs"]
        yield {o["OutputKey"]: o["OutputValue"] for o in outputs}


def rule_with_queue(bus: str, name: str, pattern: dict[str, Any]) -> tuple[str, str]:
    events, sqs = boto3.client("events"), boto3.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    rule_arn = events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern))[
        "RuleArn"
    ]
    events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    return rule_arn, url


def put(bus: str, detail_type: str, request_id: str) -> None:
    detail = {"metadata": {"correlation_id": request_id}, "data": {"request_id": request_id}}
    boto3.client("events").put_events(
        Entries=[
            {
                "EventBusName": bus,
                "Source": "hotline",
                "DetailType": detail_type,
                "Detail": json.dumps(detail),
            }
        ]
    )


def drain(url: str) -> list[dict[str, Any]]:
    messages = boto3.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def log_rule(bus: str) -> dict[str, Any]:
    """The stack's event log rule, found by what it is (moto names it after the stack)."""
    [rule] = [
        r
        for r in boto3.client("events").list_rules(EventBusName=bus)["Rules"]
        if "EventLogRule" in r["Name"]
    ]
    return rule


def replay_args(*extra: str) -> list[str]:
    return ["replay", "--from", "1h", "--stack", STACK, "--poll", "0", *extra]


class ScriptedEvents:
    """The moto EventBridge client, except the calls a test scripts: `describe_replay` answers
    the real description overlaid with each of `states` in turn (the last one repeated), and
    `failing` calls raise the given error."""

    def __init__(
        self,
        states: tuple[dict[str, Any], ...] = ({},),
        failing: dict[str, Exception] | None = None,
    ) -> None:
        self.real = boto3.client("events")
        self.states = list(states)
        self.failing = failing or {}
        self.described = 0

    def describe_replay(self, ReplayName: str) -> dict[str, Any]:
        if "describe_replay" in self.failing:
            raise self.failing["describe_replay"]
        overlay = self.states[min(self.described, len(self.states) - 1)]
        self.described += 1
        return self.real.describe_replay(ReplayName=ReplayName) | overlay

    def __getattr__(self, name: str) -> Any:
        if name in self.failing:

            def refuse(**_kwargs: Any) -> Any:
                raise self.failing[name]

            return refuse
        return getattr(self.real, name)


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch):
    """Install a ScriptedEvents as the EventBridge client of `hotline replay`."""

    def install(**kwargs: Any) -> ScriptedEvents:
        events = ScriptedEvents(**kwargs)
        real_aws = operate.aws
        monkeypatch.setattr(
            operate, "aws", lambda service: events if service == "events" else real_aws(service)
        )
        return events

    return install


def denied(operation: str) -> ClientError:
    error = {"Code": "AccessDeniedException", "Message": "not allowed [bold]here"}
    return ClientError({"Error": error}, operation)


# --- replay ------------------------------------------------------------------------------
def test_replay_replays_the_archive_to_the_bus_and_says_how_it_went(stack):
    bus = stack["EventBusName"]
    _, queue = rule_with_queue(bus, "invite", {"source": ["hotline"]})
    put(bus, "CallRequested", "req-1")
    assert [e["detail-type"] for e in drain(queue)] == ["CallRequested"]

    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    result = runner.invoke(app, ["replay", "--from", hour_ago, "--stack", STACK, "--poll", "0"])

    assert result.exit_code == 0, result.output
    assert "COMPLETED" in result.output
    assert "every rule on the bus" in result.output
    [replayed] = drain(queue)
    assert replayed["detail-type"] == "CallRequested"
    assert replayed["replay-name"].startswith("hotline-")
    [described] = boto3.client("events").list_replays()["Replays"]
    assert described["EventSourceArn"] == stack["ArchiveArn"]


def test_replays_started_back_to_back_all_start(stack):
    results = [runner.invoke(app, replay_args()) for _ in range(3)]  # within a second or two

    assert [r.exit_code for r in results] == [0, 0, 0], results[-1].output
    names = [r["ReplayName"] for r in boto3.client("events").list_replays()["Replays"]]
    assert len(names) == len(set(names)) == 3


def test_replay_names_are_unique_within_a_second_and_valid_for_eventbridge():
    at = datetime(2026, 5, 1, 9, 0, 0, tzinfo=UTC)
    names = [operate.replay_name(at, t) for t in (None, *operate.EVENT_TYPES) for _ in range(50)]

    assert len(set(names)) == len(names)
    for name in names:  # EventBridge: 1-64 of letters, digits and . - _
        assert re.fullmatch(r"[.\-_A-Za-z0-9]{1,64}", name), name
        assert name.startswith("hotline-20260501-090000-")


def test_replay_of_one_event_type_goes_only_to_the_rules_that_listen_to_it(stack):
    bus = stack["EventBusName"]
    invite, _ = rule_with_queue(bus, "invite", {"detail-type": ["CallRequested"]})
    rule_with_queue(bus, "tell", {"detail-type": ["Accepted", "Declined"]})
    rule_with_queue(bus, "audit", {"source": [{"prefix": ""}]})  # another catch-all: left out

    result = runner.invoke(
        app,
        [
            "replay",
            "--from",
            "1h",
            "--event-type",
            "CallRequested",
            "--stack",
            STACK,
            "--poll",
            "0",
        ],
    )

    assert result.exit_code == 0, result.output
    [replay] = boto3.client("events").list_replays()["Replays"]
    described = boto3.client("events").describe_replay(ReplayName=replay["ReplayName"])
    # The event log rule too, so the replay shows in `hotline events tail`.
    assert described["Destination"]["FilterArns"] == [invite, log_rule(bus)["Arn"]]


def test_a_filtered_replay_is_refused_when_no_rule_writes_to_the_event_log(stack):
    bus = stack["EventBusName"]
    rule_with_queue(bus, "invite", {"detail-type": ["CallRequested"]})
    events = boto3.client("events")
    name = log_rule(bus)["Name"]
    events.remove_targets(Rule=name, EventBusName=bus, Ids=["event-log"])

    result = runner.invoke(app, replay_args("--event-type", "CallRequested"))

    assert result.exit_code == 1
    assert "no rule on the bus writes to the event log /aws/events/hotline-test-hotline" in (
        result.output
    )
    assert events.list_replays()["Replays"] == []


def test_replay_refuses_an_unknown_event_type_a_reversed_window_and_a_missing_stack(stack):
    unknown = runner.invoke(app, ["replay", "--from", "1h", "--event-type", "Nope"])
    assert unknown.exit_code == 2
    assert "CallRequested" in unknown.output
    reversed_ = runner.invoke(app, ["replay", "--from", "0s", "--to", "1h", "--stack", STACK])
    assert reversed_.exit_code == 2
    missing = runner.invoke(app, ["replay", "--from", "1h", "--stack", "no-such-stack"])
    assert missing.exit_code == 1
    assert "no-such-stack" in missing.output
    assert boto3.client("events").list_replays()["Replays"] == []


def test_replay_refuses_an_empty_window(stack):
    at = "2026-05-01T09:00:00+09:00"
    same = runner.invoke(
        app, ["replay", "--from", at, "--to", "2026-05-01T00:00Z", "--stack", STACK]
    )

    assert same.exit_code == 2
    assert "--from (2026-05-01T00:00:00+00:00) must be before --to (2026-05-01T00:00:00+00:00)" in (
        same.output
    )
    assert boto3.client("events").list_replays()["Replays"] == []


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["replay", "--from", "yesterday"], "--from"),
        (["replay", "--from", "1h", "--to", "[bold]soon"], "--to"),
        (["events", "tail", "--since", "5x"], "--since"),
    ],
)
def test_a_bad_time_says_which_option_is_wrong(args, option):
    result = runner.invoke(app, args)

    assert result.exit_code == 2
    said = " ".join(result.output.replace("│", " ").split())  # rich boxes and wraps it
    assert f"Invalid value for '{option}': '{args[-1]}' is " in said
    assert "Value error" not in said


@pytest.mark.parametrize(
    ("failing", "says"),
    [
        ({"list_rules": denied("ListRules")}, "cannot list the rules of bus 'hotline-bus'"),
        ({"list_targets_by_rule": denied("ListTargetsByRule")}, "cannot list the targets of"),
        ({"start_replay": denied("StartReplay")}, "cannot start the replay"),
        ({"describe_replay": denied("DescribeReplay")}, "cannot follow replay hotline-"),
        ({"describe_replay": NoRegionError()}, "cannot follow replay hotline-"),
    ],
    ids=["list-rules", "list-targets", "start", "describe", "no-region"],
)
def test_an_aws_error_is_one_clean_line_and_exit_1(stack, scripted, failing, says):
    rule_with_queue(stack["EventBusName"], "invite", {"detail-type": ["CallRequested"]})
    scripted(failing=failing)

    result = runner.invoke(app, replay_args("--event-type", "CallRequested"))

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # not a traceback
    [line] = result.output.strip().splitlines()
    assert says in line
    assert "[bold]here" in line or "region" in line  # AWS's text, markup shown as is


def test_an_aws_client_that_cannot_be_made_is_a_clean_error(stack, monkeypatch):
    real_aws = operate.aws

    def no_region(service: str) -> Any:
        if service == "events":
            raise NoRegionError()
        return real_aws(service)

    monkeypatch.setattr(operate, "aws", no_region)

    result = runner.invoke(app, replay_args("--event-type", "CallRequested"))

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    [line] = result.output.strip().splitlines()
    assert "You must specify a region" in line


def test_a_failed_replay_shows_why_and_exits_1(stack, scripted):
    scripted(states=({"State": "FAILED", "StateReason": "[bold]archive gone"},))

    result = runner.invoke(app, replay_args())

    assert result.exit_code == 1
    said = " ".join(result.output.split())
    assert "state │ FAILED" in said
    assert "[bold]archive gone" in said


def test_a_replay_still_running_at_the_timeout_says_how_to_follow_it(stack, scripted):
    events = scripted(states=({"State": "RUNNING"},))

    result = runner.invoke(app, replay_args("--timeout", "0"))

    assert result.exit_code == 1
    assert events.described == 1  # the timeout is checked after the first look
    [replay] = boto3.client("events").list_replays()["Replays"]
    assert (
        f"still RUNNING after 0s; follow it with `aws events describe-replay --replay-name "
        f"{replay['ReplayName']}`" in result.output
    )


def test_the_progress_display_follows_the_share_of_the_window_replayed(
    stack, scripted, monkeypatch
):
    screen = io.StringIO()
    monkeypatch.setattr(operate, "err", Console(file=screen, force_terminal=True, width=160))
    start = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    half, end = start + timedelta(minutes=30), start + timedelta(hours=1)
    states = (
        {"State": "STARTING"},
        {"State": "RUNNING", "EventLastReplayedTime": half},
        {"State": "COMPLETED", "EventLastReplayedTime": end},
    )
    events = scripted(states=states)
    slept: list[float] = []
    monkeypatch.setattr(operate, "pause", slept.append)

    window = ["--from", start.isoformat(), "--to", end.isoformat()]
    result = runner.invoke(app, ["replay", *window, "--stack", STACK, "--poll", "7"])

    assert result.exit_code == 0, result.output
    assert events.described == 3 and slept == [7, 7]
    frames = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())
    assert re.search(r"replay hotline-\S+ .* 0% STARTING", frames)
    assert re.search(r" 50% RUNNING events up to 2026-05-01T09:30:00\+00:00", frames)
    assert re.search(r"100% COMPLETED events up to 2026-05-01T10:00:00\+00:00", frames)
    assert "COMPLETED" in result.output  # the summary table once the display is gone


# --- the local runtime -------------------------------------------------------------------


def call(server: LocalServer, caller: str = TAKUMI) -> str:
    import urllib.request

    body = json.dumps({"from": caller}).encode()
    request = urllib.request.Request(server.url + "/_local/calls", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(json.loads(response.read())["contact_id"])


def test_events_tail_local_prints_type_and_request_id_never_a_phone(server):
    contact = call(server)

    result = runner.invoke(app, ["events", "tail", "--local", server.url, "--since", "1h"])

    assert result.exit_code == 0, result.output
    assert "CallRequested" in result.output
    assert contact in result.output
    for phone in (TAKUMI, MIZUKI):
        assert phone not in result.output


def test_replay_local_replays_on_the_running_runtime(server):
    call(server)
    result = runner.invoke(app, ["replay", "--local", server.url, "--from", "1h"])
    assert result.exit_code == 0, result.output
    assert "local-replay-" in result.output
    tail = runner.invoke(app, ["events", "tail", "--local", server.url, "--since", "1h"])
    assert "(replay local-replay-" in tail.output


# --- events tail on AWS ------------------------------------------------------------------
def test_events_tail_reads_the_event_log_group(stack):
    logs = boto3.client("logs")
    group = stack["EventLogGroupName"]
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    now = int(time.time() * 1000)
    # What the log rule's input transformer writes: ids and types, no phone numbers.
    record = {
        "detail-type": "Accepted",
        "time": "2026-01-01T00:00:00Z",
        "id": "e-1",
        "request_id": "req-42",
        "member_id": "",
        "replay-name": "",
    }
    logs.put_log_events(
        logGroupName=group,
        logStreamName="s",
        logEvents=[{"timestamp": now, "message": json.dumps(record)}],
    )

    result = runner.invoke(app, ["events", "tail", "--stack", STACK, "--since", "5m"])

    assert result.exit_code == 0, result.output
    assert "Accepted" in result.output and "req-42" in result.output
    assert "replay" not in result.output


def log_record(group: str, stream: str, request_id: str) -> None:
    record = {"detail-type": "Accepted", "time": "2026-01-01T00:00:00Z", "request_id": request_id}
    boto3.client("logs").put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": int(time.time() * 1000), "message": json.dumps(record)}],
    )


def polls_then_stop(*between: Any) -> tuple[list[float], Any]:
    """A stand-in for operate.pause: at the n-th pause it runs `between[n]` (new events
    arrive), after the last it stops the loop as Ctrl-C would. Returns the pauses seen."""
    paused: list[float] = []

    def pause(seconds: float) -> None:
        paused.append(seconds)
        if len(paused) > len(between):
            raise KeyboardInterrupt
        between[len(paused) - 1]()

    return paused, pause


def test_events_tail_follow_prints_new_log_records_once_each(stack, monkeypatch):
    group = stack["EventLogGroupName"]
    boto3.client("logs").create_log_stream(logGroupName=group, logStreamName="s")
    log_record(group, "s", "req-before")
    paused, pause = polls_then_stop(
        lambda: log_record(group, "s", "req-first-poll"),
        lambda: None,  # nothing new: nothing printed again
    )
    monkeypatch.setattr(operate, "pause", pause)

    result = runner.invoke(app, ["events", "tail", "--stack", STACK, "-f", "--poll", "7"])

    assert result.exit_code == 0, result.output  # Ctrl-C ends a follow cleanly
    assert paused == [7, 7, 7]
    ids = re.findall(r"req-[a-z-]+", result.output)
    assert ids == ["req-before", "req-first-poll"]


def test_events_tail_follow_local_prints_new_events_once_each(server, monkeypatch):
    call(server)
    before = len(server.engine.events())
    paused, pause = polls_then_stop(lambda: call(server, MIZUKI), lambda: None)
    monkeypatch.setattr(operate, "pause", pause)

    result = runner.invoke(app, ["events", "tail", "--local", server.url, "--follow"])

    assert result.exit_code == 0, result.output
    assert len(paused) == 3
    events = server.engine.events()
    assert len(events) > before  # Mizuki's call, while following, added some
    kinds = "|".join(operate.EVENT_TYPES)
    # Lines that start with the event's time (the handlers' own log lines are JSON).
    shown = re.findall(rf"^\d{{4}}-\S+\s+({kinds})\b", result.output, re.MULTILINE)
    assert shown == [e["detail-type"] for e in events]  # each once, in order, none again
    for phone in (TAKUMI, MIZUKI):
        assert phone not in result.output


def test_events_tail_says_when_there_is_nothing(stack):
    result = runner.invoke(app, ["events", "tail", "--stack", STACK, "--since", "2h"])

    assert result.exit_code == 0, result.output
    assert "no events in the last 2h" in result.output


# --- directory ---------------------------------------------------------------------------
GOOD = [{"name": "タクミ", "phone": TAKUMI}, {"name": "ミズキ", "phone": MIZUKI, "lang": "en"}]


def write(tmp_path: Path, content: Any) -> Path:
    path = tmp_path / "phonenumber.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content), "utf-8")
    return path


def test_directory_check_shows_the_people_with_masked_phones(tmp_path):
    result = runner.invoke(app, ["directory", "check", str(write(tmp_path, GOOD))])
    assert result.exit_code == 0, result.output
    assert "タクミ" in result.output and "ミズキ" in result.output
    assert mask_phone(TAKUMI) in result.output
    assert TAKUMI not in result.output


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("[{", "not valid JSON"),
        ({"name": "x"}, "JSON array"),
        ([{"name": "タクミ", "phone": "090-1111-2222"}, GOOD[1]], "entry 1"),
        ([GOOD[0], {"name": "ミズキ", "phone": TAKUMI}], "entry 2"),
        ([GOOD[0]], "two"),
    ],
    ids=["not-json", "not-an-array", "not-e164", "duplicate-phone", "one-person"],
)
def test_directory_check_says_what_is_wrong_and_exits_1(tmp_path, content, says):
    result = runner.invoke(app, ["directory", "check", str(write(tmp_path, content))])
    assert result.exit_code == 1
    assert says in result.output


def test_directory_check_lists_every_problem_on_its_own_line(tmp_path):
    content = [{"name": "タクミ", "phone": "090-1111-2222"}, {"name": "", "phone": TAKUMI}]
    result = runner.invoke(app, ["directory", "check", str(write(tmp_path, content))])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[-3].endswith(": 2 problems")
    assert lines[-2:] == [
        "  entry 1 (タクミ): phone is not an E.164 number (like +819011112222)",
        '  entry 2: "name" is missing or empty',
    ]


def test_local_refuses_a_bad_directory_as_directory_check_does(tmp_path):
    content = [{"name": "タクミ", "phone": TAKUMI, "quiet-hours": "22:00-07:00"}, GOOD[1]]
    result = runner.invoke(app, ["local", "--directory", str(write(tmp_path, content))])
    assert result.exit_code == 1  # the input is wrong, not the command line
    assert "unknown key(s) 'quiet-hours' (did you mean 'quiet_hours'?)" in result.output


def test_directory_check_of_a_missing_file_exits_1(tmp_path):
    result = runner.invoke(app, ["directory", "check", str(tmp_path / "nope.json")])
    assert result.exit_code == 1
    assert "cannot read" in result.output


def test_directory_push_uploads_a_valid_directory(stack, tmp_path):
    path = write(tmp_path, GOOD)
    result = runner.invoke(app, ["directory", "push", str(path), "--stack", STACK])
    assert result.exit_code == 0, result.output
    body = (
        boto3.client("s3")
        .get_object(Bucket=stack["DirectoryBucketName"], Key="phonenumber.json")["Body"]
        .read()
    )
    assert body == path.read_bytes()


def test_directory_push_uploads_nothing_when_invalid(stack, tmp_path):
    path = write(tmp_path, [GOOD[0]])
    result = runner.invoke(app, ["directory", "push", str(path), "--stack", STACK])
    assert result.exit_code == 1
    listed = boto3.client("s3").list_objects_v2(Bucket=stack["DirectoryBucketName"])
    assert listed.get("KeyCount", 0) == 0


# --- metrics -----------------------------------------------------------------------------
def test_sms_sends_are_counted_as_sent_or_failed_and_failures_still_raise():
    from hotline_core.adapters.sms import MeteredSms

    counted: list[str] = []

    class Flaky:
        def __init__(self) -> None:
            self.calls = 0

        def send(self, to: str, body: str) -> None:
            self.calls += 1
            if self.calls == 2:
                raise ConnectionError("provider down")

    sms = MeteredSms(Flaky(), count=counted.append)
    sms.send(TAKUMI, "one")
    with pytest.raises(ConnectionError):
        sms.send(TAKUMI, "two")
    assert counted == ["SmsSent", "SmsFailed"]
