"""`hotline doctor [--stack NAME | --local URL]`: check a deployment end to end.

Each check returns one or more `Check`s (passed, warning or failed, with what to do); a
failed check never stops the others: an AWS error inside one becomes that check's failed line,
one line with the AWS error code. Exit 1 when any check failed, 0 otherwise (warnings too).

What is checked comes from the stack: its status, outputs and parameters (describe_stacks)
and its resources (list_stack_resources: queues, functions). Against the deployment:

- the stack: status and the outputs the `hotline` commands read;
- the directory in S3 (phonenumber.json): valid, every problem listed;
- SMS: sandbox or production, and in the sandbox every directory phone verified; the monthly
  spend limit against a model of the expected bill, and the spend alarm's threshold; with
  End User Messaging, the origination identity and its country (JP expected);
- Amazon Connect: both flows present, published and active; the Lambda associations; each
  circle's number claimed and pointed at `<stack>-hotline`;
- dead-letter queues, alarms in ALARM, alarm subscriptions, function errors in the last hour.

Against a local runtime (`--local`): health, the directory and its lines, dead letters and
armed faults; the AWS-only checks are listed as not run.

Phone numbers are masked as the logs mask them. Nothing here writes to AWS.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import typer
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
)
from rich.console import Console
from rich.markup import escape

from hotline_core.directory import Directory, DirectoryError, parse_directory
from hotline_core.phone import is_e164, mask_phone
from hotline_tools import operate
from hotline_tools.local_client import LocalRuntimeError, call_local
from hotline_tools.operate import LocalOption, StackOption

console = Console()
err = Console(stderr=True)

Status = Literal["passed", "warning", "failed"]
PASSED: Status = "passed"
WARNING: Status = "warning"
FAILED: Status = "failed"
SYMBOL = {PASSED: "[green]✓[/green]", WARNING: "[yellow]![/yellow]", FAILED: "[red]✗[/red]"}

DIRECTORY_KEY = "phonenumber.json"  # the functions' DIRECTORY_KEY (template.yaml)
README = "README 'Diagnosing a deployment: hotline doctor'"
JAPAN = "README 'Running it in Japan'"
# What the `hotline` commands read from the stack (operate.py, dead_letters.py,
# directory_cli.py, this module); the flows' only with a Connect instance.
OUTPUTS = (
    "EventBusName",
    "EventBusArn",
    "ArchiveArn",
    "DirectoryBucketName",
    "ConsumerDeadLetterQueueUrl",
    "CallRequestFunctionArn",
    "BenefitRequestFunctionArn",
    "EventLogGroupName",
    "AlarmTopicArn",
)
CONNECT_OUTPUTS = ("HotlineContactFlowArn", "BenefitsContactFlowArn")
# The contact flows the template creates, `<stack>-<line>`, and the function each invokes.
FLOWS = (("hotline", "CallRequestFunctionArn"), ("benefits", "BenefitRequestFunctionArn"))

# The expected SMS bill, a model from the README's cost section: each conversation texts the
# receiver an invitation (2 segments of Japanese UCS-2 with the execute-api link, 1 with a
# short link) and the caller one outcome (1 segment), at the top of the README's range of
# USD 0.07-0.08 a segment to Japanese phones.
CONVERSATIONS = 300
PRICE_PER_SEGMENT_USD = 0.08
INVITATION_SEGMENTS = {False: 2, True: 1}  # short link?
OUTCOME_SEGMENTS = 1
HEADROOM = 1.2  # a suggested limit: the expected bill and a fifth more
SANDBOX_MAX_VERIFIED = 10  # both sandboxes hold up to 10 verified destination numbers
ERROR_WINDOW = timedelta(hours=1)

SNS_SANDBOX_DOC = "https://docs.aws.amazon.com/sns/latest/dg/sns-sms-sandbox.html"
EUM_SANDBOX_DOC = (
    "https://docs.aws.amazon.com/sms-voice/latest/userguide/sandbox.html"
    "#sandbox-sms-move-to-production"
)
EUM_COUNTRIES_DOC = (
    "https://docs.aws.amazon.com/sms-voice/latest/userguide/phone-numbers-sms-by-country.html"
)

# The IAM action behind each call doctor makes: an AccessDenied names the one to allow.
ACTIONS = {
    "DescribeStacks": "cloudformation:DescribeStacks",
    "ListStackResources": "cloudformation:ListStackResources",
    "GetObject": "s3:GetObject",
    "GetSMSSandboxAccountStatus": "sns:GetSMSSandboxAccountStatus",
    "ListSMSSandboxPhoneNumbers": "sns:ListSMSSandboxPhoneNumbers",
    "GetSMSAttributes": "sns:GetSMSAttributes",
    "ListSubscriptionsByTopic": "sns:ListSubscriptionsByTopic",
    "DescribeAccountAttributes": "sms-voice:DescribeAccountAttributes",
    "DescribeSpendLimits": "sms-voice:DescribeSpendLimits",
    "DescribeVerifiedDestinationNumbers": "sms-voice:DescribeVerifiedDestinationNumbers",
    "DescribePhoneNumbers": "sms-voice:DescribePhoneNumbers",
    "DescribeSenderIds": "sms-voice:DescribeSenderIds",
    "DescribePools": "sms-voice:DescribePools",
    "ListPoolOriginationIdentities": "sms-voice:ListPoolOriginationIdentities",
    "ListContactFlows": "connect:ListContactFlows",
    "DescribeContactFlow": "connect:DescribeContactFlow",
    "ListLambdaFunctions": "connect:ListLambdaFunctions",
    "ListPhoneNumbersV2": "connect:ListPhoneNumbersV2",
    "DescribePhoneNumber": "connect:DescribePhoneNumber",
    "ListFlowAssociations": "connect:ListFlowAssociations",
    "GetQueueAttributes": "sqs:GetQueueAttributes",
    "DescribeAlarms": "cloudwatch:DescribeAlarms",
    "GetMetricStatistics": "cloudwatch:GetMetricStatistics",
}
ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "AuthorizationError", "Forbidden"}
BAD_CREDENTIALS = {
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
}
THROTTLED = {"Throttling", "ThrottlingException", "TooManyRequestsException", "Throttled"}
LINE_WIDTH = 240  # an AWS error's message, at most


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, how it went, and what to do about it."""

    name: str
    status: Status
    detail: str
    fix: str = ""
    more: tuple[str, ...] = ()  # further lines (a directory's problems), one each


def aws(service: str) -> Any:
    """One client, with its timeouts and retries in code; tests replace this."""
    return operate.aws(service)


# --- one line per AWS error ----------------------------------------------------------------
# A phone number as AWS quotes one in an error (E.164, + and digits, maybe separated); bare
# digits (account ids in ARNs, timestamps) are left as they are.
_PHONE = re.compile(r"\+[0-9][0-9 \-]{5,}[0-9]")


