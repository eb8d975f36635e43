"""Reads `template.yaml` (CloudFormation + SAM) and provisions it in moto.

The template is the one source of truth for wiring: functions, handlers, environment, event
rules and HTTP routes are read from it, and intrinsic functions are resolved against what was
created here. A resource type with no local meaning is listed below and skipped on purpose;
any other unknown type is an error, so new wiring is never silently ignored. A function's
EventBridgeRule events and the standalone `AWS::Events::Rule`s are read into one shape: the
rule (pattern, bus, name, State) and its targets (with Input, InputPath, RetryPolicy...);
provisioning honours what it can (a CloudWatch Logs target is the local event log, a target
that is one of the template's functions is drained into its handler) and refuses anything else
with a TemplateError naming the rule (and the function and event for SAM's). Parameter values
are checked against the template's own constraints, as CloudFormation checks them.

The template is read as CloudFormation reads it before SAM: an AWS::Include (`Fn::Transform`)
with a file Location is replaced by that file, as `sam deploy` uploads it. A nested
application from a file (AWS::Serverless::Application) is read too, and may hold only
resources with no local meaning: anything else in it would be wiring the runtime never saw.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# The project: template.yaml, the functions' code, contact_flow/ and the default directory.
ROOT = Path(__file__).resolve().parents[3]
REGION = "ap-northeast-1"
# The one account id of the local runtime: moto's default account, so the ARNs resolved here
# are the ones moto creates and keys its backends by.
ACCOUNT = "123456789012"

# Types that matter on AWS but have nothing to emulate locally.
NO_LOCAL_MEANING = {
    "AWS::Serverless::LayerVersion",  # the layer's code is the installed hotline_core package
    "AWS::S3::BucketPolicy",
    "AWS::Lambda::Permission",
    "AWS::IAM::Role",
    "AWS::CloudWatch::Alarm",
    "AWS::CloudWatch::Dashboard",
    "AWS::SNS::Topic",
    "AWS::SNS::Subscription",
    "AWS::Logs::LogGroup",  # a rule targeting one is the local event log (/_local/events)
    "AWS::Logs::ResourcePolicy",
    "AWS::EventSchemas::Registry",
    "AWS::EventSchemas::Schema",
    "AWS::ApiGatewayV2::DomainName",
    "AWS::ApiGatewayV2::ApiMapping",
    "AWS::SQS::QueuePolicy",
    "AWS::IAM::ManagedPolicy",
    "AWS::Serverless::Application",  # read, and checked to hold only types listed here
}
INCLUDE = "AWS::Include"


class TemplateError(ValueError):
    pass


class ParameterError(TemplateError):
    """A parameter value given to the runtime (not the template's default) that the
    template's constraints refuse."""


# libyaml's loader when PyYAML has it: an included contact flow is large.
_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _CfnLoader(_Base):  # type: ignore[valid-type,misc]
    pass


def _tag(loader: yaml.Loader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if name == "Fn::GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


def parse_template(path: Path) -> dict[str, Any]:
    """The YAML as written: short-form intrinsics in their long form, nothing included."""
    data: dict[str, Any] = yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506
    return data


def load_template(path: Path) -> dict[str, Any]:
    """The template as CloudFormation processes it before SAM: every AWS::Include resolved."""
    resolved: dict[str, Any] = include(parse_template(path), path.parent)
    return resolved


def include(node: Any, base: Path, *, nested: bool = False) -> Any:
    """`node` with each AWS::Include (`Fn::Transform`) replaced by its snippet, a file named
    relative to `base`: merged into the mapping that holds the transform, as CloudFormation
    merges it. A snippet may not include another (CloudFormation's rule), and a macro other
    than AWS::Include is not run here."""
    if isinstance(node, list):
        return [include(item, base, nested=nested) for item in node]
    if not isinstance(node, dict):
        return node
    merged = {k: include(v, base, nested=nested) for k, v in node.items() if k != "Fn::Transform"}
    if "Fn::Transform" not in node:
        return merged
    transform = node["Fn::Transform"]
    name = transform.get("Name") if isinstance(transform, dict) else None
    if name != INCLUDE:
        shown = name if isinstance(name, str) else repr(transform)
        raise TemplateError(f"Fn::Transform {shown}: only {INCLUDE} is read locally")
    location = (transform.get("Parameters") or {}).get("Location")
    if not isinstance(location, str) or "://" in location:
        raise TemplateError(f"{INCLUDE} Location {location!r}: the local runtime reads a file")
    if nested:
        raise TemplateError(f"{INCLUDE} of {location}: a snippet may not include another")
    path = base / location
    try:
        snippet = parse_template(path)
    except OSError as exc:
        raise TemplateError(f"{INCLUDE} of {location}: {exc.strerror}") from exc
    if not isinstance(snippet, dict):
        raise TemplateError(f"{INCLUDE} of {location}: a snippet is a mapping")
    snippet = include(snippet, path.parent, nested=True)
    clash = sorted(set(snippet) & set(merged))
    if clash:
        raise TemplateError(f"{INCLUDE} of {location}: {', '.join(clash)} given twice")
    return {**merged, **snippet}


def nested_template(root: Path, resource: dict[str, Any]) -> dict[str, Any] | None:
    """The template of a nested application whose Location is a file, else None."""
    location = (resource.get("Properties") or {}).get("Location")
    if resource["Type"] != "AWS::Serverless::Application" or not isinstance(location, str):
        return None
    if "://" in location:
        return None
    return load_template(root / location)


@dataclass
class HttpRoute:
    method: str
    path: str  # API Gateway style: /a/{token}

    def pattern(self) -> re.Pattern[str]:
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path))
        return re.compile(f"^{regex}$")


