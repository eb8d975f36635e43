"""Writes generated/: what template.yaml takes from a program instead of a person.

python scripts/generate.py          write generated/
python scripts/generate.py --check  fail when generated/ differs from what this would write

- generated/contact_flow/<line>.yaml: contact_flow/<line>.json as the text a ContactFlow's
  Content is (Fn::Sub fills in ${Function.Arn}); the template takes it with AWS::Include.
- generated/schemas/<Name>.yaml: schemas/<Name>.json as the catalogue's Draft 4 document of the
  whole EventBridge event, an EventSchemas::Schema's Content; taken with AWS::Include too.
- generated/rule_dead_letters.yaml: each EventBridgeRule event's dead-letter queue (the one its
  DeadLetterConfig names) and the queue policy that lets only that rule send to it; the
  template includes it among its resources with AWS::Include.
- generated/alarms.yaml: the alarms that share one shape, derived from the template's wiring
  (a depth alarm per dead-letter queue; errors and throttles summed over every function; one
  per metric in CODE_METRICS, on the namespace and service the template gives Powertools; the
  contact flows' errors, under the flows' own condition); the template nests it as the
  application Alarms.

An AWS::Include snippet must be a mapping, so a text is wrapped in Fn::Sub (with nothing to
substitute in a schema: a `${` there is escaped). Why Draft 4: schemas/ is what pydantic
generates (JSON Schema 2020-12: `$defs`, `const`, `$id`), but EventSchemas takes only
`JSONSchemaDraft4` or `OpenApi3`, which spell those `definitions`, `enum: [value]` and `id`. The
committed schema describes an event's `detail`; code bindings are generated for the whole
event, so the catalogue wraps it in the EventBridge envelope.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from hotline_tools.local.template import parse_template

ROOT = Path(__file__).resolve().parents[1]
GENERATED = "generated"
DRAFT4 = "http://json-schema.org/draft-04/schema#"
ALARMS = f"{GENERATED}/alarms.yaml"
RULE_DEAD_LETTERS = f"{GENERATED}/rule_dead_letters.yaml"
# What an operator has to re-drive a dead letter in (the template's own two queues say the same).
DEAD_LETTER_RETENTION_SECONDS = 14 * 24 * 3600
FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
# The sum alarms over every function: the metric, and what its alarm says.
FUNCTION_METRICS = {"Errors": "raised", "Throttles": "was throttled"}
# Alarms on the code's own metrics (EMF from Powertools) for what fails without a function
# error: the metric -> what its alarm says, its period in seconds, and its threshold (a
# number, or the template parameter that sets it). Each alarms when the sum reaches it.
CODE_METRICS: dict[str, tuple[str, int, int | str]] = {
    "SmsFailed": (
        "An SMS could not be sent after its retries (an unverified number in the SMS sandbox, "
        "or a provider error); the consumer retries, then dead-letters it.",
        300,
        1,
    ),
    "LinePushFailed": (
        "A LINE push failed after its retries (an expired or wrong channel access token, LINE "
        "down, the month's message quota used up): the person got an SMS instead, which costs. "
        "The consumer's log says LINE's status.",
        300,
        1,
    ),
    "LineEventFailures": (
        "The LINE webhook could not handle an event (DynamoDB failed) and answered LINE 500: "
        "a link code, an unfollow or a tapped answer may be lost unless LINE redelivers it.",
        300,
        1,
    ),
    "AnswerPageFailures": (
        "The answer page failed and showed the receiver a 503 (the request could not be read "
        "or the answer recorded). The function returned that page, so the function-errors "
        "alarm does not see it: the function's log says why.",
        300,
        1,
    ),
    "HotlinePinFailures": (
        "The hotline's wrong PINs within an hour reached PinFailuresAlarmPerHour: someone may "
        "be guessing (a phone is locked out for an hour after 5 wrong PINs in an hour).",
        3600,
        "PinFailuresAlarmPerHour",
    ),
    "PinFailures": (
        "The benefits line's wrong PINs within an hour reached PinFailuresAlarmPerHour: "
        "someone may be guessing (a phone is locked out for an hour after 5 wrong PINs in an "
        "hour).",
        3600,
        "PinFailuresAlarmPerHour",
    ),
}
# What Amazon Connect counts per flow (AWS/Connect, MetricGroup ContactFlow): an error branch
# taken, and a flow that could not run at all.
CONNECT_FLOW_METRICS = ("ContactFlowErrors", "ContactFlowFatalErrors")


class WiringError(ValueError):
    """The template's wiring says something the alarms cannot be derived from."""