def mask_phones(text: str) -> str:
    return _PHONE.sub(lambda m: mask_phone("+" + re.sub(r"[^0-9]", "", m.group())), text)


def one_line(text: str, width: int = LINE_WIDTH, *, mask: bool = True) -> str:
    """`text` on one line, phone numbers masked, at most `width` characters."""
    flat = " ".join((mask_phones(str(text)) if mask else str(text)).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def aws_failure(name: str, exc: Exception) -> Check:
    """An AWS error as the failed line of the check it happened in."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "Unknown")
        operation = exc.operation_name
        detail = one_line(f"AWS refused {operation}: {code}: {error.get('Message') or ''}")
        if code in ACCESS_DENIED:
            action = ACTIONS.get(operation, operation)
            fix = (
                f"allow {action} to the credentials running hotline doctor "
                f"({README} lists every permission it uses)"
            )
        elif code in BAD_CREDENTIALS:
            fix = (
                "your AWS credentials are invalid or expired: refresh them "
                "(aws sso login, aws configure)"
            )
        elif code in THROTTLED:
            fix = "AWS is throttling the account's calls: run hotline doctor again in a minute"
        else:
            fix = (
                f"run hotline doctor again; if it persists, look up {code} for {operation} in "
                "AWS's API reference"
            )
        return Check(name, FAILED, detail, fix)
    if isinstance(exc, NoCredentialsError):
        fix = "configure AWS credentials (aws configure, or AWS_PROFILE) for the stack's account"
    elif isinstance(exc, NoRegionError):
        fix = "set AWS_REGION (or AWS_DEFAULT_REGION) to the stack's region"
    else:
        fix = "check the network connection to AWS and run hotline doctor again"
    return Check(name, FAILED, one_line(f"{type(exc).__name__}: {exc}"), fix)


class Skip(Exception):
    """The check cannot run (something it needs failed above): a warning line saying why."""


# --- what the checks share ----------------------------------------------------------------
@dataclass
class Deployment:
    """One deployed stack, read lazily and once: every check asks it, none repeats a call
    that answered (a call that failed is tried again by the next check that needs it)."""

    stack: str
    conversations: int = CONVERSATIONS
    _clients: dict[str, Any] = field(default_factory=dict)
    _cache: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = aws(service)
        return self._clients[service]

    def _once(self, key: str, load: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = load()
        return self._cache[key]

    # the stack
    def description(self) -> dict[str, Any]:
        def load() -> dict[str, Any]:
            found = self.client("cloudformation").describe_stacks(StackName=self.stack)
            return dict(found["Stacks"][0])

        return dict(self._once("stack", load))

    @property
    def outputs(self) -> dict[str, str]:
        return {
            o["OutputKey"]: o.get("OutputValue", "") for o in self.description().get("Outputs", [])
        }

    @property
    def parameters(self) -> dict[str, str]:
        return {
            p["ParameterKey"]: p.get("ParameterValue", "")
            for p in self.description().get("Parameters", [])
        }

    def output(self, name: str) -> str:
        value = self.outputs.get(name)
        if not value:
            raise Skip(f"the stack has no output {name} (see the stack outputs line)")
        return value

    def resources(self) -> list[dict[str, Any]]:
        def load() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = []
            token: str | None = None
            while True:
                page = self.client("cloudformation").list_stack_resources(
                    StackName=self.stack, **({"NextToken": token} if token else {})
                )
                found.extend(page.get("StackResourceSummaries", []))
                token = page.get("NextToken")
                if not token:
                    return found

        return list(self._once("resources", load))

    def physical(self, kind: str) -> list[tuple[str, str]]:
        """(logical id, physical id) of the stack's resources of one type, in stack order."""
        return [
            (r["LogicalResourceId"], r["PhysicalResourceId"])
            for r in self.resources()
            if r.get("ResourceType") == kind and r.get("PhysicalResourceId")
        ]

    # the directory
    def directory(self) -> Directory:
        def load() -> Directory:
            bucket = self.output("DirectoryBucketName")
            body = self.client("s3").get_object(Bucket=bucket, Key=DIRECTORY_KEY)["Body"].read()
            return parse_directory(body)

        try:
            return self._once("directory", load)  # type: ignore[no-any-return]
        except (ClientError, BotoCoreError, DirectoryError) as exc:
            if isinstance(exc, DirectoryError):
                raise Skip("the directory is not valid (see the directory line)") from exc
            raise Skip("the directory could not be read (see the directory line)") from exc

    # SMS
    @property
    def provider(self) -> str:
        return self.parameters.get("SmsProvider") or "sns"

    @property
    def short_link(self) -> bool:
        return bool(self.parameters.get("PublicBaseUrl") or self.parameters.get("CustomDomainName"))

    def expected_bill(self) -> tuple[float, str]:
        """The expected monthly SMS bill in USD, and the model's assumptions in words."""
        invitation = INVITATION_SEGMENTS[self.short_link]
        segments = self.conversations * (invitation + OUTCOME_SEGMENTS)
        link = "a short link" if self.short_link else "the execute-api link"
        words = (
            f"a model: {self.conversations} conversations a month × ({invitation}-segment "
            f"invitation with {link} + {OUTCOME_SEGMENTS}-segment text to the caller) × "
            f"USD {PRICE_PER_SEGMENT_USD:.2f} a Japanese segment (the top of the README's range; "
            "check AWS's current price); the benefits line not counted; --conversations N "
            "for your own volume"
        )
        return round(segments * PRICE_PER_SEGMENT_USD, 2), words

    # Connect
    @property
    def connect_arn(self) -> str:
        return self.parameters.get("ConnectInstanceArn", "")

    @property
    def instance_id(self) -> str:
        return self.connect_arn.rsplit("instance/", 1)[-1]

    def flows(self) -> dict[str, dict[str, Any]]:
        """The instance's contact flows by name."""

        def load() -> dict[str, dict[str, Any]]:
            found: dict[str, dict[str, Any]] = {}
            for flow in pages(
                self.client("connect").list_contact_flows,
                "ContactFlowSummaryList",
                InstanceId=self.instance_id,
                ContactFlowTypes=["CONTACT_FLOW"],
            ):
                found[flow.get("Name", "")] = flow
            return found

        return dict(self._once("flows", load))

    def flow_name(self, line: str) -> str:
        return f"{self.stack}-{line}"


def pages(call: Callable[..., Any], key: str, **kwargs: Any) -> Iterator[Any]:
    """Every item of a paginated list call (NextToken)."""
    token: str | None = None
    while True:
        page = call(**kwargs, **({"NextToken": token} if token else {}))
        yield from page.get(key) or []
        token = page.get("NextToken")
        if not token:
            return


def usd(amount: float) -> str:
    return f"USD {amount:,.2f}".replace(".00", "")


def who(person: Any) -> str:
    """A person as shown: name and masked phone."""
    return f"{person.name} ({mask_phone(person.phone)})"


def japan_note(number: str) -> str:
    if not number.startswith("+81"):
        return ""
    return (
        "; in Japan, Connect gives numbers only to a business, through an AWS Support case "
        f"with three documents: see {JAPAN}"
    )


# --- the stack -----------------------------------------------------------------------------
GOOD_STATES = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}


