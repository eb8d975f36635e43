"""What the tests of `hotline doctor` share: the test stack, the stubbed services' answers,
reading the report, and the `wide` (autouse), `aws` and `world` fixtures.

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
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from rich.console import Console
from typer.testing import CliRunner

from hotline_tools import doctor, operate
from hotline_tools.cli import app
from tests.integration.operator_stack import ROLE, function

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
