"""template.yaml: what the stack must create, least privilege, and what it takes from generated/
(the contact flows, the event schemas, the alarms that share one shape)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import yaml

from hotline_tools.local.template import (
    REGION,
    Template,
    TemplateError,
    load_template,
    nested_template,
    parse_template,
)
from tests.conftest import ROOT

# As CloudFormation processes it before SAM: every AWS::Include resolved.
DOC = load_template(ROOT / "template.yaml")
RESOURCES = DOC["Resources"]
ALARMS_APP = RESOURCES["Alarms"]
ALARMS = nested_template(ROOT, ALARMS_APP)


def of_type(kind):
    return {name: r for name, r in RESOURCES.items() if r["Type"] == kind}


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


class RecordingDynamoDB:
    """Stands in for the DynamoDB client: records every write, answers as an empty table."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, operation):
        def call(**params):
            self.calls.append((operation, params))
            if operation == "update_item":
                return {"Attributes": {}}
            return {}

        return call


def ttl_attribute(table):
    spec = RESOURCES[table]["Properties"]["TimeToLiveSpecification"]
    assert spec["Enabled"] is True, table
    return spec["AttributeName"]


def set_attributes(update_expression):
    """The attribute names an UpdateExpression's SET clause assigns."""
    clause = re.search(r"\bSET\s+(.*?)(?:\s+\b(?:REMOVE|ADD|DELETE)\b|$)", update_expression)
    assert clause, update_expression
    return {part.split("=")[0].strip() for part in clause.group(1).split(",")}


def assert_epoch_after(value, moment):
    # TTL only deletes an item whose attribute is a Number of epoch seconds.
    assert set(value) == {"N"}, value
    assert int(value["N"]) > int(moment.timestamp()), value


# The TTL attribute names are string literals in the adapters (no constant to import): these
# tests run the adapters' own writes and look for the template's name in them.
def test_every_item_the_request_store_writes_carries_the_tables_ttl_attribute():
    from datetime import UTC, datetime, timedelta

    from hotline_core.adapters.store import DynamoRequestStore
    from hotline_core.events import Party
    from hotline_core.requests import CallRequest, new_link

    now = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
    request = CallRequest(
        request_id="c0ffee00-0000-4000-8000-000000000001",
        caller=Party(name="タクミ", phone="+819011112222"),
        receiver=Party(name="ミズキ", phone="+817033334444"),
        hotline_number="+815012340001",
        requested_at=now,
        answer_by=now + timedelta(minutes=2),
    )
    db = RecordingDynamoDB()

    DynamoRequestStore(db, "requests").create(request, new_link(now))

    [(operation, params)] = db.calls
    assert operation == "transact_write_items"
    written = [i["Put"]["Item"] for i in params["TransactItems"] if "Put" in i]
    assert len(written) == 3  # the pointer, the request, the pair item
    ttl = ttl_attribute("RequestsTable")
    for item in written:
        assert ttl in item, (ttl, sorted(item))
        assert_epoch_after(item[ttl], request.answer_by)


def test_the_wrong_pin_record_carries_the_attempts_tables_ttl_attribute():
    from datetime import UTC, datetime, timedelta

    from hotline_core.adapters.benefits_store import DynamoAttemptGuard

    now = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
    db = RecordingDynamoDB()
    guard = DynamoAttemptGuard(db, "attempts")

    guard.record_failure(
        "+819011112222",
        now,
        window=timedelta(minutes=15),
        limit=3,
        lockout=timedelta(hours=1),
    )

    [params] = [p for op, p in db.calls if op == "update_item"]
    ttl = ttl_attribute("PinAttemptsTable")
    assert ttl in set_attributes(params["UpdateExpression"]), params["UpdateExpression"]
    placeholder = re.search(rf"\b{ttl}\s*=\s*(:\w+)", params["UpdateExpression"]).group(1)
    assert_epoch_after(params["ExpressionAttributeValues"][placeholder], now)