def check_stack(d: Deployment) -> Iterator[Check]:
    try:
        described = d.description()
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if "does not exist" in str(error.get("Message", "")):
            region = getattr(getattr(d.client("cloudformation"), "meta", None), "region_name", "")
            yield Check(
                "stack",
                FAILED,
                f"no stack {d.stack!r} in {region or 'this region'}",
                "deploy it (sam build && sam deploy --guided), or name yours: "
                "hotline doctor --stack NAME, with AWS_REGION set to its region",
            )
            return
        raise
    status = str(described.get("StackStatus", "?"))
    reason = described.get("StackStatusReason")
    detail = status + (f": {one_line(str(reason), 160)}" if reason else "")
    events = f"aws cloudformation describe-stack-events --stack-name {d.stack}"
    if status in GOOD_STATES:
        yield Check("stack status", PASSED, detail)
    elif status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS":
        yield Check(
            "stack status",
            WARNING,
            detail,
            "a deploy is under way: run hotline doctor when it ends",
        )
    elif status in ("UPDATE_ROLLBACK_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"):
        yield Check(
            "stack status",
            WARNING,
            detail + " (the last deploy was rolled back; the version before it runs)",
            f"read why ({events}), fix it, then sam build && sam deploy",
        )
    elif status == "ROLLBACK_COMPLETE":
        yield Check(
            "stack status",
            FAILED,
            detail + " (the first deploy failed; nothing runs)",
            f"read why ({events}), then aws cloudformation delete-stack --stack-name {d.stack} "
            "and deploy again (sam build && sam deploy --guided)",
        )
    elif status == "UPDATE_ROLLBACK_FAILED":
        yield Check(
            "stack status",
            FAILED,
            detail,
            f"read why ({events}), fix it, then aws cloudformation continue-update-rollback "
            f"--stack-name {d.stack}",
        )
    else:
        yield Check("stack status", FAILED, detail, f"read why: {events}")

    wanted = list(OUTPUTS) + (list(CONNECT_OUTPUTS) if d.connect_arn else [])
    missing = [name for name in wanted if not d.outputs.get(name)]
    if missing:
        yield Check(
            "stack outputs",
            FAILED,
            f"missing: {', '.join(missing)}",
            "deploy this version of template.yaml: sam build && sam deploy",
        )
    else:
        yield Check("stack outputs", PASSED, f"{len(d.outputs)} outputs, every one hotline reads")
    params = d.parameters
    yield Check(
        "stack parameters",
        PASSED,
        f"SMS by {d.provider}"
        + (
            f" from {mask_phone(i) if is_e164(i) else i}"
            if (i := params.get("SmsOriginationIdentity"))
            else ""
        )
        + (
            f"; Connect instance …{d.instance_id[-12:]}"
            if d.connect_arn
            else "; no Connect instance"
        )
        + f"; answer window {params.get('AnswerWindowSeconds', '120')} s"
        + f"; link {'short' if d.short_link else 'execute-api'}",
    )


# --- the directory -------------------------------------------------------------------------
def check_directory(d: Deployment) -> Iterator[Check]:
    bucket = d.output("DirectoryBucketName")
    where = f"s3://{bucket}/{DIRECTORY_KEY}"
    push = f"hotline directory push phonenumber.json --stack {d.stack}"
    try:
        directory = d.directory()
    except Skip as skipped:
        cause = skipped.__cause__
        if isinstance(cause, DirectoryError):
            count = len(cause.problems)
            yield Check(
                "directory",
                FAILED,
                f"{where} has {count} problem{'s' if count > 1 else ''}: every call apologises",
                f"fix phonenumber.json (hotline directory check phonenumber.json), then {push}",
                # The core leaves every value out of a problem: nothing to mask.
                tuple(one_line(p, mask=False) for p in cause.problems),
            )
            return
        if isinstance(cause, ClientError):
            code = cause.response.get("Error", {}).get("Code")
            if code in ("NoSuchKey", "404"):
                yield Check(
                    "directory",
                    FAILED,
                    f"no {where}: every call apologises",
                    f"upload the people: {push}",
                )
                return
        if isinstance(cause, ClientError | BotoCoreError):
            raise cause from None
        raise
    circles = directory.circles
    numbers = [c.number for c in circles if c.number]
    shape = (
        f"{len(circles)} circles with their own numbers"
        if numbers
        else "one circle answering any number dialled"
    )
    yield Check("directory", PASSED, f"{where}: {len(directory.people)} people, {shape}")


# --- SMS -----------------------------------------------------------------------------------
def check_sms_account(d: Deployment) -> Iterator[Check]:
    if d.provider == "end-user-messaging":
        yield from _end_user_messaging_account(d)
    else:
        yield from _sns_account(d)


def _sns_account(d: Deployment) -> Iterator[Check]:
    sns = d.client("sns")
    if not sns.get_sms_sandbox_account_status()["IsInSandbox"]:
        yield Check("SMS account", PASSED, "SNS SMS in production: any phone can be texted")
        return
    yield Check(
        "SMS account",
        WARNING,
        "SNS SMS sandbox: only verified phones get texts (at most 10); a new person gets none",
        f"request production access (an AWS Support case): {SNS_SANDBOX_DOC}",
    )
    verified = {
        entry.get("PhoneNumber"): entry.get("Status")
        for entry in pages(sns.list_sms_sandbox_phone_numbers, "PhoneNumbers")
    }
    people = d.directory().people
    yield from _sandbox_phones(
        people,
        verified,
        "SNS",
        lambda person: (
            f"aws sns create-sms-sandbox-phone-number --phone-number <{person.name}'s phone> "
            f"--language-code ja-JP, then aws sns verify-sms-sandbox-phone-number "
            f"--phone-number <{person.name}'s phone> --one-time-password <the code texted>"
        ),
        lambda person: (
            f"aws sns verify-sms-sandbox-phone-number --phone-number <{person.name}'s phone> "
            "--one-time-password <the code texted> (or create it again for a new code)"
        ),
        "Pending",
    )