# What SAM's EventBridgeRule event says about the rule it generates, and about its one target
# (the function): provisioning reads the target's as it reads a standalone rule's targets.
_SAM_RULE_PROPERTIES = {"Pattern", "EventBusName", "RuleName", "State", "Target"}
_SAM_TARGET_PROPERTIES = {
    "Input",
    "InputPath",
    "InputTransformer",
    "RetryPolicy",
    "DeadLetterConfig",
}


@dataclass
class EventRule:
    """An EventBridge rule, its properties unresolved: a standalone AWS::Events::Rule, or the
    rule SAM generates for a function's EventBridgeRule event (one target: the function).
    Both are provisioned by one code path; `where` names the rule in every error."""

    logical_id: str
    name_ref: Any  # the Name property (maybe an intrinsic), or a name made from the id
    pattern: dict[str, Any]
    bus_ref: Any
    targets: list[dict[str, Any]]
    enabled: bool = True
    where: str = ""
    function_event: bool = False  # SAM's: its single target is the function itself

    def target_where(self, index: int, target: dict[str, Any]) -> str:
        if self.function_event:
            return self.where
        return f"{self.where} target {target.get('Id', index)!r}"


@dataclass
class FunctionSpec:
    logical_id: str
    code_uri: str
    handler: str
    timeout: int
    raw_environment: dict[str, Any]
    rules: list[EventRule] = field(default_factory=list)
    routes: list[HttpRoute] = field(default_factory=list)
    max_retries: int = 2
    on_failure: Any = None
    # SAM's AutoPublishAlias: a version published on each deploy and an alias `<Logical>Alias
    # <name>` pointing at it. Locally there are no versions: the alias is the function.
    alias: str | None = None

    @property
    def module(self) -> str:
        return self.handler.rsplit(".", 1)[0]

    @property
    def attribute(self) -> str:
        return self.handler.rsplit(".", 1)[1]


