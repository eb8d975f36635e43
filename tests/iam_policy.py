"""What IAM must allow for each AWS call a function makes, and whether its role's policies in
the SAM-transformed template allow it: moto enforces no IAM, so this is what catches a missing
permission before `sam deploy` does. Calls are recorded by the botocore hook the benchmarks
count with (`hotline_tools.local.api_calls.ApiCallCounter`) while the local runtime plays
conversations."""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from hotline_tools.local.api_calls import ApiCallCounter, why
from hotline_tools.local.template import ACCOUNT, REGION

PARTITION = "aws"
# Lambda's asynchronous invocation sends the OnFailure record itself, with the function's
# execution role: the role needs sqs:SendMessage on the queue (SAM adds it; we check it).
ON_FAILURE = "Lambda OnFailure destination"


@dataclass(frozen=True)
class ApiCall:
    """One botocore call: who made it, and what it carried (as the caller passed it)."""

    principal: str  # the function's logical id: its execution role makes the call
    service: str  # botocore's service id, e.g. "DynamoDB"
    operation: str  # e.g. "TransactWriteItems"
    params: dict[str, Any]
    phase: str = ""
    via: str = ""  # set when a service makes the call on the principal's behalf
    why: str = ""  # the reason for the call (`api_calls.why`), from what it carries


@dataclass(frozen=True)
class Need:
    """One (action, resource) IAM must allow `principal` for a call to succeed."""

    principal: str  # a function's logical id (its role), or an IAM role's logical id
    call: str  # readable, without personal data: no phone number, key or message
    action: str
    resource: str
    # Request context for the condition keys this module knows (see `_condition_holds`).
    context: tuple[tuple[str, str], ...] = ()
    phase: str = ""
    why: str = ""


class UnmappedCall(LookupError):
    """An operation this module does not know the IAM actions of: add it to `needs`."""


class IamCallRecorder(ApiCallCounter):
    """The API call counter (its botocore hook, phases and function names), keeping what
    its records drop: each call's service, operation and parameters. Also the OnFailure
    records the runtime sends for Lambda, outside any handler, which the counter skips."""

    def __init__(self) -> None:
        super().__init__()
        self.api_calls: list[ApiCall] = []
        self.on_failure_queues: set[str] = set()  # queue URLs of the functions' OnFailure

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        service, operation = model.service_model.service_id, model.name
        function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        via = ""
        if function:
            principal = self.names.get(function, function)
        elif operation == "SendMessage" and params.get("QueueUrl") in self.on_failure_queues:
            arn = json.loads(params["MessageBody"])["requestContext"]["functionArn"]
            principal, via = self.names.get(arn.rsplit(":", 1)[1], arn), ON_FAILURE
        else:
            return  # the runtime's own bookkeeping: nothing on AWS makes this call
        reason = why(principal, operation, params)
        kept = copy.deepcopy(params)
        call = ApiCall(principal, service, operation, kept, self.phase, via, reason)
        with self._lock:
            self.api_calls.append(call)

    def uninstall(self) -> None:
        import botocore.handlers

        if self.installed:
            botocore.handlers.BUILTIN_HANDLERS.remove(("before-parameter-build", self._record))
            self.installed = False


# --- what a call needs -----------------------------------------------------------------------
SECRET_SUFFIX = "Ab12Cd"  # a Secrets Manager ARN's six random characters, for a name


def _arn(service: str, resource: str, *, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:{PARTITION}:{service}:{region}:{account}:{resource}"


def table_arn(name: str, index: str | None = None) -> str:
    # DynamoDB also takes the table's ARN as TableName.
    base = name if name.startswith("arn:") else _arn("dynamodb", f"table/{name}")
    return f"{base}/index/{index}" if index else base


def bus_arn(name: str | None) -> str:
    name = name or "default"
    return name if name.startswith("arn:") else _arn("events", f"event-bus/{name}")


def queue_arn(url: str) -> str:
    if url.startswith("arn:"):
        return url
    parsed = urlparse(url)
    account, name = parsed.path.strip("/").split("/")[-2:]
    host = parsed.hostname or ""
    region = host.split(".")[1] if host.startswith("sqs.") else REGION
    return _arn("sqs", name, region=region, account=account)


def schedule_arn(name: str, group: str | None) -> str:
    return _arn("scheduler", f"schedule/{group or 'default'}/{name}")


# TransactWriteItems has no action of its own: each item is authorised as its single-item
# counterpart (DynamoDB developer guide, "Using IAM with DynamoDB transactions").
TRANSACT_WRITE = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}
DYNAMO_SINGLE = {"GetItem", "PutItem", "UpdateItem", "DeleteItem"}


