"""The IAM evaluator of tests/iam_policy.py on its own: IAM's wildcards for actions and
resources, Deny, NotAction and NotResource, iam:PassRole's conditions, the actions and
resources each call needs (transactions, batches, Scheduler), and a role's inline, attached and
referenced managed policies."""

from __future__ import annotations

import pytest

from tests.conftest import TAKUMI
from tests.iam_policy import (
    ApiCall,
    Need,
    RolePolicies,
    UnmappedCall,
    action_matches,
    allowed,
    needs,
    resource_matches,
)


def need(action, resource, **context):
    return Need("F", "call", action, resource, tuple(context.items()))


def allow(action, resource, **extra):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


TABLE = "arn:aws:dynamodb:ap-northeast-1:123456789012:table/t"


@pytest.mark.parametrize(
    ("pattern", "action", "matches"),
    [
        ("dynamodb:GetItem", "dynamodb:GetItem", True),
        ("DynamoDB:getitem", "dynamodb:GetItem", True),  # actions are case-insensitive
        ("dynamodb:*Item", "dynamodb:BatchGetItem", True),
        ("dynamodb:Get*", "dynamodb:BatchGetItem", False),
        ("dynamodb:*Item", "dynamodb:ConditionCheckItem", True),
        ("dynamodb:?etItem", "dynamodb:GetItem", True),
        ("dynamodb:?etItem", "dynamodb:BatchGetItem", False),
        ("dynamodb:GetItem", "dynamodb:BatchGetItem", False),
        ("*", "scheduler:DeleteSchedule", True),
    ],
)
def test_actions_match_with_iams_wildcards(pattern, action, matches):
    assert action_matches(pattern, action) is matches


@pytest.mark.parametrize(
    ("pattern", "arn", "matches"),
    [
        (TABLE, TABLE, True),
        (TABLE, TABLE + "2", False),
        (TABLE, TABLE.upper(), False),  # resources are case-sensitive
        (
            "arn:aws:scheduler:*:*:schedule/g/answer-*",
            "arn:aws:scheduler:r:1:schedule/g/answer-x",
            True,
        ),
        (
            "arn:aws:scheduler:*:*:schedule/g/answer-*",
            "arn:aws:scheduler:r:1:schedule/h/answer-x",
            False,
        ),
        ("arn:aws:s3:::b/phonenumber.json", "arn:aws:s3:::b/other.json", False),
        ("arn:aws:s3:::b/*", "arn:aws:s3:::b/a/b.json", True),
        ("arn:aws:sms-voice:r:1:*", "arn:aws:sms-voice:r:1:phone-number/p-1", True),
        ("arn:aws:sqs:r:1:q?", "arn:aws:sqs:r:1:q1", True),
        ("arn:aws:sqs:r:1:q?", "arn:aws:sqs:r:1:q12", False),
        ("*", "anything", True),
    ],
)
def test_resources_match_with_iams_wildcards(pattern, arn, matches):
    assert resource_matches(pattern, arn) is matches


def test_a_deny_wins_and_not_action_and_not_resource_are_honoured():
    get = need("dynamodb:GetItem", TABLE)
    assert allowed([allow("dynamodb:GetItem", TABLE)], get)
    assert not allowed([allow("dynamodb:PutItem", TABLE)], get)
    assert not allowed(
        [allow("dynamodb:GetItem", TABLE), {**allow("dynamodb:*", "*"), "Effect": "Deny"}], get
    )
    assert allowed([{"Effect": "Allow", "NotAction": "s3:*", "Resource": TABLE}], get)
    assert not allowed([{"Effect": "Allow", "NotAction": "dynamodb:Get*", "Resource": "*"}], get)
    assert not allowed([{"Effect": "Allow", "Action": "*", "NotResource": TABLE}], get)
    assert not allowed([], get)