class Template:
    """The template with its parameters and conditions resolved (but nothing provisioned)."""

    def __init__(
        self,
        path: Path,
        *,
        parameters: dict[str, str] | None = None,
        stack_name: str = "hotline-local",
    ) -> None:
        self.path = path
        self.root = path.parent
        self.doc = load_template(path)
        self.stack_name = stack_name
        self.parameters = self._parameters(parameters or {})
        self.resources: dict[str, dict[str, Any]] = self.doc.get("Resources", {})
        self.conditions = {
            name: bool(self._evaluate(expr, {}))
            for name, expr in self.doc.get("Conditions", {}).items()
        }
        self._check_applications()

    def _check_applications(self) -> None:
        """A nested application is read, not provisioned: it may hold only resources that
        mean nothing locally (alarms, say); a function in one would silently not run."""
        for logical_id, resource in self.resources.items():
            if resource["Type"] != "AWS::Serverless::Application" or not self.active(logical_id):
                continue
            location = (resource.get("Properties") or {}).get("Location")
            if not isinstance(location, str) or "://" in location:
                raise TemplateError(
                    f"{logical_id}: the local runtime reads a nested application from a file"
                )
            try:
                nested = nested_template(self.root, resource) or {}
            except OSError as exc:
                raise TemplateError(f"{logical_id}: {location}: {exc.strerror}") from exc
            for name, inner in nested.get("Resources", {}).items():
                if inner["Type"] not in NO_LOCAL_MEANING:
                    raise TemplateError(
                        f"{logical_id} ({location}): {name} ({inner['Type']}) would not be "
                        "emulated by the local runtime; nest only what has no local meaning"
                    )

    def _parameters(self, given: dict[str, str]) -> dict[str, str]:
        """Every parameter's value, checked against the template's own constraints as
        CloudFormation checks them, whether it was given or is the default."""
        declared = self.doc.get("Parameters", {})
        unknown = set(given) - set(declared)
        if unknown:
            raise TemplateError(f"unknown template parameter(s): {', '.join(sorted(unknown))}")
        values = {}
        for name, spec in declared.items():
            if name in given:
                values[name] = str(given[name])
            elif "Default" in spec:
                values[name] = str(spec["Default"])
            else:
                raise TemplateError(f"template parameter {name} has no default and no value")
            problem = parameter_problem(spec, values[name])
            if problem:
                shown = "(hidden: NoEcho)" if _true(spec.get("NoEcho")) else repr(values[name])
                hint = spec.get("ConstraintDescription")
                hint = f" ({hint})" if hint else ""
                error = ParameterError if name in given else TemplateError
                raise error(f"template parameter {name}: {shown} {problem}{hint}")
        return values

    def active(self, logical_id: str) -> bool:
        condition = self.resources[logical_id].get("Condition")
        return condition is None or self.conditions[condition]

    def _evaluate(self, expr: Any, refs: dict[str, Any]) -> Any:
        """Resolve intrinsics; `refs` holds {logical id: {"Ref": …, "Arn": …, …}}."""
        if isinstance(expr, list):
            return [self._evaluate(e, refs) for e in expr]
        if not isinstance(expr, dict):
            return expr
        if len(expr) != 1:
            return {k: self._evaluate(v, refs) for k, v in expr.items()}
        ((key, arg),) = expr.items()
        if key == "Ref":
            return self._ref(arg, refs)
        if key == "Fn::GetAtt":
            logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            return self._attribute(logical, attribute, refs)
        if key == "Fn::Sub":
            text, local = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
            local = {k: self._evaluate(v, refs) for k, v in local.items()}
            return self._sub(text, local, refs)
        if key == "Fn::If":
            name, yes, no = arg
            return self._evaluate(yes if self.conditions[name] else no, refs)
        if key == "Fn::Equals":
            a, b = (self._evaluate(x, refs) for x in arg)
            return str(a) == str(b)
        if key == "Fn::Not":
            return not self._evaluate(arg[0], refs)
        if key == "Fn::And":
            return all(self._evaluate(x, refs) for x in arg)
        if key == "Fn::Or":
            return any(self._evaluate(x, refs) for x in arg)
        if key == "Condition":
            return self.conditions[arg]
        if key == "Fn::Join":
            sep, items = arg
            return sep.join(str(self._evaluate(i, refs)) for i in items)
        if key == "Fn::Select":
            index, items = arg
            chosen = self._evaluate(items, refs)
            if not 0 <= int(index) < len(chosen):
                # CloudFormation refuses the template with the same words.
                raise TemplateError(f"Fn::Select cannot select nonexistent value at index {index}")
            return chosen[int(index)]
        if key == "Fn::Split":
            delimiter, text = arg
            return str(self._evaluate(text, refs)).split(delimiter)
        if key.startswith("Fn::"):
            raise TemplateError(f"intrinsic {key} is not supported by the local runtime")
        return {key: self._evaluate(arg, refs)}

    def _ref(self, name: str, refs: dict[str, Any]) -> Any:
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.stack_name,
            "AWS::NoValue": None,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in refs:
            return refs[name]["Ref"]
        raise TemplateError(f"Ref to {name}, which is not provisioned locally")

    def _attribute(self, logical: str, attribute: str, refs: dict[str, Any]) -> Any:
        try:
            return refs[logical][attribute]
        except KeyError:
            raise TemplateError(f"GetAtt {logical}.{attribute} is not known locally") from None

    def _sub(self, text: str, local: dict[str, Any], refs: dict[str, Any]) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in local:
                return str(local[name])
            if "." in name:
                logical, attribute = name.split(".", 1)
                return str(self._attribute(logical, attribute, refs))
            return str(self._ref(name, refs))

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def resolve(self, expr: Any, refs: dict[str, Any]) -> Any:
        return self._evaluate(expr, refs)

    def functions(self) -> list[FunctionSpec]:
        globals_ = self.doc.get("Globals", {}).get("Function", {})
        specs = []
        for logical_id, resource in self.resources.items():
            if resource["Type"] != "AWS::Serverless::Function" or not self.active(logical_id):
                continue
            props = {**globals_, **resource.get("Properties", {})}
            env = {
                **globals_.get("Environment", {}).get("Variables", {}),
                **resource.get("Properties", {}).get("Environment", {}).get("Variables", {}),
            }
            spec = FunctionSpec(
                logical_id=logical_id,
                code_uri=props["CodeUri"],
                handler=props["Handler"],
                timeout=int(props.get("Timeout", 3)),
                raw_environment=env,
            )
            spec.alias = props.get("AutoPublishAlias")
            invoke = props.get("EventInvokeConfig", {})
            spec.max_retries = int(invoke.get("MaximumRetryAttempts", 2))
            spec.on_failure = (
                invoke.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            )
            for event_name, event in props.get("Events", {}).items():
                kind, eprops = event["Type"], event.get("Properties", {})
                if kind == "EventBridgeRule":
                    spec.rules.append(self._function_event_rule(logical_id, event_name, eprops))
                elif kind == "HttpApi":
                    spec.routes.append(HttpRoute(eprops["Method"].upper(), eprops["Path"]))
                else:
                    raise TemplateError(f"{logical_id}: event type {kind} is not emulated locally")
            specs.append(spec)
        return specs

    def _function_event_rule(
        self, logical_id: str, event_name: str, props: dict[str, Any]
    ) -> EventRule:
        """The rule and target SAM generates for a function's EventBridgeRule event, in the
        shape of a standalone rule, so that one code path provisions both."""
        where = f"{logical_id} event {event_name} (EventBridgeRule)"
        unknown = sorted(set(props) - _SAM_RULE_PROPERTIES - _SAM_TARGET_PROPERTIES)
        if unknown:
            raise TemplateError(
                f"{where}: property {', '.join(unknown)} is not emulated by the local runtime"
            )
        pattern = props.get("Pattern")
        if not isinstance(pattern, dict) or not pattern:
            raise TemplateError(f"{where}: the local runtime needs a Pattern")
        target_id = (props.get("Target") or {}).get("Id") or f"{logical_id}{event_name}LambdaTarget"
        target = {"Id": target_id, "Arn": {"Fn::GetAtt": [logical_id, "Arn"]}}
        target.update({key: props[key] for key in sorted(_SAM_TARGET_PROPERTIES) if key in props})
        return EventRule(
            logical_id=f"{logical_id}{event_name}",  # the logical id SAM gives the rule
            name_ref=props.get("RuleName") or f"{self.stack_name}-{logical_id}-{event_name}"[:64],
            pattern=pattern,
            bus_ref=props.get("EventBusName", "default"),
            targets=[target],
            enabled=_enabled(where, props),
            where=where,
            function_event=True,
        )

    def event_rules(self) -> list[EventRule]:
        """The active standalone AWS::Events::Rule resources. A rule the local runtime cannot
        honour at all (a schedule, no pattern, no targets) is a TemplateError naming it; which
        targets it can honour is decided when they are resolved, in provisioning."""
        rules = []
        for logical_id, resource in self.resources.items():
            if resource["Type"] != "AWS::Events::Rule" or not self.active(logical_id):
                continue
            props = resource.get("Properties", {})
            where = f"{logical_id} (AWS::Events::Rule)"
            if "ScheduleExpression" in props:
                raise TemplateError(
                    f"{where}: scheduled rules are not emulated by the local runtime"
                )
            pattern = props.get("EventPattern")
            if not isinstance(pattern, dict) or not pattern:
                raise TemplateError(f"{where}: the local runtime needs an EventPattern")
            targets = props.get("Targets")
            if not isinstance(targets, list) or not targets:
                raise TemplateError(f"{where}: a rule without Targets does nothing locally")
            rules.append(
                EventRule(
                    logical_id=logical_id,
                    name_ref=props.get("Name") or f"{self.stack_name}-{logical_id}"[:64],
                    pattern=pattern,
                    bus_ref=props.get("EventBusName", "default"),
                    targets=targets,
                    enabled=_enabled(where, props),
                    where=where,
                )
            )
        return rules

    def flow_files(self) -> dict[str, Path]:
        """Contact flows shipped with the template: contact_flow/<line>.json."""
        return {p.stem: p for p in sorted((self.root / "contact_flow").glob("*.json"))}


