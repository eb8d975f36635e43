"""`hotline directory forget PHONE`: a person's requests (either side), links, pair items,
pending timers, claims, PIN counters and dead letters go; other people's stay; what cannot be
removed is said."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from hotline_tools.forget import stack_places
from hotline_tools.local.engine import BadRequest
from tests.conftest import MIZUKI, TAKUMI


def _table_keys(local, output: str, key: str) -> set[str]:
    db = local.client("dynamodb")
    table = local.stack.output(output)
    return {item[key]["S"] for item in db.scan(TableName=table, ConsistentRead=True)["Items"]}


def _claims(local) -> set[str]:
    table = local.template.resolve({"Ref": "IdempotencyTable"}, local.stack.refs)
    items = local.client("dynamodb").scan(TableName=table)["Items"]
    return {item["id"]["S"] for item in items}


def _schedules(local) -> set[str]:
    pages = local.client("scheduler").get_paginator("list_schedules").paginate()
    return {s["Name"] for page in pages for s in page["Schedules"]}


def test_forget_removes_everything_the_stack_holds_about_one_person(local):
    # Takumi asks Mizuki (answered), Mizuki asks Takumi (still waiting: a pending timer).
    first = local.call(TAKUMI)["contact_id"]
    local.advance(300)
    second = local.call(MIZUKI)["contact_id"]
    attempts = local.stack.output("PinAttemptsTableName")
    db = local.client("dynamodb")
    for key in (TAKUMI, f"hotline#{TAKUMI}", MIZUKI):
        db.put_item(TableName=attempts, Item={"phone": {"S": key}, "failures": {"N": "1"}})
    dlq = local.stack.output("ConsumerDeadLetterQueueUrl")
    sqs = local.client("sqs")
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"to": TAKUMI}))
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"to": "+818055556666"}))
    assert _claims(local) >= {f"invite#{first}", f"outcome#{first}", f"invite#{second}"}
    assert f"answer-{second}" in _schedules(local)

    answer = local.forget(TAKUMI)

    assert answer["forgotten"]["requests"] == 2
    assert answer["forgotten"]["pin_counters"] == 2
    assert answer["forgotten"]["dead_letters"] == 1
    assert answer["forgotten"]["timers"] == 1
    assert _table_keys(local, "RequestsTableName", "pk") == set()
    assert not {c for c in _claims(local) if first in c or second in c}
    assert _schedules(local) == set()
    assert _table_keys(local, "PinAttemptsTableName", "phone") == {MIZUKI}
    left = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"]) for m in left] == [{"to": "+818055556666"}]
    assert any("archive" in note for note in answer["cannot"])
    # Nothing left behind that would block or confuse the next call.
    assert local.call(TAKUMI)["prompts"][1].startswith("ミズキさんに聞いてみます")


def test_forget_keeps_other_peoples_requests():
    """A circle of three: forgetting Haruto leaves Takumi's request to Mizuki alone."""
    from hotline_tools.local.engine import LocalHotline
    from tests.conftest import ROOT

    directory = json.dumps(
        [
            {"name": "タクミ", "phone": TAKUMI},
            {"name": "ミズキ", "phone": MIZUKI},
            {"name": "ハルト", "phone": "+818055556666"},
        ]
    ).encode()
    local = LocalHotline(root=ROOT, directory=directory).start()
    try:
        local.call(TAKUMI, digits="1")  # Takumi → Mizuki
        local.call("+818055556666", digits="1")  # Haruto → Takumi

        answer = local.forget("+818055556666")

        assert answer["forgotten"]["requests"] == 1
        keys = _table_keys(local, "RequestsTableName", "pk")
        assert f"OPEN#{TAKUMI}#{MIZUKI}" in keys and len(keys) == 3  # link, pointer, pair
    finally:
        local.stop()


@pytest.mark.parametrize("phone", ["09011112222", "", None, "+81 90 1111 2222"])
def test_a_phone_that_is_not_e164_is_refused_and_nothing_changes(local, phone):
    local.call(TAKUMI)
    before = _table_keys(local, "RequestsTableName", "pk")

    with pytest.raises(BadRequest, match=r"E\.164"):
        local.forget(phone)

    assert _table_keys(local, "RequestsTableName", "pk") == before


def test_the_stack_places_come_from_its_resources():
    cfn = boto3.client("cloudformation", region_name="ap-northeast-1")
    resources = [
        ("RequestsTable", "AWS::DynamoDB::Table", "hotline-requests"),
        ("IdempotencyTable", "AWS::DynamoDB::Table", "hotline-claims"),
        ("PinAttemptsTable", "AWS::DynamoDB::Table", "hotline-attempts"),
        ("AnswerScheduleGroup", "AWS::Scheduler::ScheduleGroup", "hotline-answers"),
        ("ConsumerDeadLetterQueue", "AWS::SQS::Queue", "https://sqs/dlq"),
    ]
    with Stubber(cfn) as stub:
        stub.add_response(
            "list_stack_resources",
            {
                "StackResourceSummaries": [
                    {
                        "LogicalResourceId": logical,
                        "PhysicalResourceId": physical,
                        "ResourceType": kind,
                        "LastUpdatedTimestamp": "2026-12-04T00:00:00Z",
                        "ResourceStatus": "CREATE_COMPLETE",
                    }
                    for logical, kind, physical in resources
                ]
            },
            {"StackName": "hotline"},
        )
        places = stack_places("hotline", cfn)

    assert (places.requests_table, places.claims_table, places.attempts_table) == (
        "hotline-requests",
        "hotline-claims",
        "hotline-attempts",
    )
    assert places.schedule_group == "hotline-answers"
    assert places.queues == ("https://sqs/dlq",)


def test_forget_local_over_http_prints_counts_and_what_it_cannot_remove(server):
    from typer.testing import CliRunner

    from hotline_tools.cli import app

    server.engine.call(TAKUMI)

    result = CliRunner().invoke(app, ["directory", "forget", TAKUMI, "--local", server.url])

    assert result.exit_code == 0, result.output
    assert TAKUMI not in result.output
    assert "not removed:" in result.output and "archive" in result.output
    assert _table_keys(server.engine, "RequestsTableName", "pk") == set()


def test_forget_with_a_bad_phone_is_exit_2_and_one_line():
    from typer.testing import CliRunner

    from hotline_tools.cli import app

    result = CliRunner().invoke(app, ["directory", "forget", "090-1111-2222"])

    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