def _sandbox_phones(
    people: Iterable[Any],
    statuses: dict[Any, Any],
    service: str,
    add: Callable[[Any], str],
    finish: Callable[[Any], str],
    pending: str,
) -> Iterator[Check]:
    everyone = list(people)
    missing = 0
    for person in everyone:
        status = statuses.get(person.phone)
        if status in ("Verified", "VERIFIED"):
            continue
        missing += 1
        if status == pending:
            yield Check(
                f"SMS sandbox {person.name}",
                FAILED,
                f"{mask_phone(person.phone)} is waiting for its code in the {service} sandbox: "
                "texts to it fail",
                f"verify {who(person)}: {finish(person)}",
            )
        else:
            yield Check(
                f"SMS sandbox {person.name}",
                FAILED,
                f"{mask_phone(person.phone)} is not verified in the {service} sandbox: "
                "texts to it fail",
                f"verify {who(person)} in the {service} sandbox: {add(person)}",
            )
    if len(everyone) > SANDBOX_MAX_VERIFIED:
        yield Check(
            "SMS sandbox",
            FAILED,
            f"the directory has {len(everyone)} phones; the sandbox verifies at most "
            f"{SANDBOX_MAX_VERIFIED}",
            "request production access (see the SMS account line)",
        )
    elif not missing:
        yield Check(
            "SMS sandbox", PASSED, f"all {len(everyone)} directory phones verified in the sandbox"
        )


def _end_user_messaging_account(d: Deployment) -> Iterator[Check]:
    eum = d.client("pinpoint-sms-voice-v2")
    attributes = {
        a["Name"]: a["Value"] for a in pages(eum.describe_account_attributes, "AccountAttributes")
    }
    tier = str(attributes.get("ACCOUNT_TIER", "")).upper()
    if tier == "PRODUCTION":
        yield Check(
            "SMS account", PASSED, "End User Messaging SMS in production: any phone can be texted"
        )
        return
    if tier != "SANDBOX":
        yield Check(
            "SMS account",
            WARNING,
            f"End User Messaging account tier {tier or 'not reported'}: sandbox or production "
            "unknown",
            "look at the account in the End User Messaging SMS console",
        )
        return
    yield Check(
        "SMS account",
        WARNING,
        "End User Messaging SMS sandbox: only verified phones get texts (at most 10), "
        "USD 1 a month; a new person gets none",
        f"request production access (an AWS Support case): {EUM_SANDBOX_DOC}",
    )
    statuses = {
        entry["DestinationPhoneNumber"]: entry["Status"]
        for entry in pages(eum.describe_verified_destination_numbers, "VerifiedDestinationNumbers")
    }
    yield from _sandbox_phones(
        d.directory().people,
        statuses,
        "End User Messaging",
        lambda person: (
            "aws pinpoint-sms-voice-v2 create-verified-destination-number "
            f"--destination-phone-number <{person.name}'s phone>, then "
            "send-destination-number-verification-code --verified-destination-number-id <its id> "
            "--verification-channel TEXT, then verify-destination-number "
            "--verified-destination-number-id <its id> --verification-code <the code texted>"
        ),
        lambda person: (
            "aws pinpoint-sms-voice-v2 verify-destination-number --verified-destination-number-id "
            "<its id> --verification-code <the code texted> (send-destination-number-"
            "verification-code sends a new one)"
        ),
        "PENDING",
    )


def check_sms_spend(d: Deployment) -> Iterator[Check]:
    expected, model = d.expected_bill()
    limit, limit_words, raise_limit = _spend_limit(d, expected)
    bill = f"the expected bill ~{usd(expected)} a month"
    why = (f"expected bill: {model}",)
    if limit is None:
        yield Check("SMS spend limit", WARNING, f"{limit_words}; {bill}", raise_limit, why)
    elif limit < expected:
        yield Check(
            "SMS spend limit",
            FAILED,
            f"{limit_words} is below {bill}: SMS stop silently at the limit",
            raise_limit,
            why,
        )
    else:
        yield Check("SMS spend limit", PASSED, f"{limit_words}, above {bill}", more=why)
    yield from _spend_alarm(d, expected, limit)


def _spend_limit(d: Deployment, expected: float) -> tuple[float | None, str, str]:
    """The account's monthly SMS limit in USD (None: not known), in words, and the fix."""
    wanted = math.ceil(expected * HEADROOM)
    if d.provider == "end-user-messaging":
        limits = {
            s["Name"]: s
            for s in pages(d.client("pinpoint-sms-voice-v2").describe_spend_limits, "SpendLimits")
        }
        text = limits.get("TEXT_MESSAGE_MONTHLY_SPEND_LIMIT")
        if text is None:
            return None, "End User Messaging reports no text spend limit", "look at the account"
        # EnforcedLimit applies when Overridden; else the account's maximum, MaxLimit.
        enforced = float(text["EnforcedLimit"] if text["Overridden"] else text["MaxLimit"])
        words = f"End User Messaging text spend limit {usd(enforced)} a month"
        if wanted <= float(text["MaxLimit"]):
            fix = (
                "aws pinpoint-sms-voice-v2 set-text-message-spend-limit-override "
                f"--monthly-limit {wanted}"
            )
        else:
            fix = (
                f"request a spending quota increase to USD {wanted} (AWS Support case; AWS's "
                f"maximum for the account is {usd(float(text['MaxLimit']))}), then aws "
                "pinpoint-sms-voice-v2 set-text-message-spend-limit-override "
                f"--monthly-limit {wanted}"
            )
        return enforced, words, fix
    attributes = d.client("sns").get_sms_attributes(attributes=["MonthlySpendLimit"])
    value = (attributes.get("attributes") or {}).get("MonthlySpendLimit")
    fix = (
        f"request an SNS SMS spend limit increase to USD {wanted} (AWS Support: service limit "
        f"increase, SNS Text Messaging), then aws sns set-sms-attributes --attributes "
        f"MonthlySpendLimit={wanted}"
    )
    if value in (None, ""):
        return (
            None,
            "SNS MonthlySpendLimit is not set: SNS applies the account's maximum (USD 1 on a new "
            "account), which doctor does not read",
            fix,
        )
    try:
        limit = float(value)
    except ValueError:
        return None, f"SNS MonthlySpendLimit is {one_line(value, 40)!r}, not a number", fix
    return limit, f"SNS SMS spend limit {usd(limit)} a month", fix


def _spend_alarm(d: Deployment, expected: float, limit: float | None) -> Iterator[Check]:
    raw = d.parameters.get("SmsMonthlySpendAlarmUsd", "")
    try:
        threshold = float(raw)
    except ValueError:
        yield Check(
            "SMS spend alarm",
            WARNING,
            "the stack has no SmsMonthlySpendAlarmUsd parameter",
            "deploy this version of template.yaml: sam build && sam deploy",
        )
        return
    redeploy = "sam deploy --guided, answering SmsMonthlySpendAlarmUsd"
    if limit is not None and threshold >= limit:
        suggested = round(limit * 0.9, 2)
        yield Check(
            "SMS spend alarm",
            FAILED,
            f"it fires at {usd(threshold)}, not below the spend limit {usd(limit)}: only once "
            "SMS have already stopped",
            f"set it just below the limit: {redeploy} {suggested:g}",
        )
    elif threshold < expected:
        if limit is not None and limit > expected:
            suggested = max(math.ceil(expected), round(limit * 0.9, 2))
            between = f"between the expected bill and the limit, e.g. {suggested:g}"
        else:
            between = "just below the spend limit once it is above the expected bill"
        yield Check(
            "SMS spend alarm",
            WARNING,
            f"it fires at {usd(threshold)}, below the expected bill ~{usd(expected)}: it will "
            "ring in an ordinary month",
            f"set it {between}: {redeploy}",
        )
    else:
        yield Check(
            "SMS spend alarm",
            PASSED,
            f"fires at {usd(threshold)}: above the expected bill"
            + (f", below the limit {usd(limit)}" if limit is not None else ""),
        )