def needs(call: ApiCall, roles: dict[str, str] | None = None) -> list[Need]:
    """The (action, resource) pairs IAM must allow for `call`. `roles` maps a role ARN to
    its logical id, for what a service later does with a role the call passes."""
    p, op = call.params, call.operation
    label = f"{call.service} {op}"
    if call.via:
        label = f"{call.via}: {label}"

    def need(action: str, resource: str, what: str = "", **context: str) -> Need:
        return Need(
            principal=call.principal,
            call=f"{label} {what}".strip(),
            action=action,
            resource=resource,
            context=tuple(sorted(context.items())),
            phase=call.phase,
            why=call.why if call.why != op else "",
        )

    key = (call.service, op)
    if call.service == "DynamoDB" and op in DYNAMO_SINGLE:
        return [need(f"dynamodb:{op}", table_arn(p["TableName"]), _table(p["TableName"]))]
    if key in (("DynamoDB", "BatchGetItem"), ("DynamoDB", "BatchWriteItem")):
        return [need(f"dynamodb:{op}", table_arn(t), _table(t)) for t in p["RequestItems"]]
    if key == ("DynamoDB", "TransactWriteItems"):
        found = []
        for item in p["TransactItems"]:
            [(kind, body)] = item.items()
            what = f"({kind}) {_table(body['TableName'])}"
            found.append(need(TRANSACT_WRITE[kind], table_arn(body["TableName"]), what))
        return found
    if key == ("DynamoDB", "TransactGetItems"):
        tables = [i["Get"]["TableName"] for i in p["TransactItems"]]
        return [need("dynamodb:GetItem", table_arn(t), f"(Get) {_table(t)}") for t in tables]
    if key in (("DynamoDB", "Query"), ("DynamoDB", "Scan")):
        arn = table_arn(p["TableName"], p.get("IndexName"))
        return [need(f"dynamodb:{op}", arn, _table(p["TableName"]))]
    if key == ("EventBridge", "PutEvents"):
        return [
            need("events:PutEvents", bus_arn(e.get("EventBusName")), str(e.get("DetailType")))
            for e in p["Entries"]
        ]
    if key in (("Scheduler", "CreateSchedule"), ("Scheduler", "UpdateSchedule")):
        arn = schedule_arn(p["Name"], p.get("GroupName"))
        target = p["Target"]
        found = [
            need(f"scheduler:{op}", arn, p["Name"]),
            need(
                "iam:PassRole",
                target["RoleArn"],
                f"{p['Name']} (the role Scheduler assumes)",
                **{"iam:PassedToService": "scheduler.amazonaws.com"},
            ),
        ]
        return found + _scheduler_role_needs(call, p, target, roles or {})
    if call.service == "Scheduler" and op in ("DeleteSchedule", "GetSchedule"):
        return [need(f"scheduler:{op}", schedule_arn(p["Name"], p.get("GroupName")), p["Name"])]
    if call.service == "S3" and op in ("GetObject", "HeadObject", "PutObject"):
        action = "s3:PutObject" if op == "PutObject" else "s3:GetObject"
        return [need(action, f"arn:{PARTITION}:s3:::{p['Bucket']}/{p['Key']}", p["Bucket"])]
    if key == ("SNS", "Publish"):
        if "PhoneNumber" in p:
            # Straight to a phone number there is no topic: the only resource is "*".
            return [need("sns:Publish", "*", "(to a phone number)")]
        return [need("sns:Publish", p.get("TopicArn") or p["TargetArn"])]
    if key == ("SQS", "SendMessage"):
        arn = queue_arn(p["QueueUrl"])
        return [need("sqs:SendMessage", arn, arn.rsplit(":", 1)[1])]
    if key == ("Secrets Manager", "GetSecretValue"):
        secret = str(p["SecretId"])  # the ARN the template's !Ref gives, or a name
        # Asked by name, IAM still authorises the secret's ARN: its name, a hyphen and the
        # six random characters Secrets Manager appends (a template grants `<name>-??????`).
        # Which six is the service's choice: any stands for them here.
        arn = (
            secret
            if secret.startswith("arn:")
            else _arn("secretsmanager", f"secret:{secret}-{SECRET_SUFFIX}")
        )
        return [need("secretsmanager:GetSecretValue", arn, arn.rsplit(":", 1)[1])]
    if key == ("Pinpoint SMS Voice V2", "SendTextMessage"):
        # Authorised on the origination identity and on the configuration set, if any.
        found = [need("sms-voice:SendTextMessage", _origination_arn(call, p))]
        if p.get("ConfigurationSetName"):
            name = p["ConfigurationSetName"]
            arn = (
                name if name.startswith("arn:") else _arn("sms-voice", f"configuration-set/{name}")
            )
            found.append(need("sms-voice:SendTextMessage", arn, "(configuration set)"))
        return found
    raise UnmappedCall(
        f"{call.principal}: no IAM mapping for {call.service} {op}: add it to tests/iam_policy.py"
    )


