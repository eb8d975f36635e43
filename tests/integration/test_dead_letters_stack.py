"""`hotline dead-letters list` and `hotline dead-letters redrive [--all | ID]` with --stack.

AWS is moto: a tiny plain CloudFormation stack holding three of the real stack's dead-letter
queues (named by the same logical ids) and two functions, so the CLI finds them through
list_stack_resources exactly as against a deployment. moto's Lambda invoke needs Docker, so
`lambda` is a recording fake installed where the module makes its clients. Every AWS error is
one clean line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, NoRegionError
from moto import mock_aws
from rich.console import Console

from hotline_tools import dead_letters
from hotline_tools.cli import app
from tests.conftest import MIZUKI, TAKUMI, load_event
from tests.integration import dead_letters_cli
from tests.integration.dead_letters_cli import REQUEST_ID, assert_no_phone, rows, runner
from tests.integration.operator_stack import ROLE, function

# The shared autouse fixture: pytest finds a fixture by its name in the test module.
quick_and_wide = dead_letters_cli.quick_and_wide

STACK = "hotline-test"


STACK_TEMPLATE = {
    "Resources": {
        "ConsumerDeadLetterQueue": {"Type": "AWS::SQS::Queue"},
        "TimerDeadLetterQueue": {"Type": "AWS::SQS::Queue"},
        # SAM generates one per rule target with DeadLetterConfig Type SQS.
        "InviteReceiverFunctionCallRequestedQueue": {"Type": "AWS::SQS::Queue"},
        "Role": ROLE,
        "InviteReceiverFunction": function("invite_receiver.handler"),
        "AnswerTimerFunction": function("answer_timer.handler"),
    }
}


class Stack:
    """The deployed test stack: queue URLs and function ARNs by logical id."""

    def __init__(self) -> None:
        cfn = boto3.client("cloudformation")
        cfn.create_stack(StackName=STACK, TemplateBody=json.dumps(STACK_TEMPLATE))
        resources = cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
        physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}
        self.queues = {k: v for k, v in physical.items() if k.endswith("Queue")}
        lam = boto3.client("lambda")
        self.functions = {
            k: lam.get_function(FunctionName=physical[k])["Configuration"]["FunctionArn"]
            for k in ("InviteReceiverFunction", "AnswerTimerFunction")
        }
        self.sqs = boto3.client("sqs")

    def on_failure(
        self,
        queue: str,
        fn: str,
        payload: dict[str, Any],
        error: tuple[str, str],
        failed_at: datetime,
    ) -> str:
        """Lambda's OnFailure record after the retries of an asynchronous invocation."""
        record = {
            "version": "1.0",
            "timestamp": failed_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "requestContext": {
                "requestId": "e4b46cbf-b738-xmpl-8880-a18cdf61200e",
                "functionArn": self.functions[fn] + ":$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 3,
            },
            "requestPayload": payload,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST"},
            "responsePayload": {"errorType": error[0], "errorMessage": error[1]},
        }
        return self.send(queue, json.dumps(record))

    def rule_dead_letter(self, queue: str, fn: str, event: dict[str, Any]) -> str:
        """EventBridge could not deliver `event` to the rule's target: the event itself, with
        the RULE_ARN / TARGET_ARN / ERROR_CODE / ERROR_MESSAGE attributes."""
        attributes = {
            "RULE_ARN": "arn:aws:events:ap-northeast-1:123456789012:rule/hotline-bus/invite",
            "TARGET_ARN": self.functions[fn],
            "ERROR_CODE": "NO_PERMISSIONS",
            "ERROR_MESSAGE": "Not authorized to invoke the function",
        }
        return self.send(
            queue,
            json.dumps(event),
            {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
        )

    def send(self, queue: str, body: str, attributes: dict[str, Any] | None = None) -> str:
        return self.sqs.send_message(
            QueueUrl=self.queues[queue], MessageBody=body, MessageAttributes=attributes or {}
        )["MessageId"]

    def waiting(self) -> dict[str, list[str]]:
        """MessageId of every message each queue holds (visible ones, then shown again)."""
        found: dict[str, list[str]] = {}
        for name, url in self.queues.items():
            got = self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0
            ).get("Messages", [])
            found[name] = sorted(m["MessageId"] for m in got)
        return found


class FakeLambda:
    """Records every invoke; `failing` makes each invoke raise it instead."""

    def __init__(self) -> None:
        self.invoked: list[dict[str, Any]] = []
        self.failing: Exception | None = None

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        if self.failing is not None:
            raise self.failing
        self.invoked.append(kwargs)
        return {"StatusCode": 202}

    def calls(self) -> list[tuple[str, str, Any]]:
        return [
            (c["FunctionName"], c["InvocationType"], json.loads(c["Payload"])) for c in self.invoked
        ]