def check_origination_identity(d: Deployment) -> Iterator[Check]:
    if d.provider != "end-user-messaging":
        return
    identity = d.parameters.get("SmsOriginationIdentity", "")
    shown = mask_phone(identity) if is_e164(identity) else identity
    redeploy = "set SmsOriginationIdentity to it (sam deploy --guided)"
    if not identity:
        yield Check(
            "origination identity",
            FAILED,
            "SmsProvider is end-user-messaging but SmsOriginationIdentity is empty",
            f"choose a JP phone number, sender ID or pool of this account and {redeploy}",
        )
        return
    eum = d.client("pinpoint-sms-voice-v2")
    try:
        kind, status, countries = _identity(eum, identity)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        kind, status, countries = "", "", set()
    if not kind:
        yield Check(
            "origination identity",
            FAILED,
            f"{shown} is no phone number, sender ID or pool of this account in this region",
            "list yours (aws pinpoint-sms-voice-v2 describe-phone-numbers, describe-sender-ids, "
            f"describe-pools) and {redeploy}",
        )
        return
    if status and status != "ACTIVE":
        yield Check(
            "origination identity",
            FAILED,
            f"{kind} {shown} is {status}, not ACTIVE: texts from it fail",
            "wait until it is ACTIVE (aws pinpoint-sms-voice-v2 describe-phone-numbers / "
            "describe-pools), or choose an active identity and " + redeploy,
        )
        return
    if "JP" not in countries:
        yield Check(
            "origination identity",
            FAILED,
            f"{kind} {shown} is for {', '.join(sorted(countries)) or 'no country'}, not Japan (JP)",
            f"use an identity for JP (which kinds Japan takes: {EUM_COUNTRIES_DOC}) and {redeploy}",
        )
        return
    yield Check("origination identity", PASSED, f"{kind} {shown}, active, for JP")


def _identity(eum: Any, identity: str) -> tuple[str, str, set[str]]:
    """(kind, status, ISO countries) of an End User Messaging origination identity, given as
    SendTextMessage takes it: a phone number, its id or ARN, a sender ID or its ARN, a pool
    id or ARN. ("", "", set()) when the account has no such identity."""
    resource = identity.split(":", 5)[5] if identity.startswith("arn:") else ""
    if resource.startswith("pool/") or identity.startswith("pool-"):
        # Both calls take the pool's id or its ARN.
        pools = eum.describe_pools(PoolIds=[identity]).get("Pools") or []
        if not pools:
            return "", "", set()
        members = pages(
            eum.list_pool_origination_identities, "OriginationIdentities", PoolId=identity
        )
        return "pool", str(pools[0].get("Status", "")), {m["IsoCountryCode"] for m in members}
    if resource.startswith("phone-number/") or identity.startswith("phone-"):
        numbers = eum.describe_phone_numbers(PhoneNumberIds=[identity]).get("PhoneNumbers") or []
    elif is_e164(identity):
        numbers = [
            n
            for n in pages(eum.describe_phone_numbers, "PhoneNumbers")
            if n["PhoneNumber"] == identity
        ]
    else:
        if resource.startswith("sender-id/"):
            _, sender, country = [*resource.split("/"), "", ""][:3]
            found = eum.describe_sender_ids(
                SenderIds=[{"SenderId": sender, "IsoCountryCode": country}]
            )
            senders = found.get("SenderIds") or []
        else:
            senders = list(
                pages(
                    eum.describe_sender_ids,
                    "SenderIds",
                    Filters=[{"Name": "sender-id", "Values": [identity]}],
                )
            )
        if not senders:
            return "", "", set()
        return "sender ID", "", {s["IsoCountryCode"] for s in senders}
    if not numbers:
        return "", "", set()
    return "phone number", str(numbers[0].get("Status", "")), {numbers[0]["IsoCountryCode"]}


# --- Amazon Connect ------------------------------------------------------------------------
def _connect_console(d: Deployment) -> str:
    return (
        f"set its flow to {d.flow_name('hotline')} in the Amazon Connect console (Channels → "
        "Phone numbers → the number → Contact flow / IVR)"
    )


def check_connect_flows(d: Deployment) -> Iterator[Check]:
    if not d.connect_arn:
        yield Check(
            "Amazon Connect",
            WARNING,
            "ConnectInstanceArn is empty: the stack has no phone line, nobody can call",
            "set ConnectInstanceArn to your instance's ARN (sam deploy --guided); the stack then "
            "creates the flows and registers the functions",
        )
        return
    flows = d.flows()
    connect = d.client("connect")
    for line, _ in FLOWS:
        name = d.flow_name(line)
        summary = flows.get(name)
        if summary is None:
            yield Check(
                f"flow {name}",
                FAILED,
                f"not in the Connect instance …{d.instance_id[-12:]}: calls cannot run it",
                "deploy the stack again (sam build && sam deploy): the template creates it; "
                "check that ConnectInstanceArn names this instance",
            )
            continue
        described = connect.describe_contact_flow(
            InstanceId=d.instance_id, ContactFlowId=summary["Id"]
        )["ContactFlow"]
        status, state = described.get("Status"), described.get("State")
        if state == "ARCHIVED":
            yield Check(
                f"flow {name}",
                FAILED,
                "archived: numbers pointed at it do not run it",
                f"aws connect update-contact-flow-metadata --instance-id {d.instance_id} "
                f"--contact-flow-id {summary['Id']} --contact-flow-state ACTIVE",
            )
        elif status != "PUBLISHED":
            yield Check(
                f"flow {name}",
                FAILED,
                f"{status or 'not'} published: calls do not run what is saved",
                f"publish it: Amazon Connect admin website → Routing → Flows → {name} → Publish",
            )
        else:
            yield Check(f"flow {name}", PASSED, "published, active")


def _function(arn: str) -> str:
    """A function ARN without a version or alias qualifier."""
    return ":".join(arn.split(":")[:7])