def _origination_arn(call: ApiCall, p: dict[str, Any]) -> str:
    identity = str(p.get("OriginationIdentity", ""))
    if identity.startswith("arn:"):
        return identity
    for prefix, kind in (("phone-", "phone-number"), ("pool-", "pool")):
        if identity.startswith(prefix):
            return _arn("sms-voice", f"{kind}/{identity}")
    # A phone number or sender ID is authorised as the resource AWS resolves it to.
    raise UnmappedCall(
        f"{call.principal}: SendTextMessage from an origination identity given neither as an "
        "ARN nor as a phone-number or pool id: its resource ARN cannot be known here"
    )


def _table(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def _scheduler_role_needs(
    call: ApiCall, p: dict[str, Any], target: dict[str, Any], roles: dict[str, str]
) -> list[Need]:
    """What Scheduler does later with the role the schedule names: invoke the target, and
    send to the target's dead-letter queue when it cannot."""
    role = roles.get(target["RoleArn"])
    if role is None:
        raise UnmappedCall(
            f"{call.principal}: {p['Name']} passes {target['RoleArn']}, "
            "which is no role of the template"
        )
    via = f"Scheduler (as {role}) fires {p['Name']}"
    found = [Need(role, via, "lambda:InvokeFunction", target["Arn"], phase=call.phase)]
    dead_letter = (target.get("DeadLetterConfig") or {}).get("Arn")
    if dead_letter:
        found.append(
            Need(role, f"{via}: dead letter", "sqs:SendMessage", dead_letter, phase=call.phase)
        )
    return found


# --- what the template's policies allow -----------------------------------------------------
def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _glob(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM's wildcards: `*` any run of characters (also none), `?` exactly one."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.fullmatch(regex, value, flags) is not None


def action_matches(pattern: str, action: str) -> bool:
    return _glob(pattern, action, ignore_case=True)  # action names are case-insensitive


def resource_matches(pattern: str, arn: str) -> bool:
    """As IAM compares ARNs: each of the six colon-separated parts on its own (the last one
    keeps its colons), case-sensitively; a lone `*` matches everything."""
    if pattern == "*":
        return True
    want, have = pattern.split(":", 5), arn.split(":", 5)
    return len(want) == len(have) == 6 and all(map(_glob, want, have))


def _condition_holds(condition: dict[str, Any], context: dict[str, str]) -> bool:
    """Only the keys a Need carries (iam:PassedToService) are evaluated, with the string
    and ARN operators. Every other condition is taken as met, because the request's other
    values (source IP, tags, time...) are not modelled: on an Allow that may pass a call AWS
    would deny; on a Deny it reports one AWS might allow (the template's one Deny, sns:Publish
    on every SNS ARN, has no condition)."""
    operators: dict[str, Callable[[str, str], bool]] = {
        "StringEquals": lambda want, have: want == have,
        "StringLike": lambda want, have: _glob(want, have),
        "ArnEquals": lambda want, have: want == have,
        "ArnLike": resource_matches,
    }
    for operator, tests in condition.items():
        for key, wanted in tests.items():
            if key not in context:
                continue
            negate = operator.startswith(("StringNot", "ArnNot"))
            base = operator.replace("Not", "", 1) if negate else operator
            if base not in operators:
                raise UnmappedCall(f"condition operator {operator} on {key} is not evaluated")
            hit = any(operators[base](str(w), context[key]) for w in as_list(wanted))
            if hit == negate:
                return False
    return True


def statement_applies(statement: dict[str, Any], need: Need) -> bool:
    if "Action" in statement:
        acts = any(action_matches(a, need.action) for a in as_list(statement["Action"]))
    else:
        acts = not any(action_matches(a, need.action) for a in as_list(statement["NotAction"]))
    if "Resource" in statement:
        on = any(resource_matches(r, need.resource) for r in as_list(statement["Resource"]))
    else:
        on = not any(resource_matches(r, need.resource) for r in as_list(statement["NotResource"]))
    return acts and on and _condition_holds(statement.get("Condition") or {}, dict(need.context))


def allowed(statements: Iterable[dict[str, Any]], need: Need) -> bool:
    """An explicit Deny wins; otherwise one matching Allow is enough."""
    matching = [s for s in statements if statement_applies(s, need)]
    return any(s["Effect"] == "Allow" for s in matching) and not any(
        s["Effect"] == "Deny" for s in matching
    )


@dataclass
class RolePolicies:
    """Each role's identity-policy statements in the SAM-transformed template, resolved
    against the local stack (`resolve`: the local runtime's own intrinsic resolution)."""

    resources: dict[str, Any]  # the transformed template's Resources
    resolve: Callable[[Any], Any]
    _cache: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def role_of(self, principal: str) -> str:
        resource = self.resources.get(principal)
        if resource is None:
            raise KeyError(f"{principal} is not a resource of the transformed template")
        if resource["Type"] == "AWS::IAM::Role":
            return principal
        if resource["Type"] != "AWS::Lambda::Function":
            raise KeyError(f"{principal} is a {resource['Type']}, neither a function nor a role")
        role = resource["Properties"]["Role"]
        if isinstance(role, dict) and "Fn::GetAtt" in role:
            return str(as_list(role["Fn::GetAtt"])[0]).split(".")[0]
        raise KeyError(f"{principal}: its Role {role!r} is not a role of this template")

    def statements(self, principal: str) -> list[dict[str, Any]]:
        role = self.role_of(principal)
        if role not in self._cache:
            # The statement list is resolved whole: an Fn::If may choose it (SendSmsPolicy's,
            # by SmsProvider), and AWS::NoValue leaves nothing.
            self._cache[role] = [
                statement
                for document in self._documents(role)
                for statement in as_list(self.resolve(document.get("Statement") or []))
                if statement is not None
            ]
        return self._cache[role]

    def _documents(self, role: str) -> Iterator[dict[str, Any]]:
        props = self.resources[role].get("Properties") or {}
        for policy in props.get("Policies") or []:
            yield policy["PolicyDocument"]
        # AWS-managed policies (AWSLambdaBasicExecutionRole: logs only) are not read: a call
        # that only one of them allows fails here and must be looked at.
        for arn in props.get("ManagedPolicyArns") or []:
            if isinstance(arn, dict) and "Ref" in arn and arn["Ref"] in self.resources:
                yield self.resources[arn["Ref"]]["Properties"]["PolicyDocument"]
        for resource in self.resources.values():
            if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                attached = (resource.get("Properties") or {}).get("Roles") or []
                if {"Ref": role} in attached:
                    yield resource["Properties"]["PolicyDocument"]

    def allows(self, need: Need) -> bool:
        return allowed(self.statements(need.principal), need)
