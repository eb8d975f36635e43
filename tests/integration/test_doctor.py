"""`hotline doctor [--stack NAME | --local URL]`.

With --stack, AWS is moto where moto has the call: a tiny plain CloudFormation stack with the
real stack's parameters, outputs and logical ids (the directory bucket, three dead-letter
queues, the alarm topic, three functions), the directory in S3, alarms, SNS's SMS attributes,
Lambda's Errors metric. moto has no Amazon Connect flows or numbers, no End User Messaging
and no SNS SMS sandbox: those clients are botocore's Stubber, which checks every request the
doctor makes, and every answer a test gives, against the real service model.
With --local, the repo's local runtime (`server`) or a small fake of its control API.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber
from moto import mock_aws
from rich.console import Console
from typer.testing import CliRunner

from hotline_tools import doctor, operate
from hotline_tools.cli import app
from tests.conftest import ROOT

runner = CliRunner()
STACK = "hotline-test"
ACCOUNT, REGION = "123456789012", "ap-northeast-1"
INSTANCE_ID = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
INSTANCE_ARN = f"arn:aws:connect:{REGION}:{ACCOUNT}:instance/{INSTANCE_ID}"
TAKUMI, MIZUKI, REN = "+819011112222", "+817033334444", "+818022223333"
LINE1, LINE2, BENEFITS_LINE = "+815012340001", "+815012340009", "+815012340002"
EUM_NUMBER = "+815011112222"  # an End User Messaging number to send from
PHONES = (TAKUMI, MIZUKI, REN, LINE1, LINE2, BENEFITS_LINE)
DIRECTORY = {
    "circles": [
        {
            "number": LINE1,
            "members": [{"name": "タクミ", "phone": TAKUMI}, {"name": "ミズキ", "phone": MIZUKI}],
        },
        {
            "number": LINE2,
            "members": [{"name": "タクミ", "phone": TAKUMI}, {"name": "レン", "phone": REN}],
        },
    ]
}
FLOW_ID = {
    "hotline": "11111111-aaaa-4bbb-8ccc-000000000001",
    "benefits": "11111111-aaaa-4bbb-8ccc-000000000002",
}
PHONE_ID = {
    LINE1: "22222222-aaaa-4bbb-8ccc-000000000001",
    LINE2: "22222222-aaaa-4bbb-8ccc-000000000009",
    BENEFITS_LINE: "22222222-aaaa-4bbb-8ccc-000000000002",
}
SNS_SANDBOX_CALLS = {"get_sms_sandbox_account_status", "list_sms_sandbox_phone_numbers"}


def flow_arn(line: str) -> str:
    return f"{INSTANCE_ARN}/contact-flow/{FLOW_ID[line]}"


def phone_arn(number: str) -> str:
    return f"arn:aws:connect:{REGION}:{ACCOUNT}:phone-number/{PHONE_ID[number]}"


ROLE = {
    "Type": "AWS::IAM::Role",
    "Properties": {
        "AssumeRolePolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    },
}


def function(handler: str) -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Runtime": "python3.13",
            "Handler": handler,
            "Role": {"Fn::GetAtt": ["Role", "Arn"]},
            "Code": {"ZipFile": "def handler(event, context): pass"},
        },
    }


def parameter(default: str) -> dict[str, Any]:
    return {"Type": "String", "Default": default}


# The real template's names: parameters, logical ids and outputs.
TEMPLATE = {
    "Parameters": {
        "ConnectInstanceArn": parameter(""),
        "SmsProvider": parameter("sns"),
        "SmsOriginationIdentity": parameter(""),
        "SmsMonthlySpendAlarmUsd": parameter("0.8"),
        "PublicBaseUrl": parameter(""),
        "CustomDomainName": parameter(""),
        "AnswerWindowSeconds": parameter("120"),
    },
    "Resources": {
        "DirectoryBucket": {"Type": "AWS::S3::Bucket"},
        "ConsumerDeadLetterQueue": {"Type": "AWS::SQS::Queue"},
        "TimerDeadLetterQueue": {"Type": "AWS::SQS::Queue"},
        "InviteReceiverFunctionCallRequestedQueue": {"Type": "AWS::SQS::Queue"},
        "AlarmTopic": {"Type": "AWS::SNS::Topic"},
        "Role": ROLE,
        "CallRequestFunction": function("call_request.handler"),
        "BenefitRequestFunction": function("benefit_request.handler"),
        "InviteReceiverFunction": function("invite_receiver.handler"),
    },
    "Outputs": {
        "EventBusName": {"Value": f"{STACK}-bus"},
        "EventBusArn": {"Value": f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{STACK}-bus"},
        "ArchiveArn": {"Value": f"arn:aws:events:{REGION}:{ACCOUNT}:archive/{STACK}-archive"},
        "DirectoryBucketName": {"Value": {"Ref": "DirectoryBucket"}},
        "ConsumerDeadLetterQueueUrl": {"Value": {"Ref": "ConsumerDeadLetterQueue"}},
        "CallRequestFunctionArn": {"Value": {"Fn::GetAtt": ["CallRequestFunction", "Arn"]}},
        "BenefitRequestFunctionArn": {"Value": {"Fn::GetAtt": ["BenefitRequestFunction", "Arn"]}},
        "EventLogGroupName": {"Value": f"/aws/events/{STACK}-hotline"},
        "AlarmTopicArn": {"Value": {"Ref": "AlarmTopic"}},
        "FunctionLogGroupName": {"Value": f"/hotline/{STACK}/functions"},
        "HotlineContactFlowArn": {"Value": flow_arn("hotline")},
        "BenefitsContactFlowArn": {"Value": flow_arn("benefits")},
    },
}


class Split:
    """One SNS client to the doctor: the SMS sandbox calls (which moto lacks) go to a stubbed
    client, everything else to moto."""

    def __init__(self, real: Any, stubbed: Any) -> None:
        self.real, self.stubbed = real, stubbed

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stubbed if name in SNS_SANDBOX_CALLS else self.real, name)


@dataclass
class World:
    """The deployed test stack (moto) and the stubbed services."""

    connect: Stubber
    eum: Stubber
    sns: Stubber
    outputs: dict[str, str]
    resources: dict[str, str]
    calls: set[str]  # every operation the doctor called, whichever client

    @property
    def cfn(self) -> Any:
        return boto3.client("cloudformation")

    def function(self, logical: str) -> str:
        return self.resources[logical]

    def run(self, *args: str) -> Any:
        return runner.invoke(app, ["doctor", "--stack", STACK, *args])


def deploy(**parameters: str) -> tuple[dict[str, str], dict[str, str]]:
    cfn = boto3.client("cloudformation")
    cfn.create_stack(
        StackName=STACK,
        TemplateBody=json.dumps(TEMPLATE),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
    )
    described = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
    summaries = cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
    resources = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in summaries}
    return outputs, resources


@pytest.fixture(autouse=True)
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    # Never cut a line: each check is asserted on whole lines.
    monkeypatch.setattr(doctor, "console", Console(width=400))


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def make_world(monkeypatch: pytest.MonkeyPatch, **parameters: str) -> World:
    """The stack deployed with `parameters` (Connect and a raised SMS limit by default), the
    directory uploaded, one confirmed alarm e-mail, and the stubbed clients in place."""
    params = {"ConnectInstanceArn": INSTANCE_ARN, "SmsMonthlySpendAlarmUsd": "80", **parameters}
    outputs, resources = deploy(**params)
    boto3.client("s3").put_object(
        Bucket=outputs["DirectoryBucketName"],
        Key="phonenumber.json",
        Body=json.dumps(DIRECTORY, ensure_ascii=False).encode(),
    )
    sns = boto3.client("sns")
    sns.set_sms_attributes(attributes={"MonthlySpendLimit": "100"})
    sns.subscribe(TopicArn=outputs["AlarmTopicArn"], Protocol="email", Endpoint="ops@example.com")
    cloudwatch = boto3.client("cloudwatch")
    for name in ("SmsSpendAlarm", "ConsumerDeadLetterQueueAlarm"):
        cloudwatch.put_metric_alarm(
            AlarmName=f"{STACK}-{name}-X1Y2",
            AlarmDescription=f"Dead letters: `hotline dead-letters list --stack {STACK}`",
            AlarmActions=[outputs["AlarmTopicArn"]],
            Namespace="AWS/SQS",
            MetricName="ApproximateNumberOfMessagesVisible",
            Statistic="Maximum",
            Period=300,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
        )
    calls: set[str] = set()

    def recorded(client: Any) -> Any:
        # First, so that it sees every call before a Stubber answers it.
        client.meta.events.register_first(
            "before-parameter-build", lambda model, **_: calls.add(model.name)
        )
        return client

    stubs = {}
    for service in ("connect", "pinpoint-sms-voice-v2", "sns"):
        stub = Stubber(recorded(boto3.client(service)))
        stub.activate()
        stubs[service] = stub

    def clients(service: str) -> Any:
        if service == "sns":
            return Split(recorded(operate.aws("sns")), stubs["sns"].client)
        if service in stubs:
            return stubs[service].client
        return recorded(operate.aws(service))

    monkeypatch.setattr(doctor, "aws", clients)
    return World(
        connect=stubs["connect"],
        eum=stubs["pinpoint-sms-voice-v2"],
        sns=stubs["sns"],
        outputs=outputs,
        resources=resources,
        calls=calls,
    )


@pytest.fixture
def world(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    made = make_world(monkeypatch)
    yield made
    for stub in (made.connect, made.eum, made.sns):
        stub.assert_no_pending_responses()  # every answer queued was asked for


# --- what the stubbed services answer ---------------------------------------------------------
def sns_production(world: World) -> None:
    world.sns.add_response("get_sms_sandbox_account_status", {"IsInSandbox": False}, {})


def sns_sandbox(world: World, verified: dict[str, str]) -> None:
    world.sns.add_response("get_sms_sandbox_account_status", {"IsInSandbox": True}, {})
    world.sns.add_response(
        "list_sms_sandbox_phone_numbers",
        {"PhoneNumbers": [{"PhoneNumber": p, "Status": s} for p, s in verified.items()]},
        {},
    )


def connect_answers(
    world: World,
    *,
    flows: dict[str, tuple[str, str]] | None = None,
    lambdas: tuple[str, ...] = ("CallRequestFunctionArn", "BenefitRequestFunctionArn"),
    claimed: tuple[str, ...] = (LINE1, LINE2, BENEFITS_LINE),
    runs: dict[str, str] | None = None,
    status: str = "CLAIMED",
) -> None:
    """Queue Connect's answers in the order the doctor asks: the flows, each described; the
    associated functions; the claimed numbers; which flow each number runs; each circle's
    number described."""
    flows = (
        {"hotline": ("PUBLISHED", "ACTIVE"), "benefits": ("PUBLISHED", "ACTIVE")}
        if flows is None
        else flows
    )
    runs = {LINE1: "hotline", LINE2: "hotline", BENEFITS_LINE: "benefits"} if runs is None else runs
    world.connect.add_response(
        "list_contact_flows",
        {
            "ContactFlowSummaryList": [
                {
                    "Id": FLOW_ID[line],
                    "Arn": flow_arn(line),
                    "Name": f"{STACK}-{line}",
                    "ContactFlowType": "CONTACT_FLOW",
                    "ContactFlowState": state,
                    "ContactFlowStatus": published,
                }
                for line, (published, state) in flows.items()
            ]
        },
        {"InstanceId": INSTANCE_ID, "ContactFlowTypes": ["CONTACT_FLOW"]},
    )
    for line in ("hotline", "benefits"):
        if line not in flows:
            continue
        published, state = flows[line]
        world.connect.add_response(
            "describe_contact_flow",
            {
                "ContactFlow": {
                    "Arn": flow_arn(line),
                    "Id": FLOW_ID[line],
                    "Name": f"{STACK}-{line}",
                    "Type": "CONTACT_FLOW",
                    "State": state,
                    "Status": published,
                    "Content": "{}",
                }
            },
            {"InstanceId": INSTANCE_ID, "ContactFlowId": FLOW_ID[line]},
        )
    world.connect.add_response(
        "list_lambda_functions",
        {"LambdaFunctions": [world.outputs[name] for name in lambdas]},
        {"InstanceId": INSTANCE_ID},
    )
    world.connect.add_response(
        "list_phone_numbers_v2",
        {
            "ListPhoneNumbersSummaryList": [
                {
                    "PhoneNumberId": PHONE_ID[number],
                    "PhoneNumberArn": phone_arn(number),
                    "PhoneNumber": number,
                    "PhoneNumberCountryCode": "JP",
                    "PhoneNumberType": "DID",
                    "TargetArn": INSTANCE_ARN,
                    "InstanceId": INSTANCE_ID,
                }
                for number in claimed
            ]
        },
        {"InstanceId": INSTANCE_ID},
    )
    world.connect.add_response(
        "list_flow_associations",
        {
            "FlowAssociationSummaryList": [
                {
                    "ResourceId": phone_arn(number),
                    "FlowId": flow_arn(line),
                    "ResourceType": "VOICE_PHONE_NUMBER",
                }
                for number, line in runs.items()
                if number in claimed
            ]
        },
        {"InstanceId": INSTANCE_ID, "ResourceType": "VOICE_PHONE_NUMBER"},
    )
    for number in (LINE1, LINE2):
        if number not in claimed:
            continue
        world.connect.add_response(
            "describe_phone_number",
            {
                "ClaimedPhoneNumberSummary": {
                    "PhoneNumberId": PHONE_ID[number],
                    "PhoneNumberArn": phone_arn(number),
                    "PhoneNumber": number,
                    "PhoneNumberCountryCode": "JP",
                    "PhoneNumberType": "DID",
                    "TargetArn": INSTANCE_ARN,
                    "InstanceId": INSTANCE_ID,
                    "PhoneNumberStatus": {"Status": status},
                }
            },
            {"PhoneNumberId": PHONE_ID[number]},
        )


# --- reading the report ----------------------------------------------------------------------
def lines(output: str) -> dict[str, tuple[str, str, str]]:
    """Each check line by name: (symbol, detail, the fix under it or "")."""
    found: dict[str, tuple[str, str, str]] = {}
    text = output.splitlines()
    for index, line in enumerate(text):
        match = re.match(r"^([✓!✗]) ([^:]+): (.*)$", line)
        if not match:
            continue
        fix = ""
        for following in text[index + 1 :]:
            if not following.startswith("    "):
                break
            if following.startswith("    fix: "):
                fix = following.removeprefix("    fix: ")
        found[match[2]] = (match[1], match[3], fix)
    return found


def assert_no_phone(output: str) -> None:
    for phone in PHONES:
        assert phone not in output
        assert phone[3:] not in output


# --- all well --------------------------------------------------------------------------------
def test_a_healthy_deployment_passes_every_check_and_exits_0(world: World) -> None:
    sns_production(world)
    connect_answers(world)

    result = world.run()

    assert result.exit_code == 0, result.output
    found = lines(result.output)
    assert {name: symbol for name, (symbol, _, _) in found.items()} == {
        "stack status": "✓",
        "stack outputs": "✓",
        "stack parameters": "✓",
        "directory": "✓",
        "SMS account": "✓",
        "SMS spend limit": "✓",
        "SMS spend alarm": "✓",
        f"flow {STACK}-hotline": "✓",
        f"flow {STACK}-benefits": "✓",
        "Lambda in Connect": "✓",
        "circle 1 number": "✓",
        "circle 2 number": "✓",
        "benefits number": "✓",
        "dead letters": "✓",
        "alarms": "✓",
        "alarm notifications": "✓",
        "function errors": "✓",
    }
    assert found["stack status"][1] == "CREATE_COMPLETE"
    assert "3 people, 2 circles" in found["directory"][1]
    assert found["circle 1 number"][1] == f"+81********01 claimed → {STACK}-hotline"
    assert "all 3 dead-letter queues empty" in found["dead letters"][1]
    assert "none of the 2 alarms" in found["alarms"][1]
    assert "3 functions" in found["function errors"][1]
    assert result.output.rstrip().endswith("17 passed, 0 warnings, 0 failed")
    assert_no_phone(result.output)


def test_the_expected_bill_is_a_model_that_says_its_assumptions(world: World) -> None:
    sns_production(world)
    connect_answers(world)

    result = world.run()

    text = result.output.splitlines()
    at = next(i for i, line in enumerate(text) if line.startswith("✓ SMS spend limit: "))
    assert text[at] == (
        "✓ SMS spend limit: SNS SMS spend limit USD 100 a month, above the expected bill "
        "~USD 72 a month"
    )
    assert text[at + 1] == (
        "    expected bill: a model: 300 conversations a month × (2-segment invitation with "
        "the execute-api link + 1-segment text to the caller) × USD 0.08 a Japanese segment "
        "(the top of the README's range; check AWS's current price); the benefits line not "
        "counted; --conversations N for your own volume"
    )


# --- SMS -------------------------------------------------------------------------------------
def test_in_the_sns_sandbox_each_unverified_directory_phone_fails_with_the_command_to_verify(
    world: World,
) -> None:
    sns_sandbox(world, {TAKUMI: "Verified", REN: "Pending"})
    connect_answers(world)

    result = world.run()

    assert result.exit_code == 1
    found = lines(result.output)
    assert found["SMS account"][0] == "!"
    assert "request production access" in found["SMS account"][2]
    symbol, detail, fix = found["SMS sandbox ミズキ"]
    assert symbol == "✗"
    assert detail == "+81********44 is not verified in the SNS sandbox: texts to it fail"
    assert fix.startswith("verify ミズキ (+81********44) in the SNS sandbox: ")
    assert "aws sns create-sms-sandbox-phone-number --phone-number <ミズキ's phone>" in fix
    assert "aws sns verify-sms-sandbox-phone-number" in fix
    symbol, detail, fix = found["SMS sandbox レン"]
    assert (symbol, detail) == (
        "✗",
        "+81********33 is waiting for its code in the SNS sandbox: texts to it fail",
    )
    assert "--one-time-password" in fix
    assert "SMS sandbox タクミ" not in found
    assert_no_phone(result.output)


def test_an_sms_spend_limit_below_the_expected_bill_fails_and_so_does_an_alarm_above_it(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world(monkeypatch)
    boto3.client("sns").set_sms_attributes(attributes={"MonthlySpendLimit": "1"})
    sns_production(world)
    connect_answers(world)

    result = world.run()

    assert result.exit_code == 1
    found = lines(result.output)
    symbol, detail, fix = found["SMS spend limit"]
    assert symbol == "✗"
    assert detail == (
        "SNS SMS spend limit USD 1 a month is below the expected bill ~USD 72 a month: SMS stop "
        "silently at the limit"
    )
    assert fix.endswith("aws sns set-sms-attributes --attributes MonthlySpendLimit=87")
    symbol, detail, fix = found["SMS spend alarm"]
    assert symbol == "✗"
    assert "fires at USD 80, not below the spend limit USD 1" in detail
    assert "sam deploy --guided, answering SmsMonthlySpendAlarmUsd 0.9" in fix


def test_more_conversations_than_the_limit_covers_fail_and_a_short_link_halves_the_invitation(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world(monkeypatch, CustomDomainName="h.example.jp")
    sns_production(world)
    connect_answers(world)

    result = world.run("--conversations", "1000")

    _, detail, fix = lines(result.output)["SMS spend limit"]
    # 1000 × (1 + 1) segments × USD 0.08
    assert "below the expected bill ~USD 160" in detail
    assert "1000 conversations a month × (1-segment invitation with a short link" in (result.output)
    assert "MonthlySpendLimit=192" in fix
    assert result.exit_code == 1


def test_a_spend_alarm_below_the_expected_bill_is_a_warning(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world(monkeypatch, SmsMonthlySpendAlarmUsd="0.8")
    sns_production(world)
    connect_answers(world)

    result = world.run()

    assert result.exit_code == 0, result.output
    symbol, detail, fix = lines(result.output)["SMS spend alarm"]
    assert symbol == "!"
    assert "below the expected bill ~USD 72: it will ring in an ordinary month" in detail
    assert fix == (
        "set it between the expected bill and the limit, e.g. 90: sam deploy --guided, "
        "answering SmsMonthlySpendAlarmUsd"
    )


def eum_account(
    world: World, tier: str = "PRODUCTION", limit: int = 100, max_limit: int = 100
) -> None:
    world.eum.add_response(
        "describe_account_attributes",
        {"AccountAttributes": [{"Name": "ACCOUNT_TIER", "Value": tier}]},
        {},
    )
    if tier == "SANDBOX":
        world.eum.add_response(
            "describe_verified_destination_numbers",
            {
                "VerifiedDestinationNumbers": [
                    {
                        "VerifiedDestinationNumberArn": f"arn:aws:sms-voice:{REGION}:{ACCOUNT}:"
                        "verified-destination-number/vdn-1",
                        "VerifiedDestinationNumberId": "vdn-1",
                        "DestinationPhoneNumber": TAKUMI,
                        "Status": "VERIFIED",
                        "CreatedTimestamp": datetime(2026, 1, 1, tzinfo=UTC),
                    }
                ]
            },
            {},
        )
    world.eum.add_response(
        "describe_spend_limits",
        {
            "SpendLimits": [
                {
                    "Name": "TEXT_MESSAGE_MONTHLY_SPEND_LIMIT",
                    "EnforcedLimit": limit,
                    "MaxLimit": max_limit,
                    "Overridden": True,
                }
            ]
        },
        {},
    )


def eum_phone_number(
    world: World, country: str, expected: dict[str, Any], number: str = "+12065550100"
) -> None:
    world.eum.add_response(
        "describe_phone_numbers",
        {
            "PhoneNumbers": [
                {
                    "PhoneNumberArn": f"arn:aws:sms-voice:{REGION}:{ACCOUNT}:phone-number/phone-1",
                    "PhoneNumberId": "phone-1",
                    "PhoneNumber": number,
                    "Status": "ACTIVE",
                    "IsoCountryCode": country,
                    "MessageType": "TRANSACTIONAL",
                    "NumberCapabilities": ["SMS"],
                    "NumberType": "LONG_CODE",
                    "MonthlyLeasingPrice": "1.00",
                    "TwoWayEnabled": False,
                    "SelfManagedOptOutsEnabled": False,
                    "OptOutListName": "Default",
                    "DeletionProtectionEnabled": False,
                    "CreatedTimestamp": datetime(2026, 1, 1, tzinfo=UTC),
                }
            ]
        },
        expected,
    )


def test_an_end_user_messaging_identity_in_another_country_fails(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world(
        monkeypatch, SmsProvider="end-user-messaging", SmsOriginationIdentity="phone-1"
    )
    eum_account(world)
    eum_phone_number(world, "US", {"PhoneNumberIds": ["phone-1"]})
    connect_answers(world)

    result = world.run()

    assert result.exit_code == 1
    found = lines(result.output)
    assert found["SMS account"][:2] == (
        "✓",
        "End User Messaging SMS in production: any phone can be texted",
    )
    assert found["SMS spend limit"][0] == "✓"
    symbol, detail, fix = found["origination identity"]
    assert (symbol, detail) == ("✗", "phone number phone-1 is for US, not Japan (JP)")
    assert "use an identity for JP" in fix
    assert "set SmsOriginationIdentity to it (sam deploy --guided)" in fix


def test_end_user_messaging_in_the_sandbox_a_jp_sender_id_and_a_low_limit(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world(
        monkeypatch, SmsProvider="end-user-messaging", SmsOriginationIdentity="HOTLINE"
    )
    eum_account(world, tier="SANDBOX", limit=1, max_limit=1)
    world.eum.add_response(
        "describe_sender_ids",
        {
            "SenderIds": [
                {
                    "SenderIdArn": f"arn:aws:sms-voice:{REGION}:{ACCOUNT}:sender-id/HOTLINE/JP",
                    "SenderId": "HOTLINE",
                    "IsoCountryCode": "JP",
                    "MessageTypes": ["TRANSACTIONAL"],
                    "MonthlyLeasingPrice": "0.00",
                    "DeletionProtectionEnabled": False,
                    "Registered": True,
                }
            ]
        },
        {"Filters": [{"Name": "sender-id", "Values": ["HOTLINE"]}]},
    )
    connect_answers(world)

    result = world.run()

    found = lines(result.output)
    assert found["SMS account"][0] == "!"
    assert "#sandbox-sms-move-to-production" in found["SMS account"][2]
    assert found["SMS sandbox ミズキ"][0] == "✗"
    assert "create-verified-destination-number" in found["SMS sandbox ミズキ"][2]
    assert "SMS sandbox タクミ" not in found
    symbol, detail, fix = found["SMS spend limit"]
    assert symbol == "✗"
    assert detail.startswith("End User Messaging text spend limit USD 1 a month is below")
    assert fix.startswith("request a spending quota increase to USD 87")
    assert found["origination identity"][:2] == ("✓", "sender ID HOTLINE, active, for JP")
    assert result.exit_code == 1
    assert_no_phone(result.output)


def eum_pool(world: World) -> None:
    world.eum.add_response(
        "describe_pools",
        {
            "Pools": [
                {
                    "PoolArn": f"arn:aws:sms-voice:{REGION}:{ACCOUNT}:pool/pool-1",
                    "PoolId": "pool-1",
                    "Status": "ACTIVE",
                    "MessageType": "TRANSACTIONAL",
                    "TwoWayEnabled": False,
                    "SelfManagedOptOutsEnabled": False,
                    "OptOutListName": "Default",
                    "SharedRoutesEnabled": False,
                    "DeletionProtectionEnabled": False,
                    "CreatedTimestamp": datetime(2026, 1, 1, tzinfo=UTC),
                }
            ]
        },
        {"PoolIds": ["pool-1"]},
    )
    world.eum.add_response(
        "list_pool_origination_identities",
        {
            "PoolArn": f"arn:aws:sms-voice:{REGION}:{ACCOUNT}:pool/pool-1",
            "PoolId": "pool-1",
            "OriginationIdentities": [
                {
                    "OriginationIdentityArn": f"arn:aws:sms-voice:{REGION}:{ACCOUNT}:"
                    "sender-id/HOTLINE/JP",
                    "OriginationIdentity": "HOTLINE",
                    "IsoCountryCode": "JP",
                    "NumberCapabilities": ["SMS"],
                }
            ],
        },
        {"PoolId": "pool-1"},
    )


def eum_number_by_e164(world: World) -> None:
    # Every number of the account, matched by its number.
    eum_phone_number(world, "JP", {}, number=EUM_NUMBER)


def eum_unknown(world: World) -> None:
    world.eum.add_client_error(
        "describe_phone_numbers",
        service_error_code="ResourceNotFoundException",
        service_message="Resource phone-nope not found",
        http_status_code=404,
        expected_params={"PhoneNumberIds": ["phone-nope"]},
    )


@pytest.mark.parametrize(
    ("identity", "answers", "expected"),
    [
        ("pool-1", eum_pool, ("✓", "pool pool-1, active, for JP")),
        (EUM_NUMBER, eum_number_by_e164, ("✓", "phone number +81********22, active, for JP")),
        (
            "phone-nope",
            eum_unknown,
            (
                "✗",
                "phone-nope is no phone number, sender ID or pool of this account in this region",
            ),
        ),
    ],
)
def test_the_origination_identity_is_found_whatever_form_sendtextmessage_takes_it_in(
    aws: None, monkeypatch: pytest.MonkeyPatch, identity: str, answers: Any, expected: Any
) -> None:
    world = make_world(
        monkeypatch, SmsProvider="end-user-messaging", SmsOriginationIdentity=identity
    )
    eum_account(world)
    answers(world)
    connect_answers(world)

    result = world.run()

    assert lines(result.output)["origination identity"][:2] == expected
    assert EUM_NUMBER not in result.output
    world.eum.assert_no_pending_responses()


def test_a_network_failure_is_a_one_line_failure_of_the_checks_that_needed_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    sns_production(world)
    connect_answers(world)
    stubbed = doctor.aws

    class Unreachable:
        def __getattr__(self, name: str) -> Any:
            def call(**_: Any) -> Any:
                raise EndpointConnectionError(
                    endpoint_url="https://monitoring.ap-northeast-1.amazonaws.com/"
                )

            return call

    monkeypatch.setattr(doctor, "aws", lambda s: Unreachable() if s == "cloudwatch" else stubbed(s))

    result = world.run()

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    found = lines(result.output)
    unreachable = (
        "EndpointConnectionError: Could not connect to the endpoint URL: "
        '"https://monitoring.ap-northeast-1.amazonaws.com/"'
    )
    fix = "check the network connection to AWS and run hotline doctor again"
    assert found["alarms"] == ("✗", unreachable, fix)
    assert found["errors of CallRequestFunction"] == ("✗", unreachable, fix)
    assert found["dead letters"][0] == "✓"


# --- Amazon Connect --------------------------------------------------------------------------
def test_a_flow_missing_and_a_flow_not_published_fail(world: World) -> None:
    sns_production(world)
    connect_answers(world, flows={"hotline": ("SAVED", "ACTIVE")})

    result = world.run()

    assert result.exit_code == 1
    found = lines(result.output)
    symbol, detail, fix = found[f"flow {STACK}-hotline"]
    assert (symbol, detail) == ("✗", "SAVED published: calls do not run what is saved")
    assert (
        fix
        == f"publish it: Amazon Connect admin website → Routing → Flows → {STACK}-hotline → Publish"
    )
    symbol, detail, fix = found[f"flow {STACK}-benefits"]
    assert symbol == "✗"
    assert detail.startswith("not in the Connect instance")
    assert "sam build && sam deploy" in fix
    # Without its flow, no number can run the benefits line: nothing more to say about it.
    assert "benefits number" not in found


def test_an_archived_flow_fails_with_the_call_that_restores_it(world: World) -> None:
    sns_production(world)
    connect_answers(
        world, flows={"hotline": ("PUBLISHED", "ARCHIVED"), "benefits": ("PUBLISHED", "ACTIVE")}
    )

    result = world.run()

    symbol, _, fix = lines(result.output)[f"flow {STACK}-hotline"]
    assert symbol == "✗"
    assert fix == (
        f"aws connect update-contact-flow-metadata --instance-id {INSTANCE_ID} "
        f"--contact-flow-id {FLOW_ID['hotline']} --contact-flow-state ACTIVE"
    )


def test_a_function_connect_does_not_know_fails(world: World) -> None:
    sns_production(world)
    connect_answers(world, lambdas=("BenefitRequestFunctionArn",))

    result = world.run()

    found = lines(result.output)
    symbol, detail, fix = found[f"Lambda for {STACK}-hotline"]
    assert symbol == "✗"
    name = world.outputs["CallRequestFunctionArn"].rsplit(":", 1)[-1]
    assert detail.startswith(f"{name} is not associated with the Connect instance")
    assert fix.endswith(
        f"aws connect associate-lambda-function --instance-id {INSTANCE_ID} "
        f"--function-arn {world.outputs['CallRequestFunctionArn']}"
    )
    assert found["Lambda in Connect"][:2] == (
        "✓",
        f"associated: {world.outputs['BenefitRequestFunctionArn'].rsplit(':', 1)[-1]}",
    )


def test_a_number_not_pointed_at_its_flow_fails_with_where_to_point_it(world: World) -> None:
    sns_production(world)
    connect_answers(world, runs={LINE2: "benefits", BENEFITS_LINE: "benefits"})

    result = world.run()

    assert result.exit_code == 1
    found = lines(result.output)
    point = (
        f"set its flow to {STACK}-hotline in the Amazon Connect console (Channels → Phone "
        "numbers → the number → Contact flow / IVR)"
    )
    assert found["circle 1 number"] == (
        "✗",
        "+81********01 is claimed but runs no flow: its calls are not answered",
        point,
    )
    assert found["circle 2 number"] == (
        "✗",
        f"+81********09 runs {STACK}-benefits, not {STACK}-hotline",
        point,
    )
    assert found["benefits number"][0] == "✓"


def test_a_circle_number_connect_does_not_have_fails_and_says_how_japan_gives_numbers(
    world: World,
) -> None:
    sns_production(world)
    connect_answers(world, claimed=(LINE1, BENEFITS_LINE))

    result = world.run()

    assert result.exit_code == 1
    found = lines(result.output)
    symbol, detail, fix = found["circle 2 number"]
    assert (symbol, detail) == (
        "✗",
        "+81********09 is not a number of the Connect instance: calls to it reach nothing",
    )
    assert fix.startswith("claim +81********09 (Channels → Phone numbers → Claim a number)")
    assert "hotline directory push phonenumber.json --stack hotline-test" in fix
    assert fix.endswith(
        "in Japan, Connect gives numbers only to a business, through an AWS Support case with "
        "three documents: see README 'Running it in Japan'"
    )
    assert found["circle 1 number"][0] == "✓"
    assert_no_phone(result.output)


def test_a_number_still_being_claimed_is_a_warning(world: World) -> None:
    sns_production(world)
    connect_answers(world, status="IN_PROGRESS")

    result = world.run()

    assert result.exit_code == 0, result.output
    assert lines(result.output)["circle 1 number"][:2] == (
        "!",
        "+81********01 is still being claimed",
    )


def test_without_a_connect_instance_one_warning_says_so(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world(monkeypatch, ConnectInstanceArn="")
    sns_production(world)

    result = world.run()

    assert result.exit_code == 0, result.output
    found = lines(result.output)
    assert found["Amazon Connect"][0] == "!"
    assert "set ConnectInstanceArn" in found["Amazon Connect"][2]
    assert not [name for name in found if "number" in name or name.startswith("flow ")]


# --- dead letters, alarms, errors ------------------------------------------------------------
def test_dead_letters_fail_naming_the_commands_that_list_and_redrive_them(world: World) -> None:
    sns_production(world)
    connect_answers(world)
    sqs = boto3.client("sqs")
    for body in ("{}", "{}"):
        sqs.send_message(QueueUrl=world.resources["TimerDeadLetterQueue"], MessageBody=body)

    result = world.run()

    assert result.exit_code == 1
    assert lines(result.output)["dead letters in TimerDeadLetterQueue"] == (
        "✗",
        "2 dead letters",
        f"look at them: hotline dead-letters list --stack {STACK}; fix the cause; then "
        f"hotline dead-letters redrive --stack {STACK} --all",
    )
    assert "dead letters in ConsumerDeadLetterQueue" not in lines(result.output)


def test_an_alarm_in_alarm_fails_with_what_it_says(world: World) -> None:
    sns_production(world)
    connect_answers(world)
    name = f"{STACK}-ConsumerDeadLetterQueueAlarm-X1Y2"
    boto3.client("cloudwatch").set_alarm_state(
        AlarmName=name, StateValue="ALARM", StateReason="Threshold Crossed: 1 datapoint [3.0]"
    )

    result = world.run()

    assert result.exit_code == 1
    symbol, detail, fix = lines(result.output)[f"alarm {name}"]
    assert symbol == "✗"
    assert re.fullmatch(
        r"in ALARM since \d{4}-\d\d-\d\d \d\d:\d\d UTC: Threshold Crossed: 1 datapoint \[3\.0\]",
        detail,
    )
    assert fix == (
        f"what it says: Dead letters: `hotline dead-letters list --stack {STACK}` "
        f"(aws cloudwatch describe-alarms --alarm-names {name})"
    )


def test_function_errors_in_the_last_hour_fail_naming_the_log(world: World) -> None:
    sns_production(world)
    connect_answers(world)
    name = world.resources["InviteReceiverFunction"]
    boto3.client("cloudwatch").put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {
                "MetricName": "Errors",
                "Dimensions": [{"Name": "FunctionName", "Value": name}],
                "Timestamp": datetime.now(UTC) - timedelta(minutes=minutes),
                "Value": 1,
            }
            for minutes in (5, 20, 50, 90)  # the last one is older than an hour
        ],
    )

    result = world.run()

    assert result.exit_code == 1
    assert lines(result.output)["errors of InviteReceiverFunction"] == (
        "✗",
        "3 errors in the last hour",
        f"read its log: aws logs tail /hotline/{STACK}/functions --since 1h | grep {name}",
    )


def test_nobody_subscribed_to_the_alarms_is_a_warning(world: World) -> None:
    sns_production(world)
    connect_answers(world)
    sns = boto3.client("sns")
    for subscription in sns.list_subscriptions()["Subscriptions"]:
        sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])

    result = world.run()

    assert result.exit_code == 0, result.output
    assert lines(result.output)["alarm notifications"] == (
        "!",
        "nobody is subscribed to the alarm topic: alarms notify no one",
        "set AlarmEmail (sam deploy --guided) and confirm the e-mail AWS sends",
    )


# --- AWS refusing ----------------------------------------------------------------------------
def test_access_denied_in_one_check_is_its_one_failed_line_and_the_others_still_run(
    world: World,
) -> None:
    world.sns.add_client_error(
        "get_sms_sandbox_account_status",
        service_error_code="AuthorizationError",
        service_message=(
            "User: arn:aws:iam::123456789012:user/ops is not authorized to perform: "
            "SNS:GetSMSSandboxAccountStatus\n on resource: * [bold]"
        ),
        http_status_code=403,
    )
    world.connect.add_client_error(
        "list_contact_flows",
        service_error_code="AccessDeniedException",
        service_message="not allowed",
        http_status_code=403,
    )
    world.connect.add_response("list_lambda_functions", {"LambdaFunctions": []})
    world.connect.add_client_error(
        "list_contact_flows", service_error_code="AccessDeniedException", http_status_code=403
    )

    result = world.run()

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    found = lines(result.output)
    assert found["SMS account"] == (
        "✗",
        "AWS refused GetSMSSandboxAccountStatus: AuthorizationError: User: "
        "arn:aws:iam::123456789012:user/ops is not authorized to perform: "
        "SNS:GetSMSSandboxAccountStatus on resource: * [bold]",
        "allow sns:GetSMSSandboxAccountStatus to the credentials running hotline doctor "
        "(README 'Diagnosing a deployment: hotline doctor' lists every permission it uses)",
    )
    assert found["Connect flows"][0] == "✗"
    assert found["Connect flows"][1].startswith(
        "AWS refused ListContactFlows: AccessDeniedException"
    )
    assert "connect:ListContactFlows" in found["Connect flows"][2]
    assert found["Connect numbers"][0] == "✗"
    # Everything else ran and passed.
    for name in (
        "stack status",
        "directory",
        "SMS spend limit",
        "dead letters",
        "alarms",
        "function errors",
    ):
        assert found[name][0] == "✓", name
    # The message is on one line, markup shown as is.
    assert len([line for line in result.output.splitlines() if "AuthorizationError" in line]) == 1


def test_a_stack_that_does_not_exist_fails_once_and_nothing_else_runs(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(doctor, "aws", operate.aws)

    result = runner.invoke(app, ["doctor", "--stack", "nope"])

    assert result.exit_code == 1
    found = lines(result.output)
    assert list(found) == ["stack", "other checks"]
    assert found["stack"][:2] == ("✗", "no stack 'nope' in ap-northeast-1")
    assert "sam build && sam deploy --guided" in found["stack"][2]
    assert "Traceback" not in result.output


def test_a_bad_directory_lists_every_problem_and_what_needs_it_says_not_checked(
    world: World,
) -> None:
    boto3.client("s3").put_object(
        Bucket=world.outputs["DirectoryBucketName"],
        Key="phonenumber.json",
        Body=json.dumps([{"name": "タクミ", "phone": "090"}, {"nme": "x", "phone": MIZUKI}]),
    )
    sns_sandbox(world, {})
    world.connect.add_response(
        "list_contact_flows",
        {"ContactFlowSummaryList": []},
        {"InstanceId": INSTANCE_ID, "ContactFlowTypes": ["CONTACT_FLOW"]},
    )
    world.connect.add_response("list_lambda_functions", {"LambdaFunctions": []})

    result = world.run()

    assert result.exit_code == 1
    text = result.output.splitlines()
    at = next(i for i, line in enumerate(text) if line.startswith("✗ directory: "))
    assert text[at].endswith("phonenumber.json has 2 problems: every call apologises")
    assert text[at + 1 : at + 3] == [
        "    entry 1 (タクミ): phone is not an E.164 number (like +819011112222)",
        '    entry 2: "name" is missing or empty',
    ]
    assert "hotline directory check phonenumber.json" in text[at + 3]
    found = lines(result.output)
    assert found["SMS account"][0] == "!"  # the sandbox line; the phones cannot be compared
    assert found["Connect numbers"] == (
        "!",
        "not checked: the directory is not valid (see the directory line)",
        "",
    )


def test_a_missing_directory_says_how_to_upload_it(world: World) -> None:
    boto3.client("s3").delete_object(
        Bucket=world.outputs["DirectoryBucketName"], Key="phonenumber.json"
    )
    sns_production(world)
    world.connect.add_response(
        "list_contact_flows",
        {"ContactFlowSummaryList": []},
        {"InstanceId": INSTANCE_ID, "ContactFlowTypes": ["CONTACT_FLOW"]},
    )
    world.connect.add_response("list_lambda_functions", {"LambdaFunctions": []})

    result = world.run()

    symbol, detail, fix = lines(result.output)["directory"]
    assert symbol == "✗"
    assert detail.endswith("/phonenumber.json: every call apologises")
    assert fix == f"upload the people: hotline directory push phonenumber.json --stack {STACK}"


# --- the permissions it needs ---------------------------------------------------------------
README = (ROOT / "README.md").read_text(encoding="utf-8")


def readme_section() -> str:
    start = README.index("### Diagnosing a deployment: hotline doctor")
    end = README.find("\n#", start + 1)
    return README[start : end if end > 0 else None]


@pytest.mark.parametrize("provider", ["sns", "end-user-messaging"])
def test_every_call_the_doctor_makes_names_its_iam_action_and_the_readme_lists_it(
    aws: None, monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    if provider == "sns":
        world = make_world(monkeypatch)
        sns_sandbox(world, {TAKUMI: "Verified", MIZUKI: "Verified", REN: "Verified"})
    else:
        world = make_world(
            monkeypatch, SmsProvider="end-user-messaging", SmsOriginationIdentity="pool-1"
        )
        eum_account(world, tier="SANDBOX")
        eum_pool(world)
    connect_answers(world)

    result = world.run()

    assert "Traceback" not in result.output
    assert world.calls - set(doctor.ACTIONS) == set()
    section = readme_section()
    for operation in world.calls:
        assert f"`{doctor.ACTIONS[operation]}`" in section, operation


def test_each_iam_action_named_is_one_aws_has() -> None:
    found = list(
        (ROOT / ".venv-sam" / "lib").glob(
            "python3*/site-packages/cfnlint/data/AdditionalSpecs/Policies.json"
        )
    )
    if not found:
        pytest.skip("the Service Authorization Reference comes with cfn-lint in .venv-sam")
    reference = json.loads(found[0].read_text(encoding="utf-8"))
    for action in doctor.ACTIONS.values():
        service, name = action.split(":")
        assert name.lower() in reference[service]["Actions"], action


# --- a local runtime -------------------------------------------------------------------------
def test_local_against_the_local_runtime_passes_and_says_what_it_cannot_check(server) -> None:
    result = runner.invoke(app, ["doctor", "--local", server.url])

    assert result.exit_code == 0, result.output
    found = lines(result.output)
    assert [name for name, (symbol, _, _) in found.items() if symbol == "✓"] == [
        "health",
        "directory",
        "dead letters",
        "faults",
    ]
    assert found["AWS checks"][0] == "!"
    assert "SMS account (sandbox, spend limit, origination identity)" in found["AWS checks"][1]
    assert found["AWS checks"][2] == "run hotline doctor --stack NAME against the deployment"
    assert "hotline +81********01" in found["directory"][1]


class FakeRuntime(BaseHTTPRequestHandler):
    """The local runtime's control routes the doctor reads, answering `routes`."""

    routes: ClassVar[dict[str, tuple[int, Any]]] = {}

    def do_GET(self) -> None:
        status, body = self.routes.get(self.path, (404, {"error": "no route"}))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_runtime() -> Iterator[tuple[str, dict[str, tuple[int, Any]]]]:
    routes: dict[str, tuple[int, Any]] = {
        "/_local/health": (200, {"status": "ok"}),
        "/_local/directory": (
            200,
            {
                "people": [
                    {"name": "タクミ", "phone": TAKUMI, "lang": "ja"},
                    {"name": "ミズキ", "phone": MIZUKI, "lang": "ja"},
                    {"name": "レン", "phone": REN, "lang": "ja"},
                ],
                "lines": {"hotline": LINE1, "benefits": BENEFITS_LINE},
                "circles": [
                    {"number": LINE1, "members": [TAKUMI, MIZUKI]},
                    {"number": BENEFITS_LINE, "members": [TAKUMI, REN]},
                ],
            },
        ),
        "/_local/dead-letters": (200, [{"id": "a"}, {"id": "b"}]),
        "/_local/faults": (200, [{"service": "sms", "to": None, "times": 2, "error": None}]),
    }
    handler = type("Handler", (FakeRuntime,), {"routes": routes})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", routes
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_local_dead_letters_a_circle_on_another_line_and_armed_faults(fake_runtime) -> None:
    url, _ = fake_runtime

    result = runner.invoke(app, ["doctor", "--local", url])

    assert result.exit_code == 1
    found = lines(result.output)
    assert found["dead letters"] == (
        "✗",
        "2 dead letters",
        f"look at them: hotline dead-letters list --local {url}; fix the cause; then "
        f"hotline dead-letters redrive --all --local {url}",
    )
    assert found["circle 2 number"][:2] == (
        "✗",
        "+81********02 is the benefits line's number: on AWS a number runs one flow, so its "
        "calls would reach that line",
    )
    assert found["faults"] == (
        "!",
        "1 fault(s) armed (sms): the next calls to them fail on purpose",
        f"disarm them: curl -X DELETE {url}/_local/faults",
    )
    assert_no_phone(result.output)