def header(source: str) -> str:
    return f"# Generated from {source} by scripts/generate.py: do not edit.\n"


# --- contact flows and event schemas ---------------------------------------------------------
def flow_snippet(path: Path) -> dict[str, Any]:
    flow = json.loads(path.read_text(encoding="utf-8"))
    # Indented JSON keeps a diff readable; ensure_ascii=False keeps Japanese as it is.
    return {"Fn::Sub": json.dumps(flow, ensure_ascii=False, indent=1) + "\n"}


def to_draft4(node: Any) -> Any:
    """The same constraints in Draft 4 words."""
    if isinstance(node, list):
        return [to_draft4(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$defs":
            converted["definitions"] = {k: to_draft4(v) for k, v in value.items()}
        elif key == "$ref" and isinstance(value, str):
            converted["$ref"] = value.replace("#/$defs/", "#/definitions/")
        elif key == "const":
            converted["enum"] = [value]
        elif key == "$id":
            continue  # the envelope carries the id
        elif key == "properties":
            converted[key] = {k: to_draft4(v) for k, v in value.items()}
        else:
            converted[key] = to_draft4(value)
    return converted


def catalogue_schema(path: Path) -> dict[str, Any]:
    """The whole EventBridge event of detail-type `path.stem`, Draft 4."""
    name = path.stem
    converted = to_draft4(json.loads(path.read_text(encoding="utf-8")))
    definitions = converted.pop("definitions", {})
    definitions[f"{name}Detail"] = converted
    string = {"type": "string"}
    return {
        "$schema": DRAFT4,
        "title": name,
        "description": f"EventBridge event: source 'hotline', detail-type '{name}'",
        "x-amazon-events-source": "hotline",
        "x-amazon-events-detail-type": name,
        "type": "object",
        "required": ["source", "detail-type", "detail"],
        "properties": {
            "version": string,
            "id": string,
            "source": {"type": "string", "enum": ["hotline"]},
            "detail-type": {"type": "string", "enum": [name]},
            "account": string,
            "time": {"type": "string", "format": "date-time"},
            "region": string,
            "resources": {"type": "array", "items": string},
            "replay-name": string,
            "detail": {"$ref": f"#/definitions/{name}Detail"},
        },
        "definitions": definitions,
    }


def schema_snippet(path: Path) -> dict[str, Any]:
    text = json.dumps(catalogue_schema(path), ensure_ascii=False, indent=1, sort_keys=True)
    return {"Fn::Sub": text.replace("${", "${!") + "\n"}


# --- the alarms that share one shape ---------------------------------------------------------
def _get_att(value: Any, attribute: str) -> str | None:
    """The logical id in {"Fn::GetAtt": [id, attribute]}, else None."""
    target = value.get("Fn::GetAtt") if isinstance(value, dict) else None
    return target[0] if isinstance(target, list) and target[1:] == [attribute] else None


def _listed(names: list[str], last: str = "or") -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {last} {names[-1]}"


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def declared(template: dict[str, Any]) -> dict[str, Any]:
    """The resources template.yaml writes itself (an AWS::Include among them is not one)."""
    return {n: r for n, r in template["Resources"].items() if n != "Fn::Transform"}


def rule_events(resources: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(function, event, the event's Properties) of every EventBridgeRule event."""
    return [
        (name, event_name, event.get("Properties") or {})
        for name, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
        for event_name, event in ((resource.get("Properties") or {}).get("Events") or {}).items()
        if event["Type"] == "EventBridgeRule"
    ]


def rule_dead_letter_queues(resources: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """{queue: (function, event)} for every rule event's DeadLetterConfig. The queue is named
    `<function><event>Queue` (SAM's logical id for the one `Type: SQS` makes, so a deployed
    stack keeps its queues); SAM's own, with SQS's 4 days, is refused."""
    queues = {}
    for function, event, props in rule_events(resources):
        config = props.get("DeadLetterConfig")
        if config is None:
            continue
        wanted = f"{function}{event}Queue"
        where = f"template.yaml: {function} event {event}"
        if "Type" in config:
            raise WiringError(
                f"{where}: DeadLetterConfig Type makes SAM's queue, kept SQS's 4 days; name "
                f"this rule's own instead: `Arn: !GetAtt {wanted}.Arn`"
            )
        queue = _get_att(config.get("Arn"), "Arn")
        if queue != wanted or queue in resources:
            raise WiringError(
                f"{where}: DeadLetterConfig must be `Arn: !GetAtt {wanted}.Arn`, the queue "
                f"scripts/generate.py declares for this rule (not one the template declares)"
            )
        queues[queue] = (function, event)
    return queues


def rule_dead_letters(template: dict[str, Any]) -> dict[str, Any]:
    """Each rule's dead-letter queue, kept 14 days and encrypted, and the policy that lets
    EventBridge send to it for that rule only (the one SAM writes for `Type: SQS`, under the
    same logical id: two policies on one queue would overwrite each other)."""
    snippet: dict[str, Any] = {}
    for queue, (function, event) in rule_dead_letter_queues(declared(template)).items():
        snippet[queue] = {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "MessageRetentionPeriod": DEAD_LETTER_RETENTION_SECONDS,
                "SqsManagedSseEnabled": True,
            },
        }
        rule = f"{function}{event}"  # the logical id SAM gives the event's rule
        snippet[f"{rule}QueuePolicy"] = {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {
                "Queues": [{"Ref": queue}],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "events.amazonaws.com"},
                            "Action": "sqs:SendMessage",
                            "Resource": {"Fn::GetAtt": [queue, "Arn"]},
                            "Condition": {
                                "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule, "Arn"]}}
                            },
                        }
                    ],
                },
            },
        }
    return snippet


