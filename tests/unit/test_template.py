"""template.yaml: what the stack must create, least privilege, and the embedded flows."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hotline_tools.local.template import Template, load_template
from tests.conftest import ROOT

DOC = load_template(ROOT / "template.yaml")
RESOURCES = DOC["Resources"]


def of_type(kind):
    return {name: r for name, r in RESOURCES.items() if r["Type"] == kind}


def statements():
    """Every IAM statement in the template, with where it lives."""
    for name, resource in RESOURCES.items():
        props = resource.get("Properties", {})
        for policy in props.get("Policies", []) or []:
            if isinstance(policy, dict):
                for statement in policy.get("Statement", []):
                    yield name, statement
                for statement in policy.get("PolicyDocument", {}).get("Statement", []):
                    yield name, statement


def test_bus_archive_every_event_and_one_rule_per_consumer():
    [(bus, _)] = of_type("AWS::Events::EventBus").items()
    [archive] = of_type("AWS::Events::Archive").values()
    assert archive["Properties"]["SourceArn"] == {"Fn::GetAtt": [bus, "Arn"]}
    assert "EventPattern" not in archive["Properties"]  # every event
    consumers = {
        n: r
        for n, r in of_type("AWS::Serverless::Function").items()
        if r["Properties"]["CodeUri"] == "consumers/"
    }
    assert set(consumers) >= {
        "InviteReceiverFunction",
        "StartTimerFunction",
        "TellCallerFunction",
        "CancelTimerFunction",
    }
    for name, resource in consumers.items():
        props = resource["Properties"]
        [rule] = [e for e in props["Events"].values() if e["Type"] == "EventBridgeRule"]
        assert rule["Properties"]["Pattern"]["source"] == ["hotline"], name
        assert rule["Properties"]["Pattern"]["detail-type"], name
        assert props["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Type"] == "SQS", name


def test_functions_run_python_3_13_on_arm64():
    function_globals = DOC["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Architectures"] == ["arm64"]
    for name, r in of_type("AWS::Serverless::Function").items():
        assert "Runtime" not in r["Properties"] or r["Properties"]["Runtime"] == "python3.13", name


def test_requests_table_is_on_demand_with_ttl():
    props = RESOURCES["RequestsTable"]["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["TimeToLiveSpecification"]["Enabled"] is True


def test_connect_resources_exist_only_with_an_instance():
    for kind in ("AWS::Connect::ContactFlow", "AWS::Connect::IntegrationAssociation"):
        assert of_type(kind) and all(
            r.get("Condition") == "HasConnect" for r in of_type(kind).values()
        )
    permissions = of_type("AWS::Lambda::Permission")
    assert any(
        p["Properties"]["Principal"] == "connect.amazonaws.com" for p in permissions.values()
    )
    without = Template(ROOT / "template.yaml")
    assert without.conditions["HasConnect"] is False
    arn = (
        "arn:aws:connect:ap-northeast-1:123456789012:instance/"
        + "0" * 8
        + "-0000-0000-0000-"
        + "0" * 12
    )
    assert Template(ROOT / "template.yaml", parameters={"ConnectInstanceArn": arn}).conditions[
        "HasConnect"
    ]


def test_no_wildcard_action_and_no_full_access_managed_policy():
    for name, statement in statements():
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        if statement.get("Effect") == "Deny":
            continue
        for action in actions:
            assert action != "*" and not action.endswith(":*"), f"{name}: {action}"
    for name, resource in RESOURCES.items():
        for policy in resource.get("Properties", {}).get("Policies", []) or []:
            assert "FullAccess" not in str(policy), name
        for arn in resource.get("Properties", {}).get("ManagedPolicyArns", []) or []:
            assert "FullAccess" not in str(arn), name


# Sending an SMS to a phone number has no resource ARN: AWS requires "*" for these actions.
STAR_ALLOWED = {"sns:Publish", "sms-voice:SendTextMessage"}


def test_a_star_resource_only_where_aws_requires_it_and_with_a_comment_saying_why():
    text = (ROOT / "template.yaml").read_text(encoding="utf-8")
    for name, statement in statements():
        if statement.get("Effect") == "Deny" or statement.get("Resource") != "*":
            continue
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        assert set(actions) <= STAR_ALLOWED, f"{name}: {actions} on *"
    for index, line in enumerate(text.splitlines()):
        if line.strip() == 'Resource: "*"':
            window = "\n".join(text.splitlines()[max(0, index - 4) : index])
            assert "requires" in window, f"line {index + 1}: a * resource needs a comment why"


def test_pass_role_is_scoped_to_the_scheduler_role():
    passes = [(n, s) for n, s in statements() if "iam:PassRole" in str(s["Action"])]
    assert passes
    for name, statement in passes:
        assert statement["Resource"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}, name


def test_embedded_contact_flows_match_their_files():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "embed_flows.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("flow", ["hotline"])
def test_each_line_has_a_contact_flow_resource_with_the_lambda_substituted(flow):
    text = (ROOT / "template.yaml").read_text(encoding="utf-8")
    assert f"# BEGIN contact_flow/{flow}.json" in text
    assert '"LambdaFunctionARN": "${CallRequestFunction.Arn}"' in text
