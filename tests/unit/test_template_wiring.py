"""Wiring template.yaml must keep: every asynchronously invoked function sends its failures to a
watched queue, the consumers' replay setting, Connect only with an instance in this region,
the HTTP API's endpoint, access log and throttling, and Lambda timeouts inside the flows'
time limits."""

from __future__ import annotations

import json
import re

import pytest

from hotline_tools.local.template import REGION, Template, TemplateError
from tests.conftest import ROOT
from tests.unit import template_doc
from tests.unit.template_doc import DOC, RESOURCES, alarms, allows, environment, of_type

# Shared fixtures: pytest finds a fixture by its name in the test module.
transformed = template_doc.transformed


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
    # The LINE webhook's path holds nothing personal (what LINE posts is in its body).
    assert paths == {"/a/{token}", "/line/webhook"}


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
                # The function's alias (SAM's `<function>Alias<name>` for AutoPublishAlias).
                [function, alias] = re.fullmatch(
                    r"\$\{(\w+)Alias(\w+)\}", params["LambdaFunctionARN"]
                ).groups()
                assert RESOURCES[function]["Properties"]["AutoPublishAlias"] == alias
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
    # Each names the alias the flows invoke (`!Ref <function>.Alias`).
    permitted = {
        p["Properties"]["FunctionName"]["Ref"].removesuffix(".Alias") for p in connect.values()
    }
    associated = {
        r["Properties"]["IntegrationArn"]["Ref"].removesuffix(".Alias")
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