@pytest.fixture
def stack() -> Iterator[Stack]:
    with mock_aws():
        yield Stack()


@pytest.fixture
def lam(monkeypatch: pytest.MonkeyPatch) -> FakeLambda:
    fake = FakeLambda()
    real = dead_letters.aws
    monkeypatch.setattr(
        dead_letters, "aws", lambda service: fake if service == "lambda" else real(service)
    )
    return fake


class _Any:
    def __eq__(self, other: object) -> bool:
        return True


ANY = _Any()  # a cell checked on its own


def denied(operation: str) -> ClientError:
    error = {"Code": "AccessDenied", "Message": "not allowed [bold]here"}
    return ClientError({"Error": error}, operation)


def ago(**kwargs: float) -> datetime:
    return datetime.now(UTC) - timedelta(**kwargs)


def timer_failure(stack: Stack, failed_at: datetime) -> str:
    return stack.on_failure(
        "TimerDeadLetterQueue",
        "AnswerTimerFunction",
        load_event("scheduler-answer-timer.json"),
        ("PublishFailed", "TimedOut not accepted: bus down"),
        failed_at,
    )


def invite_failure(stack: Stack, failed_at: datetime) -> str:
    return stack.on_failure(
        "ConsumerDeadLetterQueue",
        "InviteReceiverFunction",
        load_event("eventbridge-call-requested.json"),
        ("InvalidParameterException", f"Invalid parameter: PhoneNumber Reason: {MIZUKI}"),
        failed_at,
    )


# --- list --------------------------------------------------------------------------------
def test_list_shows_each_dead_letter_with_its_error_and_age_and_never_a_phone(stack, lam):
    invite = invite_failure(stack, ago(hours=3, minutes=12, seconds=30))
    timer = timer_failure(stack, ago(days=2, hours=4, minutes=1))
    event = load_event("eventbridge-call-requested.json")
    undelivered = stack.rule_dead_letter(
        "InviteReceiverFunctionCallRequestedQueue", "InviteReceiverFunction", event
    )
    assert TAKUMI in json.dumps(event)  # the payloads do hold phone numbers

    result = runner.invoke(app, ["dead-letters", "list", "--stack", STACK])

    assert result.exit_code == 0, result.output
    assert "3 dead letters in stack hotline-test" in result.output
    assert rows(result.output) == [  # oldest first
        [timer, "AnswerTimerFunction", "AnswerTimer", REQUEST_ID, ANY, "2 d 4 h"],
        [invite, "InviteReceiverFunction", "CallRequested", REQUEST_ID, ANY, "3 h 12 min"],
        [undelivered, "InviteReceiverFunction", "CallRequested", REQUEST_ID, ANY, "< 1 min"],
    ]
    errors = [row[4] for row in rows(result.output)]
    assert errors == [
        "PublishFailed: TimedOut not accepted: bus down",
        "InvalidParameterException: Invalid parameter: PhoneNumber Reason: +81********44",
        "NO_PERMISSIONS: Not authorized to invoke the function",
    ]
    assert_no_phone(result.output)
    assert lam.invoked == []
    # Listing hides nothing afterwards: every dead letter is still waiting, visible.
    assert stack.waiting()["ConsumerDeadLetterQueue"] == [invite]
    assert stack.waiting()["TimerDeadLetterQueue"] == [timer]


def test_list_shortens_a_long_error(stack, lam):
    stack.on_failure(
        "ConsumerDeadLetterQueue",
        "InviteReceiverFunction",
        load_event("eventbridge-call-requested.json"),
        ("ValidationError", "x" * 500),
        ago(minutes=5),
    )

    result = runner.invoke(app, ["dead-letters", "list", "--stack", STACK])

    [row] = rows(result.output)
    assert row[4].startswith("ValidationError: xxx")
    assert row[4].endswith("…")
    assert len(row[4]) == dead_letters.ERROR_WIDTH
    assert row[5] == "5 min"


def test_list_with_no_dead_letters_says_so(stack, lam):
    result = runner.invoke(app, ["dead-letters", "list", "--stack", STACK])

    assert result.exit_code == 0, result.output
    assert result.output.strip() == "no dead letters in stack hotline-test"


def test_list_keeps_an_id_whole_at_the_default_width(stack, lam, monkeypatch):
    monkeypatch.setattr(dead_letters, "console", Console(width=80))
    invite = invite_failure(stack, ago(hours=1))

    result = runner.invoke(app, ["dead-letters", "list", "--stack", STACK])

    assert invite in result.output  # ready to copy into `redrive ID`


