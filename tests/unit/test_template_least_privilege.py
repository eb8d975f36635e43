"""template.yaml's least privilege: no wildcard action and no FullAccess, "*" only where AWS
requires it (and a comment says why), PassRole only for the scheduler role, each function's
tables and actions, and only the chosen SMS provider's permissions."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from hotline_tools.local.template import Template
from tests.conftest import ROOT
from tests.unit import template_doc
from tests.unit.template_doc import (
    DOC,
    RESOURCES,
    STAR_ALLOWED,
    allows,
    as_list,
    attached_managed_policies,
    environment,
    of_type,
    resource_types,
    sam_policy_templates,
    sms_senders,
    statements,
)

# Shared fixtures: pytest finds a fixture by its name in the test module.
transformed = template_doc.transformed


def test_the_policy_walk_sees_functions_roles_and_expanded_policy_templates(transformed):
    # Without this, a walk that found nothing would make every least-privilege test pass.
    walked = {name for name, _ in statements()}
    with_statements = {
        n
        for n, r in of_type("AWS::Serverless::Function").items()
        if any(isinstance(p, dict) and "Statement" in p for p in r["Properties"]["Policies"])
    }
    assert {"SchedulerRole", "CallRequestFunction"} <= walked
    assert with_statements <= walked
    roles = {n for n, r in transformed.items() if r["Type"] == "AWS::IAM::Role"}
    assert {f"{n}Role" for n in of_type("AWS::Serverless::Function")} <= roles
    expanded = [actions for _, actions, _ in allows(transformed)]
    assert ["events:PutEvents"] in expanded  # EventBridgePutEventsPolicy, expanded by SAM


@pytest.mark.parametrize("stage", ["template", "transformed"])
def test_no_wildcard_action_and_no_not_action_or_not_resource(stage, request):
    resources = RESOURCES if stage == "template" else request.getfixturevalue("transformed")
    for name, statement in statements(resources):
        if statement.get("Effect") != "Allow":
            continue
        assert "NotAction" not in statement and "NotResource" not in statement, name
        for action in as_list(statement["Action"]):
            assert isinstance(action, str), f"{name}: {action}"
            # Not only "*" and "s3:*": "s3:Get*" or "dynamodb:*Item" grant actions nobody
            # named, including ones AWS adds later.
            assert "*" not in action and "?" not in action, f"{name}: wildcard in {action}"
            assert re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9]+", action), f"{name}: {action}"


def test_no_full_access_policy_template_or_managed_policy(transformed):
    named = list(sam_policy_templates())
    assert ("CallRequestFunction", "EventBridgePutEventsPolicy") in named
    for name, policy in named:
        assert not policy.endswith("FullAccess") and "FullAccess" not in policy, (name, policy)
    for resources in (RESOURCES, transformed):
        for name, resource in resources.items():
            for arn in (resource.get("Properties") or {}).get("ManagedPolicyArns") or []:
                assert "FullAccess" not in json.dumps(arn), (name, arn)
        for name, resource in resources.items():
            if resource["Type"] == "AWS::IAM::ManagedPolicy":
                assert "FullAccess" not in json.dumps(resource["Properties"]), name


def test_end_user_messaging_send_text_message_supports_resource_level_permissions():
    # The reason it is not in STAR_ALLOWED: it is authorised on the origination identity.
    assert {"PhoneNumber", "Pool", "SenderId"} <= set(resource_types("sms-voice:SendTextMessage"))


@pytest.mark.parametrize("stage", ["template", "transformed"])
def test_a_star_resource_only_where_aws_requires_it(stage, request):
    resources = RESOURCES if stage == "template" else request.getfixturevalue("transformed")
    stars = [(n, actions) for n, actions, res in allows(resources) if "*" in res]
    assert stars  # sns:Publish to a phone number: the one exception exists, and is checked
    for name, actions in stars:
        for action in actions:
            assert action in STAR_ALLOWED or not resource_types(action), f"{name}: {action} on *"


def allow_statements_on_star(node):
    """Every YAML mapping in the template that allows something on "*" (Resource "*" or a
    list holding "*"), as parsed nodes, so each one's line is known."""
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from allow_statements_on_star(item)
    elif isinstance(node, yaml.MappingNode):
        fields = {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)}
        effect, resource = fields.get("Effect"), fields.get("Resource")
        if effect is not None and effect.value == "Allow" and resource is not None:
            values = resource.value if isinstance(resource, yaml.SequenceNode) else [resource]
            if any(isinstance(v, yaml.ScalarNode) and v.value == "*" for v in values):
                yield node, fields
        for _, value in node.value:
            yield from allow_statements_on_star(value)