def test_local_a_runtime_still_starting_is_a_warning_and_an_error_route_fails_one_line(
    fake_runtime,
) -> None:
    url, routes = fake_runtime
    routes["/_local/health"] = (503, {"status": "starting"})

    starting = runner.invoke(app, ["doctor", "--local", url])

    assert starting.exit_code == 0
    assert lines(starting.output)["health"][0] == "!"

    routes["/_local/health"] = (200, {"status": "ok"})
    routes["/_local/dead-letters"] = (500, {"error": "KeyError: 'x'"})

    broken = runner.invoke(app, ["doctor", "--local", url])

    assert broken.exit_code == 1
    assert lines(broken.output)["dead letters"][:2] == ("✗", "500: KeyError: 'x'")
    assert "Traceback" not in broken.output


def test_local_nobody_there_fails_and_a_bad_url_is_a_command_line_error() -> None:
    nobody = runner.invoke(app, ["doctor", "--local", "http://127.0.0.1:9"])
    bad = runner.invoke(app, ["doctor", "--local", "127.0.0.1:3000"])

    assert nobody.exit_code == 1
    assert lines(nobody.output)["health"] == (
        "✗",
        "no local hotline at http://127.0.0.1:9",
        "start one: make run (port 3000), or hotline local --port PORT",
    )
    assert bad.exit_code == 2