def check_connect_lambdas(d: Deployment) -> Iterator[Check]:
    if not d.connect_arn:
        return
    associated = {
        _function(arn)
        for arn in pages(
            d.client("connect").list_lambda_functions, "LambdaFunctions", InstanceId=d.instance_id
        )
    }
    good: list[str] = []
    for line, output in FLOWS:
        arn = d.output(output)
        name = arn.rsplit(":", 1)[-1]
        if _function(arn) in associated:
            good.append(name)
            continue
        yield Check(
            f"Lambda for {d.flow_name(line)}",
            FAILED,
            f"{name} is not associated with the Connect instance: the flow's call to it fails "
            "and callers hear an apology",
            f"deploy the stack again (its integration associates it), or aws connect "
            f"associate-lambda-function --instance-id {d.instance_id} --function-arn {arn}",
        )
    if good:
        yield Check("Lambda in Connect", PASSED, f"associated: {', '.join(good)}")


def check_connect_numbers(d: Deployment) -> Iterator[Check]:
    if not d.connect_arn:
        return
    connect = d.client("connect")
    flows = d.flows()
    by_ref = {ref: flow for flow in flows.values() for ref in (flow.get("Id"), flow.get("Arn"))}
    hotline = flows.get(d.flow_name("hotline"))
    benefits = flows.get(d.flow_name("benefits"))
    directory = d.directory()
    claimed = list(
        pages(
            connect.list_phone_numbers_v2,
            "ListPhoneNumbersSummaryList",
            InstanceId=d.instance_id,
        )
    )
    # Which flow each number runs: DescribePhoneNumber does not say; ListFlowAssociations
    # with VOICE_PHONE_NUMBER does (by the number's id or ARN).
    associated = {
        a.get("ResourceId"): a.get("FlowId")
        for a in pages(
            connect.list_flow_associations,
            "FlowAssociationSummaryList",
            InstanceId=d.instance_id,
            ResourceType="VOICE_PHONE_NUMBER",
        )
    }

    def flow_of(number: dict[str, Any]) -> str | None:
        found = associated.get(number.get("PhoneNumberId")) or associated.get(
            number.get("PhoneNumberArn")
        )
        return None if found is None else str(found)

    def runs(number: dict[str, Any], flow: dict[str, Any] | None) -> bool:
        ref = flow_of(number)
        if ref is None or flow is None:
            return False
        return ref in (flow.get("Id"), flow.get("Arn")) or ref.endswith(f"/{flow.get('Id')}")

    def flow_label(ref: str) -> str:
        flow = by_ref.get(ref) or by_ref.get(ref.rsplit("/", 1)[-1])
        return str(flow.get("Name")) if flow else ref

    point = _connect_console(d)
    in_japan = ":ap-northeast-1:" in d.connect_arn
    by_number = {n.get("PhoneNumber"): n for n in claimed}
    for index, circle in enumerate(directory.circles, start=1):
        if circle.number is None:
            pointing = [n for n in claimed if runs(n, hotline)]
            if pointing:
                shown = ", ".join(mask_phone(str(n.get("PhoneNumber"))) for n in pointing)
                yield Check("hotline number", PASSED, f"{shown} → {d.flow_name('hotline')}")
            else:
                yield Check(
                    "hotline number",
                    FAILED,
                    f"no number of the instance runs {d.flow_name('hotline')}: nobody can call",
                    "claim a number (Channels → Phone numbers → Claim a number) and "
                    + point
                    + (japan_note("+81") if in_japan else ""),
                )
            continue
        shown = mask_phone(circle.number)
        label = f"circle {index} number"
        number = by_number.get(circle.number)
        if number is None:
            yield Check(
                label,
                FAILED,
                f"{shown} is not a number of the Connect instance: calls to it reach nothing",
                f"claim {shown} (Channels → Phone numbers → Claim a number) and {point}, or "
                f"give circle {index} a number the instance has (phonenumber.json, then hotline "
                f"directory push phonenumber.json --stack {d.stack})" + japan_note(circle.number),
            )
            continue
        described = connect.describe_phone_number(PhoneNumberId=number["PhoneNumberId"])
        state = (described.get("ClaimedPhoneNumberSummary") or {}).get("PhoneNumberStatus") or {}
        status = state.get("Status")
        if status == "IN_PROGRESS":
            yield Check(
                label,
                WARNING,
                f"{shown} is still being claimed",
                "run hotline doctor again once Connect shows it claimed",
            )
            continue
        if status == "FAILED":
            yield Check(
                label,
                FAILED,
                f"claiming {shown} failed: {one_line(str(state.get('Message') or ''), 120)}",
                "release it and claim a number again in the Connect console"
                + japan_note(circle.number),
            )
            continue
        ref = flow_of(number)
        if runs(number, hotline):
            yield Check(label, PASSED, f"{shown} claimed → {d.flow_name('hotline')}")
        elif ref is None:
            yield Check(
                label,
                FAILED,
                f"{shown} is claimed but runs no flow: its calls are not answered",
                point,
            )
        else:
            yield Check(
                label,
                FAILED,
                f"{shown} runs {flow_label(ref)}, not {d.flow_name('hotline')}",
                point,
            )
    numbers = {c.number for c in directory.circles if c.number}
    if numbers:
        for number in claimed:
            if runs(number, hotline) and number.get("PhoneNumber") not in numbers:
                yield Check(
                    "hotline number",
                    WARNING,
                    f"{mask_phone(str(number.get('PhoneNumber')))} runs "
                    f"{d.flow_name('hotline')} but no circle has it: callers hear that the "
                    "number is not in service",
                    "add a circle with this number to phonenumber.json and push it (hotline "
                    f"directory push phonenumber.json --stack {d.stack}), or point it elsewhere",
                )
    if benefits is not None:
        pointing = [n for n in claimed if runs(n, benefits)]
        if pointing:
            shown = ", ".join(mask_phone(str(n.get("PhoneNumber"))) for n in pointing)
            yield Check("benefits number", PASSED, f"{shown} → {d.flow_name('benefits')}")
        else:
            yield Check(
                "benefits number",
                WARNING,
                f"no number runs {d.flow_name('benefits')}: the benefits line cannot be called",
                "if you use it: claim a second number and set its flow to "
                f"{d.flow_name('benefits')} (Channels → Phone numbers → the number)",
            )


# --- dead letters, alarms, errors ----------------------------------------------------------
def check_dead_letters(d: Deployment) -> Iterator[Check]:
    queues = d.physical("AWS::SQS::Queue")
    if not queues:
        yield Check(
            "dead letters",
            FAILED,
            "the stack has no SQS queue",
            "deploy this version of template.yaml: sam build && sam deploy",
        )
        return
    sqs = d.client("sqs")
    waiting = 0
    for logical, url in queues:
        try:
            attributes = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            ).get("Attributes", {})
        except (ClientError, BotoCoreError) as exc:
            waiting += 1
            yield aws_failure(f"dead letters in {logical}", exc)
            continue
        visible = int(attributes.get("ApproximateNumberOfMessages", 0))
        hidden = int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0))
        if visible + hidden:
            waiting += 1
            count = visible + hidden
            yield Check(
                f"dead letters in {logical}",
                FAILED,
                f"{count} dead letter{'s' if count > 1 else ''}"
                + (f" ({hidden} being read right now)" if hidden else ""),
                f"look at them: hotline dead-letters list --stack {d.stack}; fix the cause; then "
                f"hotline dead-letters redrive --stack {d.stack} --all",
            )
    if not waiting:
        yield Check("dead letters", PASSED, f"all {len(queues)} dead-letter queues empty")


