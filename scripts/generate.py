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
  (a depth alarm per dead-letter queue; errors and throttles summed over every function); the
  template nests it as the application Alarms.

An AWS::Include snippet must be a mapping, so a text is wrapped in Fn::Sub (with nothing to
substitute in a schema: a `${` there is escaped). Why Draft 4: schemas/ is what pydantic
generates (JSON Schema 2020-12: `$defs`, `const`, `$id`), but EventSchemas takes only
`JSONSchemaDraft4` or `OpenApi3`, which spell those `definitions`, `enum: [value]` and `id`. The
committed schema describes an event's `detail`; code bindings are generated for the whole
event, so the catalogue wraps it in the EventBridge envelope.
"""

from __future__ import annotations

import json
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


def _alarm(description: Any, shape: dict[str, Any]) -> dict[str, Any]:
    topic = [{"Ref": "AlarmTopic"}]
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": description,
            **shape,
            "EvaluationPeriods": 1,
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": topic,
            "OKActions": topic,
        },
    }


def alarms_template(template: dict[str, Any]) -> dict[str, Any]:
    """The nested template of the alarms that share one shape. Its parameters are named after
    what they stand for in template.yaml (a queue's QueueName, a function's name), plus
    StackName: the alarms name the commands to run against the hotline stack, not this one."""
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
        total = {
            "Id": "total",
            "Label": f"{metric}, every hotline function",
            "Expression": "SUM(METRICS())",
            "ReturnData": True,
        }
        alarms[f"Function{metric}Alarm"] = _alarm(
            f"A hotline function {happened} (sum over every function; the dashboard shows which).",
            {
                "Metrics": [
                    total,
                    *(
                        {
                            "Id": f"f{index}",
                            "ReturnData": False,
                            "MetricStat": {
                                "Metric": {
                                    "Namespace": "AWS/Lambda",
                                    "MetricName": metric,
                                    "Dimensions": [
                                        {"Name": "FunctionName", "Value": {"Ref": name}}
                                    ],
                                },
                                "Period": 300,
                                "Stat": "Sum",
                            },
                        }
                        for index, name in enumerate(functions)
                    ),
                ]
            },
        )
    parameters = {
        "StackName": {"Type": "String", "Description": "The hotline stack the alarms watch"},
        "AlarmTopic": {"Type": "String", "Description": "The SNS topic the alarms notify"},
        **{q: {"Type": "String", "Description": f"QueueName of {q}"} for q in queues},
        **{f: {"Type": "String", "Description": f"FunctionName of {f}"} for f in functions},
    }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "Hotline alarms that share one shape (the application Alarms of "
        "template.yaml)",
        "Parameters": parameters,
        "Resources": alarms,
    }


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
