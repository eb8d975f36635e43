"""template.yaml: what the stack must create and what it takes from generated/ (the contact
flows, the event schemas), lint-clean as CloudFormation processes it; the event log, the event
catalogue, the custom domain and the SMS provider's parameters. Least privilege, item expiry,
wiring and alarms each have a test_template_*.py of their own."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from hotline_tools.local.template import Template, parse_template
from tests.conftest import ROOT
from tests.unit.template_doc import DOC, RESOURCES, as_list, of_type


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
    # The included flow is the file, with the ARN of the function's alias (where provisioned
    # concurrency lives, when asked for) left for Fn::Sub to fill in: SAM names the alias it
    # makes for AutoPublishAlias `<function>Alias<name>`, and its Ref is the qualified ARN.
    embedded = json.loads(contact_flow["Properties"]["Content"]["Fn::Sub"])
    assert embedded == json.loads((ROOT / "contact_flow" / f"{flow}.json").read_text("utf-8"))
    arns = {
        action["Parameters"]["LambdaFunctionARN"]
        for action in embedded["Actions"]
        if action["Type"] == "InvokeLambdaFunction"
    }
    assert RESOURCES[function]["Type"] == "AWS::Serverless::Function"
    alias = RESOURCES[function]["Properties"]["AutoPublishAlias"]
    assert arns == {f"${{{function}Alias{alias}}}"}
    # Connect may invoke that alias, and only through this instance.
    [integration] = [
        r["Properties"]
        for r in of_type("AWS::Connect::IntegrationAssociation").values()
        if r["Properties"]["IntegrationArn"] == {"Ref": f"{function}.Alias"}
    ]
    [permission] = [
        r["Properties"]
        for r in of_type("AWS::Lambda::Permission").values()
        if r["Properties"]["FunctionName"] == {"Ref": f"{function}.Alias"}
    ]
    assert permission["Principal"] == "connect.amazonaws.com"
    assert integration["IntegrationType"] == "LAMBDA_FUNCTION"


def test_provisioned_concurrency_is_a_parameter_off_by_default_on_both_connect_functions():
    parameter = DOC["Parameters"]["ConnectProvisionedConcurrency"]
    assert (parameter["Type"], parameter["Default"], parameter["MinValue"]) == ("Number", 0, 0)
    condition = DOC["Conditions"]["KeepsConnectFunctionsWarm"]
    assert condition == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ConnectProvisionedConcurrency"}, 0]}]}
    for _, function in LINES.values():
        props = RESOURCES[function]["Properties"]
        assert props["AutoPublishAlias"] == "live"
        assert props["ProvisionedConcurrencyConfig"] == {
            "Fn::If": [
                "KeepsConnectFunctionsWarm",
                {"ProvisionedConcurrentExecutions": {"Ref": "ConnectProvisionedConcurrency"}},
                {"Ref": "AWS::NoValue"},
            ]
        }


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


def test_retry_policies_are_written_once_and_every_consumer_has_them():
    """Lambda's retries and the rules' delivery retries are written once (a YAML anchor the
    other consumers name), and every consumer ends up with the same ones."""
    text = (ROOT / "template.yaml").read_text(encoding="utf-8")
    assert text.count("MaximumEventAgeInSeconds: 3600") == 1
    assert text.count("&consumer_invocations") == 1
    assert text.count("&rule_deliveries") == 1
    consumers = {
        name: resource["Properties"]
        for name, resource in of_type("AWS::Serverless::Function").items()
        if resource["Properties"]["CodeUri"] == "consumers/"
    }
    assert len(consumers) == 5
    for name, props in consumers.items():
        assert props["EventInvokeConfig"] == {
            "MaximumRetryAttempts": 2,
            "DestinationConfig": {
                "OnFailure": {
                    "Type": "SQS",
                    "Destination": {"Fn::GetAtt": ["ConsumerDeadLetterQueue", "Arn"]},
                }
            },
        }, name
        for event in props["Events"].values():
            assert event["Properties"]["RetryPolicy"] == {
                "MaximumRetryAttempts": 10,
                "MaximumEventAgeInSeconds": 3600,
            }, name


def test_the_hand_written_template_stays_under_1200_lines():
    """What a person reads: repeated blocks are anchors, generated parts live in generated/."""
    assert len((ROOT / "template.yaml").read_text(encoding="utf-8").splitlines()) < 1200