def test_pass_role_honours_passed_to_service_and_ignores_unmodelled_conditions():
    role = "arn:aws:iam::123456789012:role/r"
    to_scheduler = need("iam:PassRole", role, **{"iam:PassedToService": "scheduler.amazonaws.com"})
    only = {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}
    other = {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}
    assert allowed([allow("iam:PassRole", role, Condition=only)], to_scheduler)
    assert not allowed([allow("iam:PassRole", role, Condition=other)], to_scheduler)
    assert not allowed(
        [allow("iam:PassRole", role, Condition={"StringNotEquals": only["StringEquals"]})],
        to_scheduler,
    )
    unmodelled = {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
    assert allowed([allow("iam:PassRole", role, Condition=unmodelled)], to_scheduler)


def test_a_transaction_needs_each_items_own_action_and_a_batch_each_tables():
    call = ApiCall(
        "F",
        "DynamoDB",
        "TransactWriteItems",
        {
            "TransactItems": [
                {"Put": {"TableName": "a", "Item": {}}},
                {"ConditionCheck": {"TableName": "a", "Key": {}}},
                {"Delete": {"TableName": "b", "Key": {}}},
                {"Update": {"TableName": "b", "Key": {}}},
            ]
        },
    )
    got = [(n.action, n.resource.rsplit("/", 1)[1]) for n in needs(call)]
    assert got == [
        ("dynamodb:PutItem", "a"),
        ("dynamodb:ConditionCheckItem", "a"),
        ("dynamodb:DeleteItem", "b"),
        ("dynamodb:UpdateItem", "b"),
    ]
    batch = ApiCall("F", "DynamoDB", "BatchGetItem", {"RequestItems": {"a": {}, "b": {}}})
    assert [n.action for n in needs(batch)] == ["dynamodb:BatchGetItem"] * 2
    with pytest.raises(UnmappedCall, match="no IAM mapping for DynamoDB ExecuteStatement"):
        needs(ApiCall("F", "DynamoDB", "ExecuteStatement", {}))


def test_scheduler_calls_need_the_schedule_arn_pass_role_and_the_role_what_it_does():
    role = "arn:aws:iam::123456789012:role/hotline-local-SchedulerRole"
    target = {
        "Arn": "arn:aws:lambda:ap-northeast-1:123456789012:function:timer",
        "RoleArn": role,
        "DeadLetterConfig": {"Arn": "arn:aws:sqs:ap-northeast-1:123456789012:dlq"},
    }
    create = ApiCall(
        "F", "Scheduler", "CreateSchedule", {"Name": "answer-1", "GroupName": "g", "Target": target}
    )
    got = [(n.principal, n.action, n.resource) for n in needs(create, {role: "SchedulerRole"})]
    assert got == [
        (
            "F",
            "scheduler:CreateSchedule",
            "arn:aws:scheduler:ap-northeast-1:123456789012:schedule/g/answer-1",
        ),
        ("F", "iam:PassRole", role),
        ("SchedulerRole", "lambda:InvokeFunction", target["Arn"]),
        ("SchedulerRole", "sqs:SendMessage", target["DeadLetterConfig"]["Arn"]),
    ]
    delete = ApiCall("F", "Scheduler", "DeleteSchedule", {"Name": "answer-1"})
    [gone] = needs(delete)
    assert gone.resource.endswith(":schedule/default/answer-1")


@pytest.mark.parametrize(
    ("service", "operation", "params", "expected"),
    [
        (
            "EventBridge",
            "PutEvents",
            {"Entries": [{"DetailType": "X"}]},
            [("events:PutEvents", "arn:aws:events:ap-northeast-1:123456789012:event-bus/default")],
        ),
        (
            "SQS",
            "SendMessage",
            {"QueueUrl": "https://sqs.us-east-1.amazonaws.com/210987654321/q", "MessageBody": "{}"},
            [("sqs:SendMessage", "arn:aws:sqs:us-east-1:210987654321:q")],
        ),
        (
            "S3",
            "GetObject",
            {"Bucket": "b", "Key": "phonenumber.json"},
            [("s3:GetObject", "arn:aws:s3:::b/phonenumber.json")],
        ),
        ("SNS", "Publish", {"PhoneNumber": TAKUMI, "Message": "m"}, [("sns:Publish", "*")]),
        (
            "DynamoDB",
            "Query",
            {"TableName": "t", "IndexName": "i"},
            [("dynamodb:Query", TABLE + "/index/i")],
        ),
    ],
)
def test_each_call_maps_to_its_action_on_its_resources_arn(service, operation, params, expected):
    got = needs(ApiCall("F", service, operation, params))
    assert [(n.action, n.resource) for n in got] == expected
    assert not any(TAKUMI in n.call for n in got)  # the report never shows a phone number


def test_a_role_has_its_inline_attached_and_referenced_managed_policies():
    def grant(action):
        return {"PolicyDocument": {"Statement": [allow(action, TABLE)]}}

    resources = {
        "Fn": {
            "Type": "AWS::Lambda::Function",
            "Properties": {"Role": {"Fn::GetAtt": ["R", "Arn"]}},
        },
        "R": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Policies": [{"PolicyName": "inline", **grant("dynamodb:GetItem")}],
                "ManagedPolicyArns": [{"Ref": "Managed"}, "arn:aws:iam::aws:policy/Other"],
            },
        },
        "Managed": {"Type": "AWS::IAM::ManagedPolicy", "Properties": grant("dynamodb:PutItem")},
        "Attached": {
            "Type": "AWS::IAM::Policy",
            "Properties": {"Roles": [{"Ref": "R"}], **grant("dynamodb:DeleteItem")},
        },
        "Elsewhere": {
            "Type": "AWS::IAM::Policy",
            "Properties": {"Roles": [{"Ref": "Other"}], **grant("dynamodb:UpdateItem")},
        },
        "Queue": {"Type": "AWS::SQS::Queue"},
    }
    policies = RolePolicies(resources, resolve=lambda expr: expr)
    for action in ("GetItem", "PutItem", "DeleteItem"):
        assert policies.allows(Need("Fn", "c", f"dynamodb:{action}", TABLE)), action
    assert not policies.allows(Need("Fn", "c", "dynamodb:UpdateItem", TABLE))
    with pytest.raises(KeyError, match="neither a function nor a role"):
        policies.statements("Queue")
