"""`hotline doctor --stack`: all well, AWS refusing, no such stack, a bad or missing directory."""

from __future__ import annotations

import json

import boto3
import pytest

from hotline_tools import doctor, operate
from hotline_tools.cli import app
from tests.integration import doctor_stack
from tests.integration.doctor_stack import (
    INSTANCE_ID,
    MIZUKI,
    STACK,
    World,
    assert_no_phone,
    connect_answers,
    lines,
    runner,
    sns_production,
    sns_sandbox,
)

# The shared fixtures: pytest finds a fixture by its name in the test module.
wide = doctor_stack.wide
aws = doctor_stack.aws
world = doctor_stack.world


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