def check_alarms(d: Deployment) -> Iterator[Check]:
    topic = d.output("AlarmTopicArn")
    cloudwatch = d.client("cloudwatch")
    alarms: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = cloudwatch.describe_alarms(
            ActionPrefix=topic,
            AlarmTypes=["MetricAlarm", "CompositeAlarm"],
            **({"NextToken": token} if token else {}),
        )
        alarms.extend(page.get("MetricAlarms") or [])
        alarms.extend(page.get("CompositeAlarms") or [])
        token = page.get("NextToken")
        if not token:
            break
    mine = [a for a in alarms if topic in (a.get("AlarmActions") or [])]
    firing = [a for a in mine if a.get("StateValue") == "ALARM"]
    for alarm in firing:
        name = str(alarm.get("AlarmName"))
        since = alarm.get("StateUpdatedTimestamp")
        when = (
            f" since {since.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
            if isinstance(since, datetime)
            else ""
        )
        said = alarm.get("AlarmDescription")
        yield Check(
            f"alarm {name}",
            FAILED,
            f"in ALARM{when}: {one_line(str(alarm.get('StateReason') or ''), 160)}",
            (f"what it says: {one_line(str(said), 400)} " if said else "")
            + f"(aws cloudwatch describe-alarms --alarm-names {name})",
        )
    if not firing:
        yield Check(
            "alarms",
            PASSED,
            f"none of the {len(mine)} alarms notifying the stack's AlarmTopic is in ALARM",
        )


def check_alarm_subscriptions(d: Deployment) -> Iterator[Check]:
    topic = d.output("AlarmTopicArn")
    subscriptions = list(
        pages(d.client("sns").list_subscriptions_by_topic, "Subscriptions", TopicArn=topic)
    )
    confirmed = [s for s in subscriptions if str(s.get("SubscriptionArn", "")).startswith("arn:")]
    pending = [s for s in subscriptions if s.get("SubscriptionArn") == "PendingConfirmation"]
    if pending:
        yield Check(
            "alarm notifications",
            WARNING,
            f"{len(pending)} subscription(s) to the alarm topic not confirmed: they get nothing",
            "open the e-mail from AWS Notifications and choose Confirm subscription",
        )
    if confirmed:
        kinds = ", ".join(sorted({str(s.get("Protocol")) for s in confirmed}))
        yield Check(
            "alarm notifications", PASSED, f"{len(confirmed)} confirmed subscription(s) ({kinds})"
        )
    elif not pending:
        yield Check(
            "alarm notifications",
            WARNING,
            "nobody is subscribed to the alarm topic: alarms notify no one",
            "set AlarmEmail (sam deploy --guided) and confirm the e-mail AWS sends",
        )


def check_function_errors(d: Deployment) -> Iterator[Check]:
    functions = d.physical("AWS::Lambda::Function")
    # Every function logs to the stack's one group, in streams named YYYY/MM/DD/<function>[…]
    # (`aws logs tail` prints each line's stream); an older stack, to Lambda's own groups.
    group = d.outputs.get("FunctionLogGroupName")
    cloudwatch = d.client("cloudwatch")
    end = datetime.now(UTC)
    start = end - ERROR_WINDOW
    failing = 0
    for logical, name in functions:
        try:
            points = cloudwatch.get_metric_statistics(
                Namespace="AWS/Lambda",
                MetricName="Errors",
                Dimensions=[{"Name": "FunctionName", "Value": name}],
                StartTime=start,
                EndTime=end,
                Period=300,
                Statistics=["Sum"],
            ).get("Datapoints", [])
        except (ClientError, BotoCoreError) as exc:
            failing += 1
            yield aws_failure(f"errors of {logical}", exc)
            continue
        errors = int(sum(float(p.get("Sum", 0)) for p in points))
        if errors:
            failing += 1
            yield Check(
                f"errors of {logical}",
                FAILED,
                f"{errors} error{'s' if errors > 1 else ''} in the last hour",
                f"read its log: aws logs tail {group} --since 1h | grep {name}"
                if group
                else f"read its log: aws logs tail /aws/lambda/{name} --since 1h",
            )
    if not failing:
        yield Check(
            "function errors",
            PASSED,
            f"none in the last hour in the stack's {len(functions)} functions",
        )


# --- running the checks --------------------------------------------------------------------
StackCheck = Callable[[Deployment], Iterable[Check]]
STACK_CHECKS: tuple[tuple[str, StackCheck], ...] = (
    ("stack", check_stack),
    ("directory", check_directory),
    ("SMS account", check_sms_account),
    ("SMS spend", check_sms_spend),
    ("origination identity", check_origination_identity),
    ("Connect flows", check_connect_flows),
    ("Lambda in Connect", check_connect_lambdas),
    ("Connect numbers", check_connect_numbers),
    ("dead letters", check_dead_letters),
    ("alarms", check_alarms),
    ("alarm notifications", check_alarm_subscriptions),
    ("function errors", check_function_errors),
)


def run_one(name: str, check: Callable[[Any], Iterable[Check]], target: Any) -> list[Check]:
    """What one check found; whatever goes wrong inside it is its last line, one line."""
    found: list[Check] = []
    try:
        for line in check(target):  # what it found before a failure is kept
            found.append(line)
    except Skip as skipped:
        found.append(Check(name, WARNING, f"not checked: {skipped}"))
    except (ClientError, BotoCoreError) as exc:
        found.append(aws_failure(name, exc))
    except LocalRuntimeError as exc:
        status = f"{exc.status}: " if exc.status else ""
        found.append(
            Check(
                name,
                FAILED,
                one_line(f"{status}{exc}"),
                "is hotline local still running? Read what it printed, then run doctor again",
            )
        )
    except Exception as exc:  # noqa: BLE001 - a diagnostic tool reports, it does not crash
        found.append(
            Check(
                name,
                FAILED,
                one_line(f"unexpected {type(exc).__name__}: {exc}"),
                "a bug in hotline doctor: report it with this line",
            )
        )
    return found


def stack_report(stack: str, conversations: int = CONVERSATIONS) -> Iterator[Check]:
    """Every check of the deployed stack, in order, as each one ends."""
    deployment = Deployment(stack, conversations)
    for name, check in STACK_CHECKS:
        yield from run_one(name, check, deployment)
        if check is check_stack and "stack" not in deployment._cache:
            yield Check(
                "other checks",
                WARNING,
                "not run: every one of them reads the stack",
                "fix the stack line first",
            )
            return


