"""What the tests of the operator's commands share. AWS is moto, and moto's CloudFormation
cannot deploy the SAM template, so `stack` deploys a tiny plain CloudFormation stack in moto
whose outputs have the same names as the real stack's (EventBusName, EventBusArn, ArchiveArn,
EventLogGroupName, DirectoryBucketName): the CLI is exercised end to end through
describe_stacks, exactly as it runs against a real deployment. Also the CLI runner, and a call
placed on a running local runtime."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from hotline_tools.local.server import LocalServer
from tests.conftest import TAKUMI

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


# --- the local runtime -------------------------------------------------------------------


def call(server: LocalServer, caller: str = TAKUMI) -> str:
    import urllib.request

    body = json.dumps({"from": caller}).encode()
    request = urllib.request.Request(server.url + "/_local/calls", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(json.loads(response.read())["contact_id"])


# A Lambda execution role and a do-nothing function, for the stacks the operator's commands
# are tested against (`Role` must be the role's logical id).
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


class JsonHandler(BaseHTTPRequestHandler):
    """A quiet handler for the fake local runtimes the `--local` commands are tested
    against: `answer` writes a JSON body with its status."""

    def answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args: Any) -> None:
        pass