def pattern_json(pattern: dict[str, Any]) -> str:
    return json.dumps(pattern)


def _enabled(where: str, props: dict[str, Any]) -> bool:
    state = str(props.get("State", "ENABLED")).upper()
    if state not in ("ENABLED", "DISABLED"):
        raise TemplateError(f"{where}: State {state} is not emulated by the local runtime")
    return state == "ENABLED"


def _true(value: Any) -> bool:
    return str(value).lower() == "true"


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def parameter_problem(spec: dict[str, Any], value: str) -> str | None:
    """What is wrong with `value` for a parameter declared as `spec` (its Type, AllowedValues,
    AllowedPattern, MinLength/MaxLength, MinValue/MaxValue), or None when nothing is."""
    if spec.get("Type", "String") == "Number":
        number = _number(value)
        if number is None:
            return "is not a number (Type: Number)"
        allowed = [_number(v) for v in spec.get("AllowedValues", [])]
        if "AllowedValues" in spec and number not in allowed:
            return f"is not one of its AllowedValues {_listed(spec['AllowedValues'])}"
        if "MinValue" in spec and number < float(spec["MinValue"]):
            return f"is below its MinValue {spec['MinValue']}"
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            return f"is above its MaxValue {spec['MaxValue']}"
        return None
    if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
        return f"is not one of its AllowedValues {_listed(spec['AllowedValues'])}"
    # CloudFormation matches the whole value against the pattern.
    if "AllowedPattern" in spec and not re.fullmatch(str(spec["AllowedPattern"]), value):
        return f"does not match its AllowedPattern {spec['AllowedPattern']}"
    if "MinLength" in spec and len(value) < int(spec["MinLength"]):
        return f"is shorter than its MinLength {spec['MinLength']}"
    if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
        return f"is longer than its MaxLength {spec['MaxLength']}"
    return None


def _listed(values: list[Any]) -> str:
    return "[" + ", ".join(str(v) for v in values) + "]"