# --- redrive -----------------------------------------------------------------------------
def test_redrive_id_invokes_its_function_once_asynchronously_with_the_original_payload(stack, lam):
    invite = invite_failure(stack, ago(hours=1))
    timer = timer_failure(stack, ago(hours=2))

    result = runner.invoke(app, ["dead-letters", "redrive", invite, "--stack", STACK])

    assert result.exit_code == 0, result.output
    assert "re-driven: 1 dead letter" in result.output
    assert lam.calls() == [
        (
            stack.functions["InviteReceiverFunction"] + ":$LATEST",
            "Event",
            load_event("eventbridge-call-requested.json"),
        )
    ]
    # Gone from its queue; the other one untouched and visible.
    assert stack.waiting()["ConsumerDeadLetterQueue"] == []
    assert stack.waiting()["TimerDeadLetterQueue"] == [timer]

    again = runner.invoke(app, ["dead-letters", "redrive", invite, "--stack", STACK])

    assert again.exit_code == 1
    assert isinstance(again.exception, SystemExit)
    [line] = again.output.strip().splitlines()
    assert f"no dead letter {invite} in stack 'hotline-test'" in line
    assert len(lam.invoked) == 1


def test_redrive_of_a_rule_dead_letter_invokes_the_target_with_the_event(stack, lam):
    event = load_event("eventbridge-call-requested.json")
    undelivered = stack.rule_dead_letter(
        "InviteReceiverFunctionCallRequestedQueue", "InviteReceiverFunction", event
    )

    result = runner.invoke(app, ["dead-letters", "redrive", undelivered, "--stack", STACK])

    assert result.exit_code == 0, result.output
    assert lam.calls() == [(stack.functions["InviteReceiverFunction"], "Event", event)]
    assert stack.waiting()["InviteReceiverFunctionCallRequestedQueue"] == []


def test_redrive_all_redrives_each_once_then_finds_nothing(stack, lam):
    invite_failure(stack, ago(hours=1))
    timer_failure(stack, ago(hours=2))
    stack.rule_dead_letter(
        "InviteReceiverFunctionCallRequestedQueue",
        "InviteReceiverFunction",
        load_event("eventbridge-call-requested.json"),
    )

    result = runner.invoke(app, ["dead-letters", "redrive", "--all", "--stack", STACK])

    assert result.exit_code == 0, result.output
    assert "re-driven: 3 dead letters" in result.output
    assert [name for name, _, _ in lam.calls()] == [
        stack.functions["AnswerTimerFunction"] + ":$LATEST",  # oldest first
        stack.functions["InviteReceiverFunction"] + ":$LATEST",
        stack.functions["InviteReceiverFunction"],
    ]
    assert lam.calls()[0][2] == load_event("scheduler-answer-timer.json")
    assert all(kind == "Event" for _, kind, _ in lam.calls())
    assert stack.waiting() == {name: [] for name in stack.queues}

    again = runner.invoke(app, ["dead-letters", "redrive", "--all", "--stack", STACK])

    assert again.exit_code == 0, again.output
    assert again.output.strip() == "no dead letters"
    assert len(lam.invoked) == 3


def test_a_failed_invoke_deletes_nothing_and_is_one_line(stack, lam):
    invite = invite_failure(stack, ago(hours=1))
    timer = timer_failure(stack, ago(hours=2))
    lam.failing = denied("Invoke")

    result = runner.invoke(app, ["dead-letters", "redrive", "--all", "--stack", STACK])

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # not a traceback
    [line] = result.output.strip().splitlines()
    assert "0 of 2 re-driven; cannot invoke AnswerTimerFunction for dead letter" in line
    assert "[bold]here" in line  # AWS's text, markup shown as is
    # Both still there, and visible again at once for the next list or redrive.
    assert stack.waiting()["ConsumerDeadLetterQueue"] == [invite]
    assert stack.waiting()["TimerDeadLetterQueue"] == [timer]

    lam.failing = None
    retried = runner.invoke(app, ["dead-letters", "redrive", timer, "--stack", STACK])

    assert retried.exit_code == 0, retried.output
    assert len(lam.invoked) == 1


def test_a_dead_letter_of_a_function_outside_the_stack_is_not_invoked(stack, lam):
    stack.functions["Elsewhere"] = "arn:aws:lambda:ap-northeast-1:123456789012:function:other"
    stranger = stack.on_failure(
        "ConsumerDeadLetterQueue",
        "Elsewhere",
        load_event("eventbridge-call-requested.json"),
        ("Boom", "x"),
        ago(hours=1),
    )

    listed = runner.invoke(app, ["dead-letters", "list", "--stack", STACK])
    result = runner.invoke(app, ["dead-letters", "redrive", stranger, "--stack", STACK])

    assert rows(listed.output)[0][1] == "other"
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert "its function other is not a function of the stack" in line
    assert lam.invoked == []
    assert stack.waiting()["ConsumerDeadLetterQueue"] == [stranger]


