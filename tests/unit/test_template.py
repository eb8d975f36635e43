"""template.yaml: what the stack must create, least privilege, and the embedded flows."""

from __future__ import annotations

import json
import re
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


# --- Operating it (issue 6) --------------------------------------------------------------
SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"
TRANSFORM = """
import json, os, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse
class NoPolicies:
    def load(self): return {}
os.environ.setdefault("AWS_DEFAULT_REGION", "ap-northeast-1")
doc = yaml_parse(open(sys.argv[1], encoding="utf-8").read())
for resource in doc["Resources"].values():
    props = resource.get("Properties") or {}
    for key in ("CodeUri", "ContentUri"):  # sam build's job; the transform wants S3 URIs
        if isinstance(props.get(key), str):
            props[key] = "s3://bucket/key"
json.dump(transform(doc, {}, NoPolicies()), sys.stdout)
"""


@pytest.fixture(scope="module")
def transformed():
    """The template as CloudFormation sees it after the SAM transform (SAM generates one
    dead-letter queue per EventBridgeRule event with a DeadLetterConfig)."""
    if not SAM_PYTHON.exists():
        pytest.skip("the SAM transform lives in .venv-sam (make setup)")
    result = subprocess.run(
        [str(SAM_PYTHON), "-c", TRANSFORM, str(ROOT / "template.yaml")],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)["Resources"]


def alarms():
    return of_type("AWS::CloudWatch::Alarm")


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
        props = RESOURCES[f"Function{metric}Alarm"]["Properties"]
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
    assert (props["Namespace"], props["MetricName"]) == ("AWS/SNS", "SMSMonthToDateSpentUSD")
    assert props["Threshold"] == {"Ref": "SmsMonthlySpendAlarmUsd"}
    assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert 0 < DOC["Parameters"]["SmsMonthlySpendAlarmUsd"]["Default"] < 1  # limit: USD 1


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
    [statement] = policy["Statement"]
    assert statement["Resource"] == "x"  # the group, not "*"
    assert (
        "${EventLogGroup.Arn}"
        in RESOURCES["EventLogPolicy"]["Properties"]["PolicyDocument"]["Fn::Sub"]
    )


def test_embedded_event_schemas_match_their_files():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "embed_schemas.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


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
        assert props["Type"] == "JSONSchemaDraft4", name
        assert props["RegistryName"] == {"Fn::GetAtt": [registry, "RegistryName"]}, name
        content = json.loads(props["Content"])
        Draft4Validator.check_schema(content)
        assert "$defs" not in props["Content"] and "const" not in content["definitions"], name
    real = json.loads((ROOT / "tests" / "events" / "eventbridge-call-requested.json").read_text())
    catalogue = json.loads(schemas["CallRequestedSchema"]["Properties"]["Content"])
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