def dead_letter_queues(resources: dict[str, Any]) -> dict[str, str]:
    """Every dead-letter queue of the stack (the template's own and each rule's, which
    rule_dead_letters declares), with what lands in it, read from the wiring: Lambda's
    OnFailure destinations, the rules' dead-letter configs, and what a role Scheduler assumes
    may send to."""
    failed_runs: dict[str, list[str]] = {}
    undelivered: dict[str, list[str]] = {}
    for queue, (function, event) in rule_dead_letter_queues(resources).items():
        pattern = resources[function]["Properties"]["Events"][event]["Properties"]["Pattern"]
        types = pattern.get("detail-type") or ["hotline"]
        undelivered[queue] = [
            f"{_listed(types)} events EventBridge could not deliver to {function}"
        ]
    for name, resource in resources.items():
        props = resource.get("Properties") or {}
        if resource["Type"] == "AWS::Serverless::Function":
            config = (props.get("EventInvokeConfig") or {}).get("DestinationConfig") or {}
            queue = _get_att((config.get("OnFailure") or {}).get("Destination"), "Arn")
            if queue:
                failed_runs.setdefault(queue, []).append(name)
        elif resource["Type"] == "AWS::IAM::Role" and "scheduler.amazonaws.com" in json.dumps(
            props.get("AssumeRolePolicyDocument")
        ):
            statements = [
                s for p in props.get("Policies") or [] for s in p["PolicyDocument"]["Statement"]
            ]
            targets = [
                _get_att(r, "Arn")
                for s in statements
                if "lambda:InvokeFunction" in _as_list(s["Action"])
                for r in _as_list(s["Resource"])
            ]
            for s in statements:
                if "sqs:SendMessage" in _as_list(s["Action"]):
                    for queue in filter(
                        None, (_get_att(r, "Arn") for r in _as_list(s["Resource"]))
                    ):
                        undelivered.setdefault(queue, []).append(
                            "schedules Scheduler could not deliver to "
                            + _listed([t for t in targets if t], "and")
                        )
    holds: dict[str, str] = {}
    for name, resource in resources.items():
        if resource["Type"] != "AWS::SQS::Queue":
            continue
        what = undelivered.get(name, [])
        if name in failed_runs:
            runs = f"runs of {_listed(failed_runs[name])} that failed after Lambda's retries"
            what = [runs, *what]
        if not what:
            raise WiringError(f"template.yaml: nothing sends dead letters to {name}")
        holds[name] = "; ".join(what)
    holds.update({q: "; ".join(w) for q, w in undelivered.items() if q not in resources})
    return holds


