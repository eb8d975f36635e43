"""Creates the template's resources in moto (bus, archive, tables, bucket, schedule group,
queues, rules) and resolves every function's environment against them.

moto delivers rule matches only to SQS, so each consumer's rule gets an SQS queue target here
that the runtime drains into the handler, as Lambda's EventBridge integration would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hotline_tools.local.template import (
    ACCOUNT,
    NO_LOCAL_MEANING,
    REGION,
    FunctionSpec,
    Template,
    TemplateError,
    pattern_json,
)


@dataclass
class ProvisionedFunction:
    spec: FunctionSpec
    arn: str
    environment: dict[str, str]
    target_queues: list[str] = field(default_factory=list)  # queue URLs fed by its rules
    dead_letter_queue: str | None = None  # queue URL of its OnFailure destination


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
        for fn in self.functions.values():
            if fn.arn == arn:
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
    ]
    by_type: dict[str, list[str]] = {}
    for logical_id, resource in template.resources.items():
        if not template.active(logical_id):
            continue
        kind = resource["Type"]
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
    for kind in order:
        for logical_id in by_type.get(kind, []):
            props = template.resolve(template.resources[logical_id].get("Properties", {}), refs)
            refs[logical_id] = _create(kind, logical_id, props, stack, clients)
    provisioned: dict[str, ProvisionedFunction] = {}
    sqs, events = clients("sqs"), clients("events")
    for fn in functions:
        env = {
            k: "" if v is None else str(v)
            for k, v in template.resolve(fn.raw_environment, refs).items()
        }
        pf = ProvisionedFunction(spec=fn, arn=refs[fn.logical_id]["Arn"], environment=env)
        if fn.on_failure is not None:
            dlq_arn = template.resolve(fn.on_failure, refs)
            pf.dead_letter_queue = sqs.get_queue_url(QueueName=dlq_arn.rsplit(":", 1)[1])[
                "QueueUrl"
            ]
        for index, rule in enumerate(fn.rules):
            bus = template.resolve(rule.bus_ref, refs)
            queue_name = f"{stack}-{fn.logical_id}-target-{index}"[:80]
            url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
            events.put_rule(
                Name=rule.name,
                EventBusName=bus,
                EventPattern=pattern_json(rule.pattern),
                State="ENABLED",
            )
            events.put_targets(
                Rule=rule.name,
                EventBusName=bus,
                Targets=[{"Id": "local-queue", "Arn": _queue_arn(queue_name)}],
            )
            pf.target_queues.append(url)
        provisioned[fn.logical_id] = pf
    return Stack(template=template, refs=refs, functions=provisioned)


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
    raise TemplateError(f"{logical_id}: {kind} has no local emulation")
