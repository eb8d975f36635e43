"""The operator's commands: `hotline replay`, `hotline events tail`, `hotline directory`.

AWS is moto. moto's CloudFormation cannot deploy the SAM template, so each test deploys a
tiny plain CloudFormation stack in moto whose outputs have the same names as the real stack's
(EventBusName, EventBusArn, ArchiveArn, EventLogGroupName, DirectoryBucketName): the CLI is
exercised end to end through describe_stacks, exactly as it runs against a real deployment.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from hotline_core.phone import mask_phone
from hotline_tools.cli import app
from hotline_tools.local.server import LocalServer

TAKUMI, MIZUKI = "+819011112222", "+817033334444"
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


def test_replay_of_one_event_type_goes_only_to_the_rules_that_listen_to_it(stack):
    bus = stack["EventBusName"]
    invite, _ = rule_with_queue(bus, "invite", {"detail-type": ["CallRequested"]})
    rule_with_queue(bus, "tell", {"detail-type": ["Accepted", "Declined"]})
    rule_with_queue(bus, "log", {"source": [{"prefix": ""}]})

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
    assert described["Destination"]["FilterArns"] == [invite]


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


# --- the local runtime -------------------------------------------------------------------
@pytest.fixture
def server() -> Iterator[LocalServer]:
    local = LocalServer(port=0).start()
    try:
        yield local
    finally:
        local.stop()


def call(server: LocalServer) -> str:
    import urllib.request

    body = json.dumps({"from": TAKUMI}).encode()
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