def _alarm(description: Any, shape: dict[str, Any], threshold: Any = 1) -> dict[str, Any]:
    topic = [{"Ref": "AlarmTopic"}]
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": description,
            **shape,
            "EvaluationPeriods": 1,
            "Threshold": threshold,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": topic,
            "OKActions": topic,
        },
    }


def _sum_of(label: str, metrics: list[dict[str, Any]], period: int = 300) -> dict[str, Any]:
    """An alarm's Metrics: the sum of `metrics` (each {Namespace, MetricName, Dimensions})."""
    if len(metrics) > 10:  # CloudWatch: at most 10 metrics in an alarm
        raise WiringError(f"{label}: {len(metrics)} metrics, more than an alarm may sum")
    total = {"Id": "total", "Label": label, "Expression": "SUM(METRICS())", "ReturnData": True}
    return {
        "Metrics": [
            total,
            *(
                {
                    "Id": f"m{index}",
                    "ReturnData": False,
                    "MetricStat": {"Metric": metric, "Period": period, "Stat": "Sum"},
                }
                for index, metric in enumerate(metrics)
            ),
        ]
    }


def code_metric_alarms(template: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """An alarm per CODE_METRICS entry, on the metric as the functions emit it (the namespace
    and service the template gives Powertools), and the template parameters they take."""
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    try:
        namespace, service = env["POWERTOOLS_METRICS_NAMESPACE"], env["POWERTOOLS_SERVICE_NAME"]
    except KeyError as missing:
        raise WiringError(f"template.yaml: Globals set no {missing} for the functions") from None
    alarms, taken = {}, set()
    for metric, (description, period, threshold) in CODE_METRICS.items():
        if isinstance(threshold, str):
            if threshold not in template["Parameters"]:
                raise WiringError(f"template.yaml: {metric}'s alarm needs parameter {threshold}")
            taken.add(threshold)
            threshold = {"Ref": threshold}
        alarms[f"{metric}Alarm"] = _alarm(
            description,
            {
                "Namespace": namespace,
                "MetricName": metric,
                "Dimensions": [{"Name": "service", "Value": service}],
                "Statistic": "Sum",
                "Period": period,
            },
            threshold,
        )
    return alarms, taken


def _refs(node: Any, key: str) -> set[str]:
    """The names every {key: name} in `node` refers to (Ref, Condition)."""
    if isinstance(node, list):
        return {name for item in node for name in _refs(item, key)}
    if not isinstance(node, dict):
        return set()
    if set(node) == {key} and isinstance(node[key], str):
        return {node[key]}
    return {name for value in node.values() for name in _refs(value, key)}


def contact_flow_alarm(template: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The alarm on the contact flows' errors (none without a flow), and the conditions it
    needs, copied from template.yaml with those they name: it exists when the flows do. The
    flows' names are the template's, with ${AWS::StackName} as the nested ${StackName}."""
    flows = {
        name: resource
        for name, resource in declared(template).items()
        if resource["Type"] == "AWS::Connect::ContactFlow"
    }
    if not flows:
        return {}, {}
    used = {r.get("Condition") for r in flows.values()}
    arns = {json.dumps(r["Properties"]["InstanceArn"]) for r in flows.values()}
    if len(used) != 1 or None in used or len(arns) != 1:
        raise WiringError("template.yaml: the contact flows differ in Condition or InstanceArn")
    [condition] = used
    instance = json.loads(arns.pop())
    if not isinstance(instance, dict) or set(instance) != {"Ref"}:
        raise WiringError("template.yaml: a contact flow's InstanceArn is not a parameter")
    names = []
    for name, resource in flows.items():
        text = (resource["Properties"]["Name"] or {}).get("Fn::Sub")
        if not isinstance(text, str) or set(re.findall(r"\$\{([^}]+)\}", text)) - {
            "AWS::StackName"
        }:
            raise WiringError(f"template.yaml: {name}'s Name is not a Sub of the stack's name")
        names.append(text.replace("${AWS::StackName}", "${StackName}"))
    conditions: dict[str, Any] = {}
    wanted = [condition]
    while wanted:
        name = wanted.pop()
        conditions[name] = template["Conditions"][name]
        wanted += sorted(_refs(conditions[name], "Condition") - set(conditions))
    # The instance's id is the ARN's last part (arn:…:instance/<id>); read only with a flow.
    instance_id = {"Fn::Select": [1, {"Fn::Split": ["/", instance]}]}
    metrics = [
        {
            "Namespace": "AWS/Connect",
            "MetricName": metric,
            "Dimensions": [
                {"Name": "InstanceId", "Value": instance_id},
                {"Name": "MetricGroup", "Value": "ContactFlow"},
                {"Name": "ContactFlowName", "Value": {"Fn::Sub": flow}},
            ],
        }
        for flow in names
        for metric in CONNECT_FLOW_METRICS
    ]
    flows_named = _listed([f"`{n.replace('${StackName}', '<stack>')}`" for n in names], "and")
    alarm = _alarm(
        f"A contact flow ({flows_named}) took its error branch or failed: a caller heard that "
        "the line is unavailable, or was cut off. Connect's flow logs say where (PIN entry is "
        "not logged); a function error or throttle has its own alarm.",
        _sum_of("Contact flow errors, every hotline flow", metrics),
    )
    return {
        "ContactFlowErrorsAlarm": {"Type": alarm.pop("Type"), "Condition": condition, **alarm}
    }, conditions


def alarms_template(template: dict[str, Any]) -> dict[str, Any]:
    """The nested template of the alarms that share one shape. Its parameters are named after
    what they stand for in template.yaml (a queue's QueueName, a function's name, a parameter
    of its own), plus StackName: the alarms name the commands to run against the hotline
    stack, not this one."""
    resources = declared(template)
    queues = dead_letter_queues(resources)
    functions = [n for n, r in resources.items() if r["Type"] in FUNCTION_TYPES]
    commands = (
        "Look at them with `hotline dead-letters list --stack ${StackName}`, fix the cause, "
        "then `hotline dead-letters redrive --stack ${StackName} --all`."
    )
    alarms = {
        f"{queue}Alarm": _alarm(
            {"Fn::Sub": f"Dead letters in {queue}: {holds}. {commands}"},
            {
                "Namespace": "AWS/SQS",
                "MetricName": "ApproximateNumberOfMessagesVisible",
                "Dimensions": [{"Name": "QueueName", "Value": {"Ref": queue}}],
                "Statistic": "Maximum",
                "Period": 300,
            },
        )
        for queue, holds in queues.items()
    }
    for metric, happened in FUNCTION_METRICS.items():
        alarms[f"Function{metric}Alarm"] = _alarm(
            f"A hotline function {happened} (sum over every function; the dashboard shows which).",
            _sum_of(
                f"{metric}, every hotline function",
                [
                    {
                        "Namespace": "AWS/Lambda",
                        "MetricName": metric,
                        "Dimensions": [{"Name": "FunctionName", "Value": {"Ref": name}}],
                    }
                    for name in functions
                ],
            ),
        )
    on_code, thresholds = code_metric_alarms(template)
    on_flows, conditions = contact_flow_alarm(template)
    alarms.update(on_code)
    alarms.update(on_flows)
    declared_parameters = template["Parameters"]
    own = sorted(thresholds | _refs(conditions, "Ref") - {"AWS::Region", "AWS::Partition"})
    parameters = {
        "StackName": {"Type": "String", "Description": "The hotline stack the alarms watch"},
        "AlarmTopic": {"Type": "String", "Description": "The SNS topic the alarms notify"},
        **{q: {"Type": "String", "Description": f"QueueName of {q}"} for q in queues},
        **{f: {"Type": "String", "Description": f"FunctionName of {f}"} for f in functions},
        **{
            p: {"Type": declared_parameters[p]["Type"], "Description": f"template.yaml's {p}"}
            for p in own
        },
    }
    nested: dict[str, Any] = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "Hotline alarms that share one shape (the application Alarms of "
        "template.yaml)",
        "Parameters": parameters,
    }
    if conditions:
        nested["Conditions"] = conditions
    nested["Resources"] = alarms
    return nested


# --- writing ---------------------------------------------------------------------------------
class _Dumper(yaml.SafeDumper):
    """Long-form intrinsics (AWS::Include takes no YAML short forms), multi-line text as a
    literal block, keys in the order written."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    return dumper.represent_scalar(
        "tag:yaml.org,2002:str", data, style="|" if "\n" in data else None
    )


_Dumper.add_representer(str, _text)


def dump(doc: dict[str, Any], source: str) -> str:
    # No folding: a long line stays one line, as a person would write it.
    body = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=4096)
    return header(source) + body


