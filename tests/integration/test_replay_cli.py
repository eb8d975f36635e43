"""`hotline replay`: the archive replayed to the bus (all of it, or one event type to the
rules that listen to it), the progress it shows, and every way it can go wrong as one clean
line; on the moto stack of tests/integration/operator_stack.py, and `--local` on a running
local runtime.
"""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, NoRegionError
from rich.console import Console

from hotline_tools import operate
from hotline_tools.cli import app
from tests.integration import operator_stack
from tests.integration.operator_stack import STACK, call, runner

# Shared fixtures: pytest finds a fixture by its name in the test module.
stack = operator_stack.stack


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


def test_replay_local_replays_on_the_running_runtime(server):
    call(server)
    result = runner.invoke(app, ["replay", "--local", server.url, "--from", "1h"])
    assert result.exit_code == 0, result.output
    assert "local-replay-" in result.output
    tail = runner.invoke(app, ["events", "tail", "--local", server.url, "--since", "1h"])
    assert "(replay local-replay-" in tail.output