def test_every_star_resource_carries_a_comment_saying_why():
    text = (ROOT / "template.yaml").read_text(encoding="utf-8")
    lines = text.splitlines()
    root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    found = list(allow_statements_on_star(root))
    for node, fields in found:
        line = node.start_mark.line  # the statement's first line ("- Effect: Allow")
        above, comment = line - 1, []
        while above >= 0 and lines[above].strip().startswith("#"):
            comment.insert(0, lines[above].strip())
            above -= 1
        why = " ".join(comment)
        assert "requires" in why, f"line {line + 1}: a * resource needs a comment saying why"
        action = fields["Action"]
        actions = action.value if isinstance(action, yaml.SequenceNode) else [action]
        for name in (a.value for a in actions):
            assert name in why, f"line {line + 1}: the comment above * must name {name}"
    # sns:Publish: written once, in SendSmsPolicy, which every function that texts attaches.
    assert len(found) == 1
    assert all("SendSmsPolicy" in attached_managed_policies(RESOURCES, f) for f in sms_senders())


def test_pass_role_is_scoped_to_the_scheduler_role():
    passes = [(n, s) for n, s in statements() if "iam:PassRole" in as_list(s["Action"])]
    assert passes
    for name, statement in passes:
        assert statement["Resource"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}, name
        assert statement["Condition"] == {
            "StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}
        }, name


def dynamodb_grants(function):
    """What a function may do on which table: {table logical id: {actions}}. A DynamoDB
    action on anything but a table's own ARN fails here, so nothing escapes the per-table
    checks (an index, a stream, a Sub-built ARN or "*")."""
    grants: dict[str, set[str]] = {}
    for name, actions, resources in allows():
        wanted = [a for a in actions if a.startswith("dynamodb:")]
        if name != function or not wanted:
            continue
        for resource in resources:
            target = resource.get("Fn::GetAtt") if isinstance(resource, dict) else None
            assert target and target[1] == "Arn", f"{function}: {wanted} on {resource}"
            assert RESOURCES[target[0]]["Type"] == "AWS::DynamoDB::Table", target
            grants.setdefault(target[0], set()).update(wanted)
    return grants


def test_the_benefits_function_only_reads_members_and_benefits_and_counts_wrong_pins():
    assert dynamodb_grants("BenefitRequestFunction") == {
        "MembersTable": {"dynamodb:GetItem"},
        "BenefitsTable": {"dynamodb:GetItem"},
        "PinAttemptsTable": {"dynamodb:GetItem", "dynamodb:UpdateItem"},
    }


def test_the_member_texter_cannot_read_members_or_benefits():
    # It gets the phone and the URL in the event; its only table is its once-only claims.
    assert dynamodb_grants("TextMemberFunction") == {
        "IdempotencyTable": {"dynamodb:PutItem", "dynamodb:DeleteItem"}
    }
    granted = {a for n, actions, _ in allows() if n == "TextMemberFunction" for a in actions}
    assert not {a for a in granted if a.startswith(("s3:", "events:", "scheduler:"))}