def wanted(root: Path = ROOT) -> dict[Path, str]:
    """Every file of generated/, as it should be."""
    files = {}
    for path in sorted((root / "contact_flow").glob("*.json")):
        target = root / GENERATED / "contact_flow" / f"{path.stem}.yaml"
        files[target] = dump(flow_snippet(path), f"contact_flow/{path.name}")
    for path in sorted((root / "schemas").glob("*.json")):
        target = root / GENERATED / "schemas" / f"{path.stem}.yaml"
        files[target] = dump(schema_snippet(path), f"schemas/{path.name}")
    template = parse_template(root / "template.yaml")
    files[root / RULE_DEAD_LETTERS] = dump(rule_dead_letters(template), "template.yaml's rules")
    files[root / ALARMS] = dump(alarms_template(template), "template.yaml's wiring")
    return files


def main(argv: list[str]) -> int:
    try:
        files = wanted()
    except WiringError as exc:
        print(exc, file=sys.stderr)
        return 1
    present = set((ROOT / GENERATED).rglob("*.yaml"))
    if "--check" in argv:
        stale = sorted(
            str(p.relative_to(ROOT))
            for p in set(files) | present
            if p not in files or not p.exists() or p.read_text(encoding="utf-8") != files[p]
        )
        if stale:
            print(
                f"{', '.join(stale)}: not what scripts/generate.py writes from contact_flow/, "
                "schemas/ and template.yaml; run: python scripts/generate.py",
                file=sys.stderr,
            )
            return 1
        print("generated/: up to date")
        return 0
    for path in present - set(files):
        path.unlink()
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    print(f"generated/: {len(files)} files written")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
