"""`hotline line link|unlink|list`, on a stack (moto: a plain CloudFormation stack whose
LineLinksTable, directory bucket and LineSecretName parameter are named as the real stack's) and
on a running local runtime (`--local`). Errors are one line with the documented exit codes; a
LINE user id or a full phone is never printed."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from hotline_core.adapters.line_links import LineLinks
from hotline_tools.cli import app
from hotline_tools.line_cli import mask_user_id
from hotline_tools.local.line_fake import simulated_user_id
from tests.conftest import EVENTS, MIZUKI, TAKUMI
from tests.conftest import http_json as request

STACK = "hotline-line-test"
runner = CliRunner()
USER = simulated_user_id(MIZUKI)

LINE_STACK = {
    "Parameters": {"LineSecretName": {"Type": "String", "Default": "hotline/line"}},
    "Resources": {
        "DirectoryBucket": {"Type": "AWS::S3::Bucket"},
        "LineLinksTable": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            },
        },
    },
    "Outputs": {"DirectoryBucketName": {"Value": {"Ref": "DirectoryBucket"}}},
}


def _deploy(line_secret: str = "hotline/line") -> dict[str, str]:
    cfn = boto3.client("cloudformation")
    cfn.create_stack(
        StackName=STACK,
        TemplateBody=json.dumps(LINE_STACK),
        Parameters=[{"ParameterKey": "LineSecretName", "ParameterValue": line_secret}],
    )
    found = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
    }
    boto3.client("s3").put_object(
        Bucket=found["DirectoryBucket"],
        Key="phonenumber.json",
        Body=(EVENTS / "phonenumber.json").read_bytes(),
    )
    return found


@pytest.fixture
def stack() -> Iterator[dict[str, str]]:
    with mock_aws():
        yield _deploy()


def links(stack: dict[str, str]) -> LineLinks:
    return LineLinks(
        boto3.client("dynamodb"), stack["LineLinksTable"], clock=lambda: datetime.now(UTC)
    )


def code_in(output: str) -> str:
    match = re.search(r"code for .*: (\d{6})\b", output)
    assert match, output
    return match.group(1)


# --- on a stack ------------------------------------------------------------------------------


def test_link_by_name_prints_a_code_that_links_that_phone(stack):
    result = runner.invoke(app, ["line", "link", "ミズキ", "--stack", STACK])

    assert result.exit_code == 0, result.output
    code = code_in(result.output)
    assert "10 minutes" in result.output and "friend" in result.output
    assert "友だち追加" in result.output  # Mizuki's language is Japanese
    assert MIZUKI not in result.output
    assert links(stack).link(code, USER) == MIZUKI


def test_link_by_phone_and_list_shows_names_and_masked_ids(stack):
    code = code_in(runner.invoke(app, ["line", "link", MIZUKI, "--stack", STACK]).output)
    links(stack).link(code, USER)

    result = runner.invoke(app, ["line", "list", "--stack", STACK])

    assert result.exit_code == 0, result.output
    assert "ミズキ" in result.output and mask_user_id(USER) in result.output
    assert USER not in result.output and MIZUKI not in result.output


def test_unlink_takes_the_link_away_both_ways(stack):
    code = code_in(runner.invoke(app, ["line", "link", "ミズキ", "--stack", STACK]).output)
    links(stack).link(code, USER)

    result = runner.invoke(app, ["line", "unlink", "ミズキ", "--stack", STACK])
    assert result.exit_code == 0 and "unlinked" in result.output
    assert links(stack).user_for(MIZUKI) is None and links(stack).phone_for(USER) is None

    again = runner.invoke(app, ["line", "unlink", MIZUKI, "--stack", STACK])
    assert again.exit_code == 0 and "was not linked" in again.output


def test_list_with_nobody_linked_says_so(stack):
    result = runner.invoke(app, ["line", "list", "--stack", STACK])
    assert result.exit_code == 0 and "nobody is linked" in result.output


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["line", "link", "ハナコ"], 1),  # nobody of that name
        (["line", "link", "+819099999999"], 1),  # not in the directory
        (["line", "link", "+81-90"], 2),  # not a phone at all
        (["line", "unlink", "+8190 1111"], 2),
        (["line", "link"], 2),  # no NAME|PHONE
    ],
)
def test_bad_input_is_one_line_with_its_exit_code_and_makes_no_code(stack, args, code):
    result = runner.invoke(app, [*args, "--stack", STACK])

    assert result.exit_code == code, result.output
    if code == 1:
        assert len(result.output.strip().splitlines()) == 1
    db = boto3.client("dynamodb")
    assert db.scan(TableName=stack["LineLinksTable"])["Items"] == []


def test_a_stack_with_line_off_makes_no_code():
    with mock_aws():
        found = _deploy(line_secret="")
        result = runner.invoke(app, ["line", "link", "ミズキ", "--stack", STACK])

        assert result.exit_code == 1
        assert "LINE is off" in result.output and len(result.output.strip().splitlines()) == 1
        assert boto3.client("dynamodb").scan(TableName=found["LineLinksTable"])["Items"] == []


def test_a_stack_without_a_links_table_is_exit_1():
    with mock_aws():
        result = runner.invoke(app, ["line", "list", "--stack", "no-such-stack"])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1


# --- on the local runtime -----------------------------------------------------------------


def test_link_list_unlink_on_a_local_runtime(server):
    linked = runner.invoke(app, ["line", "link", "タクミ", "--local", server.url])
    assert linked.exit_code == 0, linked.output
    user = simulated_user_id(TAKUMI)
    status, answer = request(
        server,
        "POST",
        "/_local/line/send",
        {"from": user, "type": "message", "text": code_in(linked.output)},
    )
    assert status == 200 and answer["status"] == 200 and len(answer["replies"]) == 1

    listed = runner.invoke(app, ["line", "list", "--local", server.url])
    assert listed.exit_code == 0 and "タクミ" in listed.output
    assert user not in listed.output and TAKUMI not in listed.output

    unlinked = runner.invoke(app, ["line", "unlink", TAKUMI, "--local", server.url])
    assert unlinked.exit_code == 0 and "unlinked" in unlinked.output
    assert request(server, "GET", "/_local/line/links") == (200, [])


def test_a_local_runtime_that_is_not_there_is_exit_1():
    result = runner.invoke(app, ["line", "list", "--local", "http://127.0.0.1:9"])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1


def test_local_refuses_a_channel_secret_with_spaces_before_starting():
    result = runner.invoke(app, ["local", "--port", "0", "--line-channel-secret", "two words"])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1 and "channel secret" in result.output


def test_the_documented_default_channel_secret():
    import inspect

    from hotline_tools.cli import local
    from hotline_tools.local.line_local import DEFAULT_CHANNEL_SECRET

    default = inspect.signature(local).parameters["line_channel_secret"].default
    assert default == DEFAULT_CHANNEL_SECRET == "local-channel-secret"