def test_every_once_only_claim_carries_the_idempotency_tables_ttl_attribute():
    from datetime import UTC, datetime

    from hotline_core.adapters.idempotency import OnceOnly

    now = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
    db = RecordingDynamoDB()

    OnceOnly(db, "claims", clock=lambda: now).do("invite#r1", lambda: None)

    [params] = [p for op, p in db.calls if op == "put_item"]
    assert_epoch_after(params["Item"][ttl_attribute("IdempotencyTable")], now)


def asynchronously_invoked_functions():
    """Functions nobody waits for: an EventBridge rule's targets, and what Scheduler invokes
    (the functions SchedulerRole may invoke). Their failures surface nowhere but OnFailure."""
    functions = of_type("AWS::Serverless::Function")
    by_rule = {
        name
        for name, r in functions.items()
        if any(
            e["Type"] == "EventBridgeRule" for e in (r["Properties"].get("Events") or {}).values()
        )
    }
    scheduled = {
        res["Fn::GetAtt"][0]
        for name, actions, resources in allows()
        if name == "SchedulerRole" and "lambda:InvokeFunction" in actions
        for res in resources
    }
    return by_rule | scheduled


def test_every_asynchronously_invoked_function_sends_its_failures_to_a_watched_queue():
    invoked = asynchronously_invoked_functions()
    consumers = {
        n
        for n, r in of_type("AWS::Serverless::Function").items()
        if r["Properties"]["CodeUri"] == "consumers/"
    }
    assert invoked >= consumers | {"AnswerTimerFunction"}
    assert len(consumers) >= 5
    watched = {
        d["Value"]["Fn::GetAtt"][0]
        for a in alarms().values()
        if a["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
        for d in a["Properties"]["Dimensions"]
        if d["Name"] == "QueueName"
    }
    for name in sorted(invoked):
        config = RESOURCES[name]["Properties"].get("EventInvokeConfig") or {}
        on_failure = (config.get("DestinationConfig") or {}).get("OnFailure") or {}
        assert on_failure.get("Type") == "SQS", f"{name}: no OnFailure queue"
        queue = on_failure["Destination"]["Fn::GetAtt"]
        assert queue[1] == "Arn" and RESOURCES[queue[0]]["Type"] == "AWS::SQS::Queue", name
        assert queue[0] in watched, f"{name}: nothing alarms on {queue[0]}"
    timer = RESOURCES["AnswerTimerFunction"]["Properties"]["EventInvokeConfig"]
    assert timer["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["TimerDeadLetterQueue", "Arn"]
    }


# --- Wiring the template must keep ---------------------------------------------------------
def handler_source(function):
    props = RESOURCES[function]["Properties"]
    module = props["Handler"].rsplit(".", 1)[0]
    return (ROOT / props["CodeUri"] / f"{module.replace('.', '/')}.py").read_text("utf-8")


def sms_senders():
    """Functions whose handler sends an SMS (read from the code, not from the template)."""
    return {
        name
        for name in of_type("AWS::Serverless::Function")
        if re.search(r"deps\(\)\.(once_only_)?sms\b", handler_source(name))
    }


def environment(function):
    variables = dict(DOC["Globals"]["Function"]["Environment"]["Variables"])
    props = RESOURCES[function]["Properties"]
    variables.update((props.get("Environment") or {}).get("Variables") or {})
    return variables


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


def test_every_consumer_gets_allow_replay_side_effects_off_by_default():
    parameter = DOC["Parameters"]["AllowReplaySideEffects"]
    assert parameter["Default"] == "false" and set(parameter["AllowedValues"]) == {"true", "false"}
    consumers = [
        n
        for n, r in of_type("AWS::Serverless::Function").items()
        if r["Properties"]["CodeUri"] == "consumers/"
    ]
    assert len(consumers) >= 5
    for name in consumers:
        assert environment(name).get("ALLOW_REPLAY_SIDE_EFFECTS") == {
            "Ref": "AllowReplaySideEffects"
        }, name


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


def test_a_connect_instance_in_another_region_is_refused():
    def arn(region):
        uuid = "0" * 8 + "-0000-0000-0000-" + "0" * 12
        return f"arn:aws:connect:{region}:123456789012:instance/{uuid}"

    here = Template(ROOT / "template.yaml", parameters={"ConnectInstanceArn": arn(REGION)})
    elsewhere = Template(
        ROOT / "template.yaml", parameters={"ConnectInstanceArn": arn("us-east-1")}
    )
    assert Template(ROOT / "template.yaml").conditions["ConnectInstanceIsInThisRegion"]
    assert here.conditions["ConnectInstanceIsInThisRegion"]
    assert not elsewhere.conditions["ConnectInstanceIsInThisRegion"]
    # The first Connect resource resolves the instance only when it is this region's; else
    # resolving it fails, as CloudFormation fails the deploy, before anything is created.
    guarded = RESOURCES["CallRequestIntegration"]["Properties"]["InstanceId"]
    assert here.resolve(guarded, {}) == arn(REGION)
    with pytest.raises(TemplateError, match="Fn::Select cannot select nonexistent value"):
        elsewhere.resolve(guarded, {})
    # Rules cannot read inside a parameter: the refusal is not one (and is not claimed to be).
    assert "ConnectInstanceArn" not in json.dumps(DOC["Rules"])


def test_execute_api_is_off_exactly_when_the_link_is_on_a_custom_domain(transformed):
    disabled = {"Fn::If": ["HasCustomDomain", True, False]}
    assert RESOURCES["AnswerApi"]["Properties"]["DisableExecuteApiEndpoint"] == disabled
    # SAM writes it into the API's OpenAPI body, where CloudFormation resolves it.
    [api] = [r for r in transformed.values() if r["Type"] == "AWS::ApiGatewayV2::Api"]
    [server] = api["Properties"]["Body"]["servers"]
    endpoint = server["x-amazon-apigateway-endpoint-configuration"]
    assert endpoint["disableExecuteApiEndpoint"] == disabled
    # With a custom domain nothing points at execute-api: the link and the output.
    cert = "arn:aws:acm:ap-northeast-1:123456789012:certificate/" + "0" * 8
    domain = {"CustomDomainName": "h.example.jp", "CustomDomainCertificateArn": cert}
    for parameters in ({}, domain):
        template = Template(ROOT / "template.yaml", parameters=parameters)
        refs = {"AnswerApi": {"Ref": "abcdefghij"}}
        link = environment("CallRequestFunction")["LINK_BASE_URL"]
        shown = [
            template.resolve(link, refs),
            template.resolve(DOC["Outputs"]["AnswerApiUrl"]["Value"], refs),
        ]
        on_execute_api = ["execute-api" in url for url in shown]
        assert on_execute_api == [not parameters] * 2, (parameters, shown)


# What the answer page's access log may hold: never the path (the link's token is in it) and
# nothing that says who tapped (the source IP).
ACCESS_LOG_VARIABLES = {
    "$context.requestId",
    "$context.requestTime",
    "$context.routeKey",  # the route's template: "GET /a/{token}"
    "$context.status",
    "$context.responseLength",
    "$context.responseLatency",
    "$context.integrationStatus",
    "$context.integrationLatency",
}


def test_the_answer_pages_access_log_never_holds_the_link_token(transformed):
    [stage] = [r for r in transformed.values() if r["Type"] == "AWS::ApiGatewayV2::Stage"]
    settings = stage["Properties"]["AccessLogSettings"]
    group = settings["DestinationArn"]["Fn::GetAtt"][0]
    assert transformed[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    text = settings["Format"]
    record = json.loads(text)  # one JSON object a request
    used = set(re.findall(r"\$context\.[A-Za-z.]+", text))
    assert "$context.routeKey" in used and "$context.requestId" in used
    assert used <= ACCESS_LOG_VARIABLES, used - ACCESS_LOG_VARIABLES
    assert all(re.fullmatch(r"\$context\.[A-Za-z.]+", v) for v in record.values())
    # The routes it names are templates, the token a placeholder.
    paths = {
        e["Properties"]["Path"]
        for r in of_type("AWS::Serverless::Function").values()
        for e in (r["Properties"].get("Events") or {}).values()
        if e["Type"] == "HttpApi"
    }
    assert paths == {"/a/{token}"}


def test_the_http_api_stage_is_throttled(transformed):
    apis = of_type("AWS::Serverless::HttpApi")
    assert apis
    stages = [r for r in transformed.values() if r["Type"] == "AWS::ApiGatewayV2::Stage"]
    assert len(stages) == len(apis)
    # The template's limits, and what SAM hands CloudFormation for the stage.
    for where, props in [
        *((n, a["Properties"]) for n, a in apis.items()),
        *(("stage", s["Properties"]) for s in stages),
    ]:
        settings = props.get("DefaultRouteSettings") or {}
        assert settings.get("ThrottlingBurstLimit", 0) > 0, where
        assert settings.get("ThrottlingRateLimit", 0) > 0, where


def flow_lambda_invocations():
    """(flow, function, InvocationTimeLimitSeconds) for every Lambda a contact flow invokes."""
    for path in sorted((ROOT / "contact_flow").glob("*.json")):
        flow = json.loads(path.read_text(encoding="utf-8"))
        for action in flow["Actions"]:
            if action["Type"] == "InvokeLambdaFunction":
                params = action["Parameters"]
                [function] = re.fullmatch(r"\$\{(\w+)\.Arn\}", params["LambdaFunctionARN"]).groups()
                yield path.stem, function, int(params["InvocationTimeLimitSeconds"])


def test_a_function_a_flow_invokes_times_out_before_the_flow_gives_up_on_it():
    invoked = list(flow_lambda_invocations())
    assert {f for _, f, _ in invoked} >= {"CallRequestFunction", "BenefitRequestFunction"}
    for flow, function, limit in invoked:
        timeout = RESOURCES[function]["Properties"].get(
            "Timeout", DOC["Globals"]["Function"]["Timeout"]
        )
        assert timeout < limit, f"{flow}: {function} Timeout {timeout} >= {limit} s"
        assert limit <= 8  # Connect's own ceiling for a synchronous Lambda


def test_connect_resources_exist_only_with_an_instance_and_cover_every_invoked_function():
    for kind in ("AWS::Connect::ContactFlow", "AWS::Connect::IntegrationAssociation"):
        assert of_type(kind), kind
        for name, resource in of_type(kind).items():
            assert resource.get("Condition") == "HasConnect", name
    connect = {
        n: p
        for n, p in of_type("AWS::Lambda::Permission").items()
        if p["Properties"]["Principal"] == "connect.amazonaws.com"
    }
    assert connect
    for name, permission in connect.items():
        assert permission.get("Condition") == "HasConnect", name
        assert permission["Properties"]["SourceArn"] == {"Ref": "ConnectInstanceArn"}, name
    invoked = {f for _, f, _ in flow_lambda_invocations()}
    permitted = {p["Properties"]["FunctionName"]["Fn::GetAtt"][0] for p in connect.values()}
    associated = {
        r["Properties"]["IntegrationArn"]["Fn::GetAtt"][0]
        for r in of_type("AWS::Connect::IntegrationAssociation").values()
    }
    assert invoked <= permitted and invoked <= associated
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


def test_generated_is_what_scripts_generate_writes():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def included(resource, prop):
    """Where template.yaml, as written, takes a resource's property from: the Location of its
    AWS::Include, or None when the property is written in the template itself."""
    raw = parse_template(ROOT / "template.yaml")["Resources"][resource]["Properties"][prop]
    transform = raw.get("Fn::Transform") if isinstance(raw, dict) else None
    if not transform or transform["Name"] != "AWS::Include":
        return None
    return transform["Parameters"]["Location"]


def test_the_template_cloudformation_processes_is_lint_clean(tmp_path):
    """cfn-lint reads template.yaml as written and cannot see into an AWS::Include: the
    template with every include resolved (the flows' Fn::Sub, the schemas' text) is linted
    here, as CloudFormation will get it."""
    processed = tmp_path / "template.json"
    processed.write_text(json.dumps(DOC), encoding="utf-8")
    cfn_lint = ROOT / ".venv-sam" / "bin" / "cfn-lint"
    assert cfn_lint.exists(), "cfn-lint lives in .venv-sam: run `make setup`"
    result = subprocess.run(
        [str(cfn_lint), str(processed)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


LINES = {  # contact flow -> (its AWS::Connect::ContactFlow resource, the Lambda it invokes)
    "hotline": ("HotlineContactFlow", "CallRequestFunction"),
    "benefits": ("BenefitsContactFlow", "BenefitRequestFunction"),
}


def test_every_contact_flow_file_is_a_line_checked_below():
    assert {p.stem for p in (ROOT / "contact_flow").glob("*.json")} == set(LINES)


@pytest.mark.parametrize("flow", sorted(LINES))
def test_each_line_has_a_contact_flow_resource_with_the_lambda_substituted(flow):
    resource, function = LINES[flow]
    assert included(resource, "Content") == f"generated/contact_flow/{flow}.yaml"
    contact_flow = RESOURCES[resource]
    assert contact_flow["Type"] == "AWS::Connect::ContactFlow"
    # The included flow is the file, with the function's ARN left for Fn::Sub to fill in.
    embedded = json.loads(contact_flow["Properties"]["Content"]["Fn::Sub"])
    assert embedded == json.loads((ROOT / "contact_flow" / f"{flow}.json").read_text("utf-8"))
    arns = {
        action["Parameters"]["LambdaFunctionARN"]
        for action in embedded["Actions"]
        if action["Type"] == "InvokeLambdaFunction"
    }
    assert arns == {f"${{{function}.Arn}}"}
    assert RESOURCES[function]["Type"] == "AWS::Serverless::Function"


# --- Operating it (issue 6) --------------------------------------------------------------
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


def test_the_alarms_application_is_passed_what_it_declares_and_the_stacks_name():
    assert ALARMS_APP["Properties"]["Location"] == "generated/alarms.yaml"
    passed = ALARMS_APP["Properties"]["Parameters"]
    assert set(passed) == set(ALARMS["Parameters"])
    assert passed["StackName"] == {"Ref": "AWS::StackName"}
    assert passed["AlarmTopic"] == {"Ref": "AlarmTopic"}
    # Only alarms: nothing in it the local runtime would have to run.
    assert {r["Type"] for r in ALARMS["Resources"].values()} == {"AWS::CloudWatch::Alarm"}


def test_every_dead_letter_alarm_names_the_commands_an_operator_runs():
    depth = {
        name: alarm
        for name, alarm in alarms().items()
        if alarm["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
    }
    assert len(depth) >= 7
    for name, alarm in depth.items():
        description = alarm["Properties"]["AlarmDescription"]["Fn::Sub"]
        queue = alarm["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        assert description.startswith(f"Dead letters in {queue}: "), name
        # ${StackName} is the hotline stack's name: the nested stack has a name of its own.
        assert "`hotline dead-letters list --stack ${StackName}`" in description, name
        assert "`hotline dead-letters redrive --stack ${StackName} --all`" in description, name
        assert len(description) <= 1024, name  # CloudWatch's limit


def test_every_dead_letter_queue_has_a_depth_alarm_including_sams_generated_ones(transformed):
    queues = {n for n, r in transformed.items() if r["Type"] == "AWS::SQS::Queue"}
    assert {"ConsumerDeadLetterQueue", "TimerDeadLetterQueue"} < queues
    assert "InviteReceiverFunctionCallRequestedQueue" in queues  # generated by SAM
    watched = {
        d["Value"]["Fn::GetAtt"][0]
        for a in alarms().values()
        if a["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
        for d in a["Properties"]["Dimensions"]
    }
    assert watched == queues


def test_errors_and_throttles_alarms_cover_every_function(transformed):
    functions = {n for n, r in transformed.items() if r["Type"] == "AWS::Lambda::Function"}
    for metric in ("Errors", "Throttles"):
        props = alarms()[f"Function{metric}Alarm"]["Properties"]
        stats = [m["MetricStat"]["Metric"] for m in props["Metrics"] if "MetricStat" in m]
        assert {s["MetricName"] for s in stats} == {metric}
        covered = {s["Dimensions"][0]["Value"]["Ref"] for s in stats}
        assert covered == functions, metric
        assert len(props["Metrics"]) <= 11  # CloudWatch: at most 10 metrics in an alarm


def test_alarms_treat_missing_data_as_fine_and_notify_the_topic():
    assert alarms()
    for name, alarm in alarms().items():
        props = alarm["Properties"]
        assert props["TreatMissingData"] == "notBreaching", name
        assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
    subscription = RESOURCES["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert Template(ROOT / "template.yaml").conditions["HasAlarmEmail"] is False


def test_sms_spend_alarm_fires_before_the_accounts_limit():
    props = RESOURCES["SmsSpendAlarm"]["Properties"]
    # The spend metric of the provider that sends: each reports its own.
    assert DOC["Conditions"]["UseEndUserMessaging"] == {
        "Fn::Equals": [{"Ref": "SmsProvider"}, "end-user-messaging"]
    }
    assert props["Namespace"] == {"Fn::If": ["UseEndUserMessaging", "AWS/SMSVoice", "AWS/SNS"]}
    assert props["MetricName"] == {
        "Fn::If": ["UseEndUserMessaging", "TextMessageMonthlySpend", "SMSMonthToDateSpentUSD"]
    }
    assert props["Threshold"] == {"Ref": "SmsMonthlySpendAlarmUsd"}
    assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert 0 < DOC["Parameters"]["SmsMonthlySpendAlarmUsd"]["Default"] < 1  # limit: USD 1


def code_metric_alarm(metric):
    """The alarm on one of the code's own metrics (namespace and service as the functions'
    Powertools settings say: the EMF default dimension)."""
    env = DOC["Globals"]["Function"]["Environment"]["Variables"]
    [alarm] = [
        a["Properties"]
        for a in alarms().values()
        if a["Properties"].get("MetricName") == metric
        and a["Properties"].get("Namespace") == env["POWERTOOLS_METRICS_NAMESPACE"]
    ]
    assert alarm["Dimensions"] == [{"Name": "service", "Value": env["POWERTOOLS_SERVICE_NAME"]}]
    assert alarm["Statistic"] == "Sum"
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    return alarm


def test_the_answer_pages_503_raises_an_alarm_the_function_errors_alarm_never_would():
    # The page is the function's answer, not its error: only the metric sees it.
    alarm = code_metric_alarm("AnswerPageFailures")
    assert alarm["Threshold"] == 1 and alarm["Period"] == 300


@pytest.mark.parametrize("metric", ["HotlinePinFailures", "PinFailures"])  # hotline, benefits
def test_wrong_pins_on_either_line_raise_an_alarm_at_an_hourly_threshold(metric):
    alarm = code_metric_alarm(metric)
    assert alarm["Period"] == 3600
    assert alarm["Threshold"] == {"Ref": "PinFailuresAlarmPerHour"}
    spec = DOC["Parameters"]["PinFailuresAlarmPerHour"]
    assert spec["Type"] == "Number" and spec["Default"] >= spec["MinValue"] >= 1


def emitted(metric):
    """Whether the code names `metric` (a metric is always a string literal there)."""
    sources = [ROOT / "producers", ROOT / "consumers", ROOT / "core" / "hotline_core"]
    return any(f'"{metric}"' in p.read_text("utf-8") for s in sources for p in s.rglob("*.py"))


@pytest.mark.parametrize(
    "metric",
    [
        "SmsFailed",
        "HotlinePinFailures",
        "PinFailures",
        "AnswerPageFailures",
    ],
)
def test_every_alarm_on_the_codes_metrics_watches_a_metric_the_code_emits(metric):
    code_metric_alarm(metric)
    assert emitted(metric), f"nothing emits {metric}: its alarm would never fire"


def test_contact_flow_errors_raise_an_alarm_only_with_a_connect_instance():
    alarm = ALARMS["Resources"]["ContactFlowErrorsAlarm"]
    # Its own copy of the template's condition, on the instance the template is given.
    assert alarm["Condition"] == "HasConnect"
    assert ALARMS["Conditions"]["HasConnect"] == DOC["Conditions"]["HasConnect"]
    assert ALARMS_APP["Properties"]["Parameters"]["ConnectInstanceArn"] == {
        "Ref": "ConnectInstanceArn"
    }
    assert Template(ROOT / "template.yaml").conditions["HasConnect"] is False
    props = alarm["Properties"]
    stats = [m["MetricStat"] for m in props["Metrics"] if "MetricStat" in m]
    assert [m["Expression"] for m in props["Metrics"] if "Expression" in m] == ["SUM(METRICS())"]
    flows = {
        r["Properties"]["Name"]["Fn::Sub"].replace("${AWS::StackName}", "${StackName}")
        for r in of_type("AWS::Connect::ContactFlow").values()
    }
    watched = set()
    for stat in stats:
        metric = stat["Metric"]
        assert metric["Namespace"] == "AWS/Connect"
        dimensions = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        assert dimensions["MetricGroup"] == "ContactFlow"
        # The instance id: what follows "instance/" in the ARN.
        assert dimensions["InstanceId"] == {
            "Fn::Select": [1, {"Fn::Split": ["/", {"Ref": "ConnectInstanceArn"}]}]
        }
        watched.add((metric["MetricName"], dimensions["ContactFlowName"]["Fn::Sub"]))
    assert watched == {
        (metric, flow)
        for metric in ("ContactFlowErrors", "ContactFlowFatalErrors")
        for flow in flows
    }
    assert ALARMS_APP["Properties"]["Parameters"]["StackName"] == {"Ref": "AWS::StackName"}


def test_dashboard_body_is_json_naming_only_what_the_template_has(transformed):
    body = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    names = set(re.findall(r"\$\{([^}]+)\}", body))
    known = set(transformed) | set(DOC["Parameters"]) | {"AWS::Region", "AWS::StackName"}
    for name in names:
        assert name.split(".")[0] in known, name
    dashboard = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))
    shown = {m[1] for w in dashboard["widgets"] for m in w["properties"].get("metrics", [])}
    for metric in ("Calls", "Accepted", "AnswerTimeSeconds", "SmsSent", "SmsFailed", "Lockouts"):
        assert metric in shown


def test_the_event_log_catches_every_event_without_phone_numbers():
    rule = RESOURCES["EventLogRule"]["Properties"]
    assert rule["EventPattern"] == {"source": [{"prefix": ""}]}
    assert rule["EventBusName"] == {"Ref": "EventBus"}
    [target] = rule["Targets"]
    assert "${EventLogGroup}" in target["Arn"]["Fn::Sub"]
    paths = target["InputTransformer"]["InputPathsMap"].values()
    assert not [p for p in paths if p in ("$.detail", "$") or "caller" in p or "phone" in p]
    group = RESOURCES["EventLogGroup"]["Properties"]
    assert group["LogGroupName"] == {"Fn::Sub": "/aws/events/${AWS::StackName}-hotline"}
    assert group["RetentionInDays"]
    policy = json.loads(
        re.sub(
            r"\$\{[^}]+\}",
            "x",
            RESOURCES["EventLogPolicy"]["Properties"]["PolicyDocument"]["Fn::Sub"],
        )
    )
    statements = policy["Statement"]
    granted = {a for st in statements for a in as_list(st["Action"])}
    assert granted == {"logs:CreateLogStream", "logs:PutLogEvents"}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert statement["Resource"] == "x"  # the group, not "*"
    # Only this rule may write events (CreateLogStream carries no source ARN to condition).
    [put] = [st for st in statements if "logs:PutLogEvents" in as_list(st["Action"])]
    assert put["Condition"] == {"ArnEquals": {"aws:SourceArn": "x"}}
    document = RESOURCES["EventLogPolicy"]["Properties"]["PolicyDocument"]["Fn::Sub"]
    assert document.count("${EventLogGroup.Arn}") == len(statements)
    assert '"aws:SourceArn": "${EventLogRule.Arn}"' in document


def schema_text(props):
    """An EventSchemas::Schema's Content: the included Fn::Sub, with nothing substituted."""
    return props["Content"]["Fn::Sub"].replace("${!", "${")


def test_one_catalogue_schema_per_event_valid_draft4_accepting_a_real_event():
    from jsonschema import Draft4Validator

    schemas = of_type("AWS::EventSchemas::Schema")
    files = {p.stem for p in (ROOT / "schemas").glob("*.json")}
    assert {s["Properties"]["SchemaName"] for s in schemas.values()} == {
        f"hotline@{name}" for name in files
    }
    registry = next(iter(of_type("AWS::EventSchemas::Registry")))
    for name, schema in schemas.items():
        props = schema["Properties"]
        event = props["SchemaName"].removeprefix("hotline@")
        assert included(name, "Content") == f"generated/schemas/{event}.yaml", name
        assert props["Type"] == "JSONSchemaDraft4", name
        assert props["RegistryName"] == {"Fn::GetAtt": [registry, "RegistryName"]}, name
        content = json.loads(schema_text(props))
        Draft4Validator.check_schema(content)
        assert "$defs" not in schema_text(props) and "const" not in content["definitions"], name
    real = json.loads((ROOT / "tests" / "events" / "eventbridge-call-requested.json").read_text())
    catalogue = json.loads(schema_text(schemas["CallRequestedSchema"]["Properties"]))
    Draft4Validator(catalogue).validate(real)
    wrong = dict(real, **{"detail-type": "Accepted"})
    assert not Draft4Validator(catalogue).is_valid(wrong)


def test_custom_domain_resources_exist_only_with_a_domain_and_a_certificate():
    for name in ("AnswerDomain", "AnswerDomainMapping"):
        assert RESOURCES[name]["Condition"] == "HasCustomDomain", name
    assert RESOURCES["AnswerDomainMapping"]["Properties"]["ApiId"] == {"Ref": "AnswerApi"}
    assert DOC["Outputs"]["CustomDomainTarget"]["Condition"] == "HasCustomDomain"
    assert Template(ROOT / "template.yaml").conditions["HasCustomDomain"] is False
    cert = "arn:aws:acm:ap-northeast-1:123456789012:certificate/" + "0" * 8
    domain = {"CustomDomainName": "h.example.jp", "CustomDomainCertificateArn": cert}
    assert Template(ROOT / "template.yaml", parameters=domain).conditions["HasCustomDomain"]
    link = RESOURCES["CallRequestFunction"]["Properties"]["Environment"]["Variables"]
    assert "${CustomDomainName}" in json.dumps(link["LINK_BASE_URL"])


def test_end_user_messaging_cannot_deploy_without_an_origination_identity():
    # SendTextMessage is scoped to the account's identities: the stack refuses the parameters
    # that would deploy a sender with none to send from.
    rule = DOC["Rules"]["EndUserMessagingNeedsAnOriginationIdentity"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "SmsProvider"}, "end-user-messaging"]}
    [assertion] = rule["Assertions"]
    assert assertion["Assert"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "SmsOriginationIdentity"}, ""]}]
    }
    assert "SmsOriginationIdentity" in assertion["AssertDescription"]
