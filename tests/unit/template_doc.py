"""template.yaml as the template tests read it: as CloudFormation processes it before SAM
(every AWS::Include resolved) and after the SAM transform (`transformed`); the IAM statements
in it (both branches of every Fn::If); the Service Authorization Reference; which functions
text; and the alarms of the nested application."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from hotline_tools.local.template import load_template, nested_template
from tests.conftest import ROOT

# As CloudFormation processes it before SAM: every AWS::Include resolved.
DOC = load_template(ROOT / "template.yaml")
RESOURCES = DOC["Resources"]
ALARMS_APP = RESOURCES["Alarms"]
ALARMS = nested_template(ROOT, ALARMS_APP)


def of_type(kind):
    return {name: r for name, r in RESOURCES.items() if r["Type"] == kind}


def as_list(value):
    return value if isinstance(value, list) else [value]


IAM_POLICY_TYPES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")


def attached_managed_policies(resources, function):
    """The template's own managed policies a SAM function names in its Policies (`!Ref`)."""
    for policy in as_list(resources[function]["Properties"].get("Policies") or []):
        target = policy.get("Ref") if isinstance(policy, dict) else None
        if target in resources and resources[target]["Type"] == "AWS::IAM::ManagedPolicy":
            yield target


def policy_documents(resources):
    """Every identity-policy document, with where it lives: a SAM function's inline
    statements and the template's managed policies it attaches (each counted as the
    function's), an IAM role's inline policies, an IAM policy or a managed policy nobody
    attaches that way. (Trust policies and resource policies grant nothing to our code and
    are not walked.)"""
    functions = [n for n, r in resources.items() if r["Type"] == "AWS::Serverless::Function"]
    attached = {p for f in functions for p in attached_managed_policies(resources, f)}
    for name, resource in resources.items():
        kind, props = resource["Type"], resource.get("Properties") or {}
        if kind == "AWS::Serverless::Function":
            for policy in as_list(props.get("Policies") or []):
                if isinstance(policy, dict) and "Statement" in policy:
                    yield name, policy
            for managed in attached_managed_policies(resources, name):
                yield name, resources[managed]["Properties"]["PolicyDocument"]
        elif kind == "AWS::IAM::Role":
            for policy in props.get("Policies") or []:
                yield name, policy["PolicyDocument"]
        elif kind in IAM_POLICY_TYPES and name not in attached:
            yield name, props["PolicyDocument"]


def either_branch(node):
    """A document's statements, those of both branches of an Fn::If included: what may be
    granted under some parameters is checked as if it always were."""
    if isinstance(node, dict) and "Fn::If" in node:
        _, yes, no = node["Fn::If"]
        return [*either_branch(yes), *either_branch(no)]
    if isinstance(node, list):
        return [statement for item in node for statement in either_branch(item)]
    return [] if node == {"Ref": "AWS::NoValue"} else [node]


def statements(resources=None):
    """Every IAM statement, with where it lives."""
    for name, document in policy_documents(RESOURCES if resources is None else resources):
        for statement in either_branch(document["Statement"]):
            yield name, statement


def allows(resources=None):
    """Allow statements as (where, actions, resources), both always lists."""
    for name, statement in statements(resources):
        if statement.get("Effect") == "Allow":
            yield name, as_list(statement["Action"]), as_list(statement["Resource"])


def sam_policy_templates():
    """(function, name) of every SAM policy template and managed policy a function names (the
    template's own managed policies, `!Ref`, are walked as statements instead)."""
    for name, resource in of_type("AWS::Serverless::Function").items():
        for policy in as_list(resource["Properties"].get("Policies") or []):
            if isinstance(policy, str):
                yield name, policy
            elif "Ref" not in policy:
                yield from ((name, key) for key in policy if key not in ("Statement", "Version"))


SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"
TRANSFORM = """
import json, os, sys
from samtranslator.translator.transform import transform
class NoPolicies:
    def load(self): return {}
os.environ.setdefault("AWS_DEFAULT_REGION", "ap-northeast-1")
doc = json.load(sys.stdin)
for resource in doc["Resources"].values():
    props = resource.get("Properties") or {}
    for key in ("CodeUri", "ContentUri"):  # sam build's job; the transform wants S3 URIs
        if isinstance(props.get(key), str):
            props[key] = "s3://bucket/key"
json.dump(transform(doc, {}, NoPolicies()), sys.stdout)
"""


@pytest.fixture(scope="module")
def transformed():
    """The template as CloudFormation sees it after the SAM transform (AWS::Include first, as
    CloudFormation runs it): SAM policy templates expanded into statements, one role per
    function, and one dead-letter queue per EventBridgeRule event with a DeadLetterConfig."""
    # `make test` creates .venv-sam first (cfn-lint and sam validate run from it).
    assert SAM_PYTHON.exists(), "the SAM transform lives in .venv-sam: run `make setup`"
    result = subprocess.run(
        [str(SAM_PYTHON), "-c", TRANSFORM],
        input=json.dumps(load_template(ROOT / "template.yaml")),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)["Resources"]


# Where AWS has no resource ARN to scope an action to, and why. Nothing else gets "*".
STAR_ALLOWED = {
    "sns:Publish": "publishing straight to a phone number (no topic) has no resource ARN",
}


def service_authorization_reference():
    """The Service Authorization Reference as cfn-lint ships it (in .venv-sam, beside the
    SAM CLI): per service, the resource types each action can be scoped to; none listed
    means AWS requires "*"."""
    [path] = (ROOT / ".venv-sam" / "lib").glob(
        "python3*/site-packages/cfnlint/data/AdditionalSpecs/Policies.json"
    )
    return json.loads(path.read_text(encoding="utf-8"))


def resource_types(action):
    service, name = action.split(":", 1)
    return service_authorization_reference()[service]["Actions"][name.lower()].get("Resources")


def handler_source(function):
    props = RESOURCES[function]["Properties"]
    module = props["Handler"].rsplit(".", 1)[0]
    return (ROOT / props["CodeUri"] / f"{module.replace('.', '/')}.py").read_text("utf-8")


def sms_senders():
    """Functions whose handler sends an SMS (read from the code, not from the template)."""
    return {
        name
        for name in of_type("AWS::Serverless::Function")
        if re.search(r"deps\(\)\.(once_only_)?(sms|messages)\b", handler_source(name))
    }


def line_senders():
    """Functions whose handler sends LINE first (`once_only_messages`, read from the code)."""
    return {
        name
        for name in of_type("AWS::Serverless::Function")
        if re.search(r"deps\(\)\.once_only_messages\b", handler_source(name))
    }


def environment(function):
    variables = dict(DOC["Globals"]["Function"]["Environment"]["Variables"])
    props = RESOURCES[function]["Properties"]
    variables.update((props.get("Environment") or {}).get("Variables") or {})
    return variables


def passed_to_alarms(node):
    """A node of generated/alarms.yaml with each Ref to one of its parameters replaced by what
    template.yaml passes the nested application: the alarm as CloudFormation creates it."""
    passed = ALARMS_APP["Properties"]["Parameters"]
    if isinstance(node, list):
        return [passed_to_alarms(item) for item in node]
    if isinstance(node, dict):
        if set(node) == {"Ref"} and node["Ref"] in passed:
            return passed[node["Ref"]]
        return {k: passed_to_alarms(v) for k, v in node.items()}
    return node


def alarms():
    """Every alarm of the stack: the template's own and its nested application's."""
    return {**of_type("AWS::CloudWatch::Alarm"), **passed_to_alarms(ALARMS["Resources"])}
