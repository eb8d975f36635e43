"""Creates the template's resources in moto (bus, archive, tables, bucket, schedule group,
queues, rules) and resolves every function's environment against them.

moto delivers rule matches only to SQS, so each rule target that is one of the template's
functions gets an SQS queue here that the runtime drains into the handler, as Lambda's
EventBridge integration would. The rules SAM generates for a function's EventBridgeRule events
and the template's standalone rules go through the same code: a CloudWatch Logs target (the
event log on AWS) is what `/_local/events` stands for locally, so it needs no delivery; what
the function receives follows the target's Input or InputPath; a disabled rule delivers
nothing; a target or property the runtime cannot honour is a TemplateError naming the rule,
never a rule silently ignored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from hotline_tools.local.template import (
    ACCOUNT,
    NO_LOCAL_MEANING,
    REGION,
    EventRule,
    FunctionSpec,
    Template,
    TemplateError,
    pattern_json,
)

# What a rule target may say besides Id and Arn without changing what a function receives.
# RetryPolicy and DeadLetterConfig govern EventBridge's own delivery to Lambda, an asynchronous
# invoke Lambda accepts at once; locally that hand-over cannot fail, so they have nothing to
# act on. A handler that raises is Lambda's retries and OnFailure, which the engine emulates.
_DELIVERY_ONLY = {"Id", "Arn", "RetryPolicy", "DeadLetterConfig"}
_SHAPING = {"Input", "InputPath", "InputTransformer"}
# InputPath: EventBridge's JSON dot notation, with array indices ($.detail.data, $.resources[0]).
_PATH_STEP = re.compile(r"\.([A-Za-z0-9_\-/]+)|\[(\d+)\]")


@dataclass(frozen=True)
class TargetInput:
    """What a rule target hands its function: the whole event, the part its InputPath names,
    or the constant JSON of its Input."""

    path: tuple[str | int, ...] = ()  # () is "$", the whole event
    constant: str | None = None  # Input: JSON text that replaces the event

    def shape(self, event: dict[str, Any]) -> Any:
        if self.constant is not None:
            return json.loads(self.constant)
        node: Any = event
        for step in self.path:
            if isinstance(step, int):
                found = isinstance(node, list) and step < len(node)
            else:
                found = isinstance(node, dict) and step in node
            if not found:
                return None  # a path the event lacks selects nothing: the handler gets null
            node = node[step]
        return node


WHOLE_EVENT = TargetInput()


@dataclass
class ProvisionedFunction:
    spec: FunctionSpec
    arn: str
    environment: dict[str, str]
    # Queue URLs fed by the rules that target it (one per target, in the order of its
    # spec.rules, then the standalone rules'), and what each hands the handler.
    target_queues: list[str] = field(default_factory=list)
    target_inputs: dict[str, TargetInput] = field(default_factory=dict)
    dead_letter_queue: str | None = None  # queue URL of its OnFailure destination
    # EventInvokeConfig's MaximumEventAgeInSeconds; None: Lambda's default (6 hours).
    max_event_age: int | None = None


@dataclass
class Stack:
    template: Template
    refs: dict[str, dict[str, Any]]
    functions: dict[str, ProvisionedFunction]

    def output(self, name: str) -> Any:
        outputs = self.template.doc.get("Outputs", {})
        spec = outputs[name]
        if "Condition" in spec and not self.template.conditions[spec["Condition"]]:
            return None
        return self.template.resolve(spec["Value"], self.refs)

    def function_by_arn(self, arn: str) -> ProvisionedFunction | None:
        """The function an ARN names, unqualified or qualified by its alias."""
        for fn in self.functions.values():
            if arn == fn.arn or (fn.spec.alias and arn == f"{fn.arn}:{fn.spec.alias}"):
                return fn
        return None


def _queue_arn(name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


def provision(template: Template, clients: Any) -> Stack:
    """`clients(service)` returns a boto3 client inside an active moto mock."""
    refs: dict[str, dict[str, Any]] = {}
    stack = template.stack_name
    functions = template.functions()
    for fn in functions:
        name = f"{stack}-{fn.logical_id}"[:64]
        refs[fn.logical_id] = {
            "Ref": name,
            "Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
        }
        if fn.alias:
            # The alias SAM makes for AutoPublishAlias: its Ref is the qualified ARN.
            qualified = f"{refs[fn.logical_id]['Arn']}:{fn.alias}"
            refs[f"{fn.logical_id}Alias{fn.alias}"] = {"Ref": qualified, "Arn": qualified}
    # Resources in an order where everything a resource refers to exists first.
    order = [
        "AWS::Serverless::HttpApi",
        "AWS::IAM::Role",
        "AWS::SQS::Queue",
        "AWS::Events::EventBus",
        "AWS::Events::Archive",
        "AWS::DynamoDB::Table",
        "AWS::S3::Bucket",
        "AWS::Scheduler::ScheduleGroup",
        "AWS::SecretsManager::Secret",
    ]
    by_type: dict[str, list[str]] = {}
    for logical_id, resource in template.resources.items():
        if not template.active(logical_id):
            continue
        kind = resource["Type"]
        if kind in ("AWS::Events::Rule", "AWS::Logs::LogGroup"):
            by_type.setdefault(kind, []).append(logical_id)  # named apart from the others
            continue
        if kind == "AWS::Serverless::Function" or kind in NO_LOCAL_MEANING:
            if kind == "AWS::IAM::Role":
                refs[logical_id] = {
                    "Ref": f"{stack}-{logical_id}",
                    "Arn": f"arn:aws:iam::{ACCOUNT}:role/{stack}-{logical_id}",
                }
            elif kind == "AWS::Serverless::LayerVersion":
                refs[logical_id] = {
                    "Ref": f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:{logical_id}:1"
                }
            continue
        if kind not in order:
            raise TemplateError(
                f"{logical_id}: resource type {kind} is not emulated by the local runtime"
            )
        by_type.setdefault(kind, []).append(logical_id)
    for logical_id in by_type.get("AWS::Logs::LogGroup", []):
        # Nothing is created: a log group only names where logs go (a function's, an API's
        # access log, a rule's events), so it is named first and anything may point at it.
        name_ref = template.resources[logical_id].get("Properties", {}).get("LogGroupName")
        name = str(template.resolve(name_ref, refs)) if name_ref else f"{stack}-{logical_id}"
        refs[logical_id] = {
            "Ref": name,
            "Arn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*",
        }
    for kind in order:
        for logical_id in by_type.get(kind, []):
            props = template.resolve(template.resources[logical_id].get("Properties", {}), refs)
            refs[logical_id] = _create(kind, logical_id, props, stack, clients)
    provisioned: dict[str, ProvisionedFunction] = {}
    sqs = clients("sqs")
    for fn in functions:
        env = {
            k: "" if v is None else str(v)
            for k, v in template.resolve(fn.raw_environment, refs).items()
        }
        pf = ProvisionedFunction(spec=fn, arn=refs[fn.logical_id]["Arn"], environment=env)
        pf.max_event_age = _max_event_age(template, fn.logical_id, refs)
        if fn.on_failure is not None:
            dlq_arn = template.resolve(fn.on_failure, refs)
            pf.dead_letter_queue = sqs.get_queue_url(QueueName=dlq_arn.rsplit(":", 1)[1])[
                "QueueUrl"
            ]
        provisioned[fn.logical_id] = pf
    result = Stack(template=template, refs=refs, functions=provisioned)
    for rule in [*(r for fn in functions for r in fn.rules), *template.event_rules()]:
        _provision_rule(template, rule, result, clients)
    return result


def _max_event_age(template: Template, logical_id: str, refs: dict[str, Any]) -> int | None:
    """The function's EventInvokeConfig MaximumEventAgeInSeconds (its own, else the
    template's Globals), as Lambda's asynchronous invocation honours it."""
    globals_ = template.doc.get("Globals", {}).get("Function", {})
    own = template.resources[logical_id].get("Properties", {})
    invoke = own.get("EventInvokeConfig", globals_.get("EventInvokeConfig")) or {}
    if "MaximumEventAgeInSeconds" not in invoke:
        return None
    age = template.resolve(invoke["MaximumEventAgeInSeconds"], refs)
    try:
        seconds = int(age)
    except (TypeError, ValueError) as exc:
        raise TemplateError(
            f"{logical_id}: MaximumEventAgeInSeconds {age!r} is not a number"
        ) from exc
    if not 60 <= seconds <= 21600:  # Lambda's own bounds
        raise TemplateError(
            f"{logical_id}: MaximumEventAgeInSeconds must be from 60 to 21600, not {seconds}"
        )
    return seconds


def _is_log_group(arn: str) -> bool:
    parts = arn.split(":", 6)
    return len(parts) >= 7 and parts[2] == "logs" and parts[5] == "log-group"


def _target_input(where: str, target: dict[str, Any]) -> TargetInput:
    """What a function target's Input or InputPath hands the handler; anything else a target
    may say that would change it is a TemplateError naming the rule and the property."""
    unknown = sorted(set(target) - _DELIVERY_ONLY - _SHAPING)
    if unknown:
        raise TemplateError(
            f"{where}: {', '.join(unknown)} on a function target is not emulated by the local "
            "runtime"
        )
    shaping = sorted(set(target) & _SHAPING)
    if len(shaping) > 1:  # EventBridge's PutTargets refuses this too
        raise TemplateError(f"{where}: {' and '.join(shaping)} exclude each other")
    if "InputTransformer" in target:
        raise TemplateError(
            f"{where}: InputTransformer on a function target is not emulated by the local "
            "runtime (its handler would get a different event than on AWS); use InputPath or "
            "Input"
        )
    if "Input" in target:
        constant = target["Input"]
        try:
            json.loads(constant)
        except (TypeError, ValueError) as exc:
            raise TemplateError(f"{where}: Input must be JSON text: {exc}") from exc
        return TargetInput(constant=constant)
    if "InputPath" in target:
        path = target["InputPath"]
        steps = _PATH_STEP.findall(path[1:]) if isinstance(path, str) else []
        rebuilt = "$" + "".join(f".{key}" if key else f"[{i}]" for key, i in steps)
        if not isinstance(path, str) or rebuilt != path:
            raise TemplateError(
                f"{where}: InputPath {path!r} is not emulated by the local runtime (it takes "
                "$, dot notation and array indices, as in $.detail or $.resources[0])"
            )
        return TargetInput(path=tuple(key or int(i) for key, i in steps))
    return WHOLE_EVENT


def _provision_rule(template: Template, rule: EventRule, stack: Stack, clients: Any) -> None:
    """A rule, with a queue for each target the runtime can deliver to."""
    sqs, events = clients("sqs"), clients("events")
    try:
        bus = template.resolve(rule.bus_ref, stack.refs)
        name = str(template.resolve(rule.name_ref, stack.refs))
    except TemplateError as exc:
        raise TemplateError(f"{rule.where}: {exc}") from exc
    deliveries: list[tuple[str, ProvisionedFunction, TargetInput]] = []
    for index, target in enumerate(rule.targets):
        where = rule.target_where(index, target)
        try:
            arn = str(template.resolve(target.get("Arn"), stack.refs))
        except TemplateError as exc:  # e.g. a Ref to a resource with no local meaning
            raise TemplateError(f"{where}: the local runtime cannot deliver to it: {exc}") from exc
        fn = stack.function_by_arn(arn)
        if _is_log_group(arn):
            # The event log on AWS. Locally /_local/events shows every event the bus accepted,
            # as the runtime contract says, whatever this rule's pattern or InputTransformer.
            continue
        if fn is not None:
            try:  # Input and InputPath may be written with intrinsics (!Sub)
                given = {k: template.resolve(v, stack.refs) for k, v in target.items()}
            except TemplateError as exc:
                raise TemplateError(f"{where}: {exc}") from exc
            queue_name = f"{template.stack_name}-{rule.logical_id}-target-{index}"[:80]
            deliveries.append((queue_name, fn, _target_input(where, given)))
        else:
            raise TemplateError(
                f"{where}: the local runtime cannot deliver to {arn}; it honours targets that "
                "are the template's functions or CloudWatch Logs groups (the event log)"
            )
    rule_arn = events.put_rule(
        Name=name,
        EventBusName=bus,
        EventPattern=pattern_json(rule.pattern),
        State="ENABLED" if rule.enabled else "DISABLED",
    )["RuleArn"]
    stack.refs[rule.logical_id] = {"Ref": name, "Arn": rule_arn}
    # A disabled rule's queues exist (each function's queues stay one per target) but are
    # never fed: moto would deliver to a disabled rule's targets.
    for queue_name, fn, shaping in deliveries:
        url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
        fn.target_queues.append(url)
        fn.target_inputs[url] = shaping
    if not rule.enabled or not deliveries:
        return
    # No InputPath or Input on the queue target: the queue keeps the whole event, the
    # engine applies the target's own when it hands the event to the handler.
    events.put_targets(
        Rule=name,
        EventBusName=bus,
        Targets=[
            {"Id": f"local-{i}", "Arn": _queue_arn(queue_name)}
            for i, (queue_name, _, _) in enumerate(deliveries)
        ],
    )


def _create(
    kind: str, logical_id: str, props: dict[str, Any], stack: str, clients: Any
) -> dict[str, Any]:
    if kind == "AWS::Serverless::HttpApi":
        return {"Ref": "local", "ApiEndpoint": "http://127.0.0.1"}
    if kind == "AWS::SQS::Queue":
        name = props.get("QueueName", f"{stack}-{logical_id}")
        url = clients("sqs").create_queue(QueueName=name)["QueueUrl"]
        return {"Ref": url, "Arn": _queue_arn(name), "QueueName": name, "QueueUrl": url}
    if kind == "AWS::Events::EventBus":
        name = props["Name"]
        arn = clients("events").create_event_bus(Name=name)["EventBusArn"]
        return {"Ref": name, "Arn": arn, "Name": name}
    if kind == "AWS::Events::Archive":
        name = props.get("ArchiveName", f"{stack}-{logical_id}")
        request: dict[str, Any] = {"ArchiveName": name, "EventSourceArn": props["SourceArn"]}
        if "EventPattern" in props:
            request["EventPattern"] = pattern_json(props["EventPattern"])
        if "RetentionDays" in props:
            request["RetentionDays"] = int(props["RetentionDays"])
        arn = clients("events").create_archive(**request)["ArchiveArn"]
        return {"Ref": name, "Arn": arn}
    if kind == "AWS::DynamoDB::Table":
        name = props.get("TableName", f"{stack}-{logical_id}")
        request = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if "GlobalSecondaryIndexes" in props:
            request["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        db = clients("dynamodb")
        arn = db.create_table(**request)["TableDescription"]["TableArn"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and str(ttl.get("Enabled")).lower() == "true":
            db.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
        return {"Ref": name, "Arn": arn}
    if kind == "AWS::S3::Bucket":
        name = props.get("BucketName", f"{stack}-{logical_id}".lower())
        clients("s3").create_bucket(
            Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        return {"Ref": name, "Arn": f"arn:aws:s3:::{name}"}
    if kind == "AWS::Scheduler::ScheduleGroup":
        name = props["Name"]
        arn = clients("scheduler").create_schedule_group(Name=name)["ScheduleGroupArn"]
        return {"Ref": name, "Arn": arn}
    if kind == "AWS::SecretsManager::Secret":
        # GenerateSecretString as CloudFormation does it: a random string of its length,
        # without punctuation when asked (the only options the template uses).
        import secrets
        import string

        generate = props.get("GenerateSecretString") or {}
        if set(generate) - {"PasswordLength", "ExcludePunctuation"}:
            raise TemplateError(f"{logical_id}: GenerateSecretString options not emulated")
        alphabet = string.ascii_letters + string.digits
        if str(generate.get("ExcludePunctuation", "false")).lower() != "true":
            alphabet += string.punctuation
        length = int(generate.get("PasswordLength", 32))
        value = props.get("SecretString") or "".join(
            secrets.choice(alphabet) for _ in range(length)
        )
        name = props.get("Name", f"{stack}-{logical_id}")
        arn = clients("secretsmanager").create_secret(Name=name, SecretString=value)["ARN"]
        return {"Ref": arn, "Id": arn}
    raise TemplateError(f"{logical_id}: {kind} has no local emulation")