@pytest.mark.parametrize(
    "args",
    [
        ["dead-letters", "redrive", "--stack", STACK],  # neither
        ["dead-letters", "redrive", "--all", "some-id", "--stack", STACK],  # both
        ["dead-letters", "redrive", "a", "b"],
        ["dead-letters", "list", "--nope"],
    ],
    ids=["neither", "both", "two-ids", "unknown-option"],
)
def test_redrive_takes_exactly_one_of_all_and_an_id(args, lam):
    result = runner.invoke(app, args)

    assert result.exit_code == 2, result.output
    assert lam.invoked == []


def test_both_all_and_an_id_say_so_on_one_line(lam):
    result = runner.invoke(app, ["dead-letters", "redrive", "--all", "x", "--stack", STACK])

    assert result.exit_code == 2
    assert result.output.strip() == "give either --all or one ID"


# --- AWS errors --------------------------------------------------------------------------
class Refusing:
    """A real (moto) client, except `operation`, which raises `error`."""

    def __init__(self, real: Any, operation: str, error: Exception) -> None:
        self.real, self.operation, self.error = real, operation, error

    def __getattr__(self, name: str) -> Any:
        if name == self.operation:

            def refuse(**_kwargs: Any) -> Any:
                raise self.error

            return refuse
        return getattr(self.real, name)


@pytest.mark.parametrize(
    ("command", "service", "operation", "says"),
    [
        ("list", "cloudformation", "list_stack_resources", "cannot list the resources of"),
        ("list", "sqs", "receive_message", "cannot read the dead-letter queue"),
        ("redrive", "cloudformation", "list_stack_resources", "cannot list the resources of"),
        ("redrive", "sqs", "receive_message", "cannot read the dead-letter queue"),
        ("redrive", "sqs", "delete_message", "was sent to InviteReceiverFunction but could not"),
    ],
    ids=["list-stack", "list-receive", "redrive-stack", "redrive-receive", "redrive-delete"],
)
def test_an_aws_error_is_one_clean_line_and_exit_1(
    stack, lam, monkeypatch, command, service, operation, says
):
    invite = invite_failure(stack, ago(hours=1))
    real = dead_letters.aws

    def clients(name: str) -> Any:
        client = real(name) if name != "lambda" else lam
        return Refusing(client, operation, denied(operation)) if name == service else client

    monkeypatch.setattr(dead_letters, "aws", clients)
    args = ["dead-letters", command, *([invite] if command == "redrive" else [])]

    result = runner.invoke(app, [*args, "--stack", STACK])

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    [line] = result.output.strip().splitlines()
    assert says in line
    assert "[bold]here" in line


def test_a_queue_that_cannot_be_read_leaves_the_others_visible(stack, lam, monkeypatch):
    invite_failure(stack, ago(hours=1))
    timer = timer_failure(stack, ago(hours=2))
    broken = stack.queues["ConsumerDeadLetterQueue"]
    real = dead_letters.aws

    class OneQueueRefused(Refusing):
        def receive_message(self, **kwargs: Any) -> Any:
            if kwargs["QueueUrl"] == broken:
                raise denied("ReceiveMessage")
            return self.real.receive_message(**kwargs)

    monkeypatch.setattr(
        dead_letters,
        "aws",
        lambda name: OneQueueRefused(real(name), "", denied("")) if name == "sqs" else real(name),
    )

    result = runner.invoke(app, ["dead-letters", "redrive", "--all", "--stack", STACK])

    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert "cannot read the dead-letter queue ConsumerDeadLetterQueue" in line
    assert lam.invoked == []
    # Read from its own queue before the failure, it is not left hidden for minutes.
    assert stack.waiting()["TimerDeadLetterQueue"] == [timer]


def test_a_missing_stack_is_one_line(stack, lam):
    result = runner.invoke(app, ["dead-letters", "list", "--stack", "nope"])

    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert "cannot list the resources of stack 'nope'" in line


def test_no_region_is_one_line(monkeypatch):
    def no_region(service: str) -> Any:
        raise NoRegionError()

    monkeypatch.setattr(dead_letters, "aws", no_region)

    result = runner.invoke(app, ["dead-letters", "redrive", "--all", "--stack", STACK])

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    [line] = result.output.strip().splitlines()
    assert "You must specify a region" in line


def test_every_client_sets_its_timeouts_and_retries_in_code(monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "9")
    monkeypatch.setenv("AWS_RETRY_MODE", "legacy")
    for service in ("cloudformation", "sqs", "lambda"):
        config = dead_letters.aws(service).meta.config
        assert config.connect_timeout == 5
        assert config.read_timeout > dead_letters.WAIT_SECONDS
        assert config.retries == {"mode": "standard", "total_max_attempts": 3}