def test_every_function_that_texts_gets_the_sms_provider_its_identity_and_the_permission():
    from typing import get_args

    from hotline_core.settings import Settings

    senders = sms_senders()
    assert senders >= {"InviteReceiverFunction", "TellCallerFunction", "TextMemberFunction"}
    allowed = set(get_args(Settings.model_fields["sms_provider"].annotation))
    assert set(DOC["Parameters"]["SmsProvider"]["AllowedValues"]) == allowed
    assert DOC["Parameters"]["SmsProvider"]["Default"] == "sns"
    sms_actions = {"sns:Publish", "sms-voice:SendTextMessage"}
    for name in of_type("AWS::Serverless::Function"):
        granted = {a for n, actions, _ in allows() if n == name for a in actions}
        if name in senders:
            env = environment(name)
            assert env.get("SMS_PROVIDER") == {"Ref": "SmsProvider"}, name
            assert env.get("SMS_ORIGINATION_IDENTITY") == {"Ref": "SmsOriginationIdentity"}, name
            assert sms_actions <= granted, name
        else:
            assert not sms_actions & granted, f"{name} does not text anyone"


def test_send_text_message_is_scoped_to_this_account_and_region():
    scoped = [res for _, actions, res in allows() if "sms-voice:SendTextMessage" in actions]
    assert len(scoped) == len(sms_senders())
    for resources in scoped:
        assert resources == [
            {"Fn::Sub": "arn:${AWS::Partition}:sms-voice:${AWS::Region}:${AWS::AccountId}:*"}
        ]


def chosen(node, conditions):
    """`node` as CloudFormation takes it under `conditions`: each Fn::If replaced by its
    branch, AWS::NoValue dropped, and a resource whose Condition is false left out."""
    if isinstance(node, list):
        return [v for v in (chosen(i, conditions) for i in node) if v != {"Ref": "AWS::NoValue"}]
    if not isinstance(node, dict):
        return node
    if "Fn::If" in node:
        name, yes, no = node["Fn::If"]
        return chosen(yes if conditions[name] else no, conditions)
    return {
        k: chosen(v, conditions)
        for k, v in node.items()
        if not (isinstance(v, dict) and v.get("Condition") in conditions)
        or conditions[v["Condition"]]
    }


SMS_PROVIDERS = {  # SmsProvider -> the parameters it deploys with, and its one action
    "sns": ({}, "sns:Publish"),
    "end-user-messaging": (
        {
            "SmsProvider": "end-user-messaging",
            "SmsOriginationIdentity": "arn:aws:sms-voice:ap-northeast-1:123456789012:pool/pool-1",
        },
        "sms-voice:SendTextMessage",
    ),
}


def deployed_with(transformed, parameters):
    """The transformed template's resources under `parameters`, and the local runtime's
    resolution of what they hold (pseudo parameters, the parameters themselves)."""
    template = Template(ROOT / "template.yaml", parameters=parameters)
    return chosen(transformed, template.conditions), template


@pytest.mark.parametrize("provider", sorted(SMS_PROVIDERS))
def test_only_the_chosen_sms_providers_permissions_exist(transformed, provider):
    parameters, action = SMS_PROVIDERS[provider]
    resources, _ = deployed_with(transformed, parameters)
    sms_actions = {a for _, a in SMS_PROVIDERS.values()}
    granted = {a for _, actions, _ in allows(resources) for a in actions}
    assert action in granted
    assert not sms_actions - {action} & granted, f"{provider}: {sms_actions & granted}"
    # Nothing of the other provider's at all, not even a Deny.
    mentioned = json.dumps(resources)
    for other in sms_actions - {action}:
        assert other not in mentioned, f"{provider} deploys {other}"


def test_sns_publish_reaches_a_phone_number_but_no_topic_or_endpoint(transformed):
    from tests.iam_policy import Need, allowed

    resources, template = deployed_with(transformed, {})
    document = resources["SendSmsPolicy"]["Properties"]["PolicyDocument"]
    granted = [template.resolve(s, {}) for s in as_list(document["Statement"])]

    def may(resource):
        return allowed(granted, Need("SendSmsPolicy", "publish", "sns:Publish", resource))

    assert may("*")  # a phone number: Publish with PhoneNumber has no resource ARN
    for arn in (
        "arn:aws:sns:ap-northeast-1:123456789012:hotline-alarms",  # this account's topic
        "arn:aws:sns:us-east-1:210987654321:someone-elses",
        "arn:aws:sns:ap-northeast-1:123456789012:endpoint/GCM/app/0f1e",  # a push endpoint
    ):
        assert not may(arn), arn