# --- a local runtime -----------------------------------------------------------------------
AWS_ONLY = (
    "the stack (status, outputs), the SMS account (sandbox, spend limit, origination "
    "identity), Amazon Connect (flows, Lambda associations, numbers), alarms and function "
    "errors"
)


def _entry(person: dict[str, Any]) -> dict[str, Any]:
    return {"name": person.get("name"), "phone": person.get("phone"), "lang": person.get("lang")}


def local_directory(url: str) -> Iterator[Check]:
    found = call_local(url, "GET", "/_local/directory", timeout=30) or {}
    people = found.get("people") or []
    lines: dict[str, str] = found.get("lines") or {}
    circles = found.get("circles") or []
    by_phone = {p.get("phone"): p for p in people}
    # Validated again as the Lambda validates a file, from what the runtime serves.
    raw: Any
    if circles and all(c.get("number") for c in circles):
        raw = {
            "circles": [
                {
                    "number": c["number"],
                    "members": [_entry(by_phone.get(m, {})) for m in c["members"]],
                }
                for c in circles
            ]
        }
    else:
        members = circles[0].get("members", []) if circles else [p.get("phone") for p in people]
        raw = [_entry(by_phone.get(m, {})) for m in members]
    try:
        parse_directory(json.dumps(raw))
    except DirectoryError as exc:
        yield Check(
            "directory",
            FAILED,
            f"the runtime's directory has {len(exc.problems)} problem(s)",
            "fix the file, check it (hotline directory check FILE) and restart hotline local "
            "--directory FILE",
            tuple(one_line(p, mask=False) for p in exc.problems),
        )
        return
    line_of = {number: line for line, number in lines.items()}
    problems = 0
    for index, circle in enumerate(circles, start=1):
        number = circle.get("number")
        other = line_of.get(number) if number else None
        if other not in (None, "hotline"):
            problems += 1
            yield Check(
                f"circle {index} number",
                FAILED,
                f"{mask_phone(number)} is the {other} line's number: on AWS a number runs one "
                "flow, so its calls would reach that line",
                f"give circle {index} a number of its own in the directory and restart hotline "
                "local --directory FILE",
            )
    numbered = [c.get("number") for c in circles if c.get("number")]
    hotline = lines.get("hotline")
    if numbered and hotline not in numbered:
        problems += 1
        yield Check(
            "hotline line",
            WARNING,
            f"a call that names no number dials {mask_phone(str(hotline))}, which no circle has: "
            "it hears that the number is not in service",
            "call a circle's number: hotline call FROM --to NUMBER --url " + url,
        )
    if not problems:
        shown = ", ".join(f"{line} {mask_phone(n)}" for line, n in lines.items())
        yield Check(
            "directory",
            PASSED,
            f"{len(people)} people in {len(circles)} circle(s); lines: {shown or 'none'}",
        )


def local_dead_letters(url: str) -> Iterator[Check]:
    letters = call_local(url, "GET", "/_local/dead-letters", timeout=30) or []
    if letters:
        count = len(letters)
        yield Check(
            "dead letters",
            FAILED,
            f"{count} dead letter{'s' if count > 1 else ''}",
            f"look at them: hotline dead-letters list --local {url}; fix the cause; then "
            f"hotline dead-letters redrive --all --local {url}",
        )
    else:
        yield Check("dead letters", PASSED, "none")


def local_faults(url: str) -> Iterator[Check]:
    armed = call_local(url, "GET", "/_local/faults", timeout=30) or []
    if armed:
        services = ", ".join(sorted({str(f.get("service")) for f in armed}))
        yield Check(
            "faults",
            WARNING,
            f"{len(armed)} fault(s) armed ({services}): the next calls to them fail on purpose",
            f"disarm them: curl -X DELETE {url}/_local/faults",
        )
    else:
        yield Check("faults", PASSED, "none armed")


def local_report(url: str) -> Iterator[Check]:
    """What a running local runtime can say about itself, and what it cannot."""
    try:
        call_local(url, "GET", "/_local/health", timeout=10)
    except LocalRuntimeError as exc:
        if exc.status == 503:
            yield Check(
                "health",
                WARNING,
                f"the local hotline at {url} is still starting",
                "run hotline doctor again in a few seconds",
            )
        elif exc.status == 0:
            yield Check(
                "health",
                FAILED,
                f"no local hotline at {url}",
                "start one: make run (port 3000), or hotline local --port PORT",
            )
        else:
            yield Check(
                "health",
                FAILED,
                one_line(f"{exc.status}: {exc}"),
                "read what hotline local printed when it stopped, fix it and start it again",
            )
        return
    yield Check("health", PASSED, f"the local hotline at {url} is up")
    for name, check in (
        ("directory", local_directory),
        ("dead letters", local_dead_letters),
        ("faults", local_faults),
    ):
        yield from run_one(name, check, url)
    yield Check(
        "AWS checks",
        WARNING,
        f"not run locally: {AWS_ONLY}",
        "run hotline doctor --stack NAME against the deployment",
    )


# --- the command ---------------------------------------------------------------------------
def print_check(check: Check) -> None:
    console.print(
        f"{SYMBOL[check.status]} [bold]{escape(check.name)}[/bold]: {escape(check.detail)}",
        soft_wrap=True,
        highlight=False,
    )
    for line in check.more:
        console.print(f"    {escape(line)}", soft_wrap=True, highlight=False)
    if check.fix and check.status != PASSED:
        console.print(f"    fix: {escape(check.fix)}", soft_wrap=True, highlight=False)


def doctor(
    stack: StackOption = "hotline",
    local: LocalOption = None,
    conversations: Annotated[
        int,
        typer.Option(
            min=1,
            help="conversations a month, for the expected SMS bill the spend limit must cover",
        ),
    ] = CONVERSATIONS,
) -> None:
    """Check a deployment end to end: each check passed (✓), a warning (!) or failed (✗), with
    what to do. Exit 1 when any check failed."""
    if local and not local.startswith(("http://", "https://")):
        err.print(f"[red]{escape(local)} is not an http(s) URL[/red]", soft_wrap=True)
        raise typer.Exit(2)
    where = f"local hotline {local}" if local else f"stack {stack}"
    console.print(f"[bold]hotline doctor[/bold]: {escape(where)}", soft_wrap=True)
    counts = dict.fromkeys((PASSED, WARNING, FAILED), 0)
    report = local_report(local) if local else stack_report(stack, conversations)
    for check in report:
        counts[check.status] += 1
        print_check(check)
    console.print(
        f"{counts[PASSED]} passed, {counts[WARNING]} warning{'s' if counts[WARNING] != 1 else ''}"
        f", {counts[FAILED]} failed",
        highlight=False,
    )
    if counts[FAILED]:
        raise typer.Exit(1)
