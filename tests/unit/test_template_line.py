"""template.yaml's LINE wiring (issue 18): LINE is off without LineSecretName (no secret
permission exists, the webhook answers 404), the functions that send LINE first get the links
table and the secret's name and may only read them, the webhook's route and least privilege,
the links table like the others (on demand, TTL, PITR, encryption), and what the LINE code
writes carries the table's TTL attribute."""

from __future__ import annotations

from datetime import UTC, datetime

from botocore.exceptions import ClientError

from tests.unit.template_doc import (
    DOC,
    RESOURCES,
    allows,
    as_list,
    environment,
    line_senders,
    of_type,
    statements,
)
from tests.unit.test_template_least_privilege import dynamodb_grants
from tests.unit.test_template_ttl import RecordingDynamoDB, assert_epoch_after, ttl_attribute

SECRET_ARN = (
    "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}"
    ":secret:${LineSecretName}-??????"
)


def secret_statements(function):
    """(statement, under HasLine?) for each GetSecretValue the function's policies hold."""
    found = []
    for policy in as_list(RESOURCES[function]["Properties"].get("Policies") or []):
        if not isinstance(policy, dict) or "Statement" not in policy:
            continue
        for statement in policy["Statement"]:
            conditional = isinstance(statement, dict) and "Fn::If" in statement
            inner = statement["Fn::If"][1] if conditional else statement
            if "secretsmanager:GetSecretValue" in as_list(inner.get("Action", [])):
                found.append((inner, conditional and statement["Fn::If"][0] == "HasLine"))
    return found


def test_line_is_off_by_default_and_its_secret_is_readable_only_with_it():
    parameter = DOC["Parameters"]["LineSecretName"]
    assert parameter["Default"] == ""
    assert DOC["Conditions"]["HasLine"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "LineSecretName"}, ""]}]
    }
    readers = {
        name
        for name in of_type("AWS::Serverless::Function")
        for statement, _ in secret_statements(name)
        if "LineSecretName" in str(statement["Resource"])
    }
    assert readers == {"InviteReceiverFunction", "TellCallerFunction", "LineWebhookFunction"}
    for name in readers:
        [(statement, under_has_line)] = secret_statements(name)
        assert under_has_line, f"{name}: the LINE secret's permission must need HasLine"
        assert statement["Resource"] == {"Fn::Sub": SECRET_ARN}, name
        assert environment(name)["LINE_SECRET_NAME"] == {"Ref": "LineSecretName"}, name


def test_the_functions_that_send_line_first_only_read_the_links_table():
    assert line_senders() == {"InviteReceiverFunction", "TellCallerFunction"}
    for name in line_senders():
        assert environment(name)["LINE_TABLE_NAME"] == {"Ref": "LineLinksTable"}, name
        assert dynamodb_grants(name)["LineLinksTable"] == {"dynamodb:GetItem"}, name
    # The benefits line stays SMS: no LINE variable, no LINE permission.
    for name in (
        set(of_type("AWS::Serverless::Function")) - line_senders() - {"LineWebhookFunction"}
    ):
        env = environment(name)
        assert "LINE_SECRET_NAME" not in env and "LINE_TABLE_NAME" not in env, name
        assert "LineLinksTable" not in dynamodb_grants(name), name
        assert not secret_statements(name) or name == "BenefitRequestFunction", name


def test_the_webhook_is_a_post_route_on_the_answer_api_with_least_privilege():
    webhook = RESOURCES["LineWebhookFunction"]["Properties"]
    [route] = webhook["Events"].values()
    assert route["Type"] == "HttpApi"
    assert route["Properties"] == {
        "ApiId": {"Ref": "AnswerApi"},
        "Method": "POST",
        "Path": "/line/webhook",
    }
    assert webhook["Handler"] == "line_webhook.handler"
    assert dynamodb_grants("LineWebhookFunction") == {
        "RequestsTable": {"dynamodb:GetItem", "dynamodb:UpdateItem"},
        "LineLinksTable": {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
        },
    }
    granted = {a for n, actions, _ in allows() if n == "LineWebhookFunction" for a in actions}
    assert not {a for a in granted if a.startswith(("sns:", "sms-voice:", "scheduler:", "s3:"))}
    assert any(
        s.get("Action") == "secretsmanager:GetSecretValue"
        for n, s in statements()
        if n == "LineWebhookFunction"
    )


def test_the_links_table_is_on_demand_with_ttl_recovery_and_encryption():
    table = RESOURCES["LineLinksTable"]
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert ttl_attribute("LineLinksTable") == "expires_at"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}
    assert table["DeletionPolicy"] == "Retain"  # links are made by people, by hand
    outputs = DOC["Outputs"]
    assert outputs["LineLinksTableName"]["Value"] == {"Ref": "LineLinksTable"}
    assert "/line/webhook" in str(outputs["LineWebhookUrl"]["Value"])


def test_codes_and_wrong_code_counters_carry_the_links_tables_ttl_attribute():
    from hotline_core.adapters.line_links import LineLinks

    class NoCounterYet(RecordingDynamoDB):
        def __getattr__(self, operation):
            if operation != "update_item":
                return super().__getattr__(operation)

            def missing(**params):  # no counter yet: the update's condition fails
                self.calls.append((operation, params))
                error = {"Error": {"Code": "ConditionalCheckFailedException", "Message": "-"}}
                raise ClientError(error, "UpdateItem")

            return missing

    now = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
    db = NoCounterYet()
    links = LineLinks(db, "links", clock=lambda: now)
    links.new_code("+817033334444")
    assert links.count_wrong_code("U" + "0" * 32) == 1
    expiring = [
        params["Item"]
        for operation, params in db.calls
        if operation == "put_item" and params["Item"]["pk"]["S"].startswith(("code#", "tries#"))
    ]
    assert {item["pk"]["S"].split("#")[0] for item in expiring} == {"code", "tries"}
    attribute = ttl_attribute("LineLinksTable")
    for item in expiring:
        assert_epoch_after(item[attribute], now)
