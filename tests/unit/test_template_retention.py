"""How long the stack keeps what it holds about people: every log group and queue has a
retention the template sets, the dead-letter queues the rules use are the template's own
(14 days, encrypted), and the archive keeps events for as long as a parameter says."""

from __future__ import annotations

import pytest

from tests.unit.template_doc import (  # noqa: F401 - `transformed` is a fixture
    DOC,
    RESOURCES,
    transformed,
)

FOURTEEN_DAYS = 14 * 24 * 3600


@pytest.fixture(scope="module")
def sam(request):
    """The resources after the SAM transform (template_doc's `transformed`)."""
    return request.getfixturevalue("transformed")


def parameter(name):
    return DOC["Parameters"][name]


def of_type(resources, kind):
    return {name: r for name, r in resources.items() if r["Type"] == kind}


def test_every_function_logs_to_a_group_kept_for_the_log_retention_parameter(sam):
    assert parameter("LogRetentionDays")["Default"] == 30
    functions = of_type(sam, "AWS::Lambda::Function")
    assert len(functions) >= 9
    for name, function in functions.items():
        group = (function["Properties"].get("LoggingConfig") or {}).get("LogGroup")
        assert isinstance(group, dict) and set(group) == {"Ref"}, f"{name}: no log group of ours"
        props = sam[group["Ref"]]
        assert props["Type"] == "AWS::Logs::LogGroup", name
        assert props["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
    # Written once, for every function; none picks another group (or Lambda's own).
    assert "LoggingConfig" in DOC["Globals"]["Function"]
    for name, resource in of_type(RESOURCES, "AWS::Serverless::Function").items():
        assert "LoggingConfig" not in resource["Properties"], name


def test_the_function_log_group_is_not_where_lambda_makes_its_own():
    [group] = {
        r["Properties"]["LogGroupName"]["Fn::Sub"]
        for r in of_type(RESOURCES, "AWS::Logs::LogGroup").values()
        if "${AWS::StackName}" in str(r["Properties"]["LogGroupName"])
        and r["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        and "functions" in str(r["Properties"]["LogGroupName"])
    }
    # Lambda's documentation: a custom group's name must not begin with aws/.
    assert not group.lstrip("/").startswith("aws/"), group


def test_every_log_group_of_the_stack_has_a_retention_parameter(sam):
    groups = of_type(sam, "AWS::Logs::LogGroup")
    assert len(groups) >= 3  # the functions', the event log, the answer page's access log
    for name, group in groups.items():
        retention = group["Properties"].get("RetentionInDays")
        assert isinstance(retention, dict) and retention["Ref"] in DOC["Parameters"], name


def rule_targets(resources):
    """(rule, target) for every target of every EventBridge rule, SAM's included."""
    for name, rule in of_type(resources, "AWS::Events::Rule").items():
        for target in rule["Properties"]["Targets"]:
            yield name, target


def test_every_rule_sends_what_it_cannot_deliver_to_a_queue_the_template_declares(sam):
    function_rules = [
        (rule, target)
        for rule, target in rule_targets(sam)
        if "Fn::GetAtt" in target["Arn"]
        and sam[target["Arn"]["Fn::GetAtt"][0]]["Type"] == "AWS::Lambda::Function"
    ]
    assert len(function_rules) >= 5  # the five consumers
    for rule, target in function_rules:
        queue, attribute = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"]
        assert attribute == "Arn", rule
        # Declared before SAM runs (template.yaml and what it includes), not SAM's own queue
        # with SQS's four days.
        assert RESOURCES[queue]["Type"] == "AWS::SQS::Queue", rule
        # The queue SAM made under that name before, so a deployed stack keeps its letters.
        assert queue == f"{rule}Queue", rule


def test_every_queue_of_the_stack_keeps_its_letters_14_days_encrypted(sam):
    queues = of_type(sam, "AWS::SQS::Queue")
    assert len(queues) >= 7  # the consumers', the timer's and one per rule
    for name, queue in queues.items():
        props = queue["Properties"]
        assert props.get("MessageRetentionPeriod") == FOURTEEN_DAYS, name
        assert props.get("SqsManagedSseEnabled") is True, name


def queue_policies(resources):
    """{queue logical id: [statements]} over every AWS::SQS::QueuePolicy."""
    found: dict[str, list] = {}
    for policy in of_type(resources, "AWS::SQS::QueuePolicy").values():
        for queue in policy["Properties"]["Queues"]:
            found.setdefault(queue["Ref"], []).append(policy["Properties"]["PolicyDocument"])
    return found


def test_only_its_own_rule_may_send_to_a_rules_dead_letter_queue(sam):
    policies = queue_policies(sam)
    targets = [(r, t) for r, t in rule_targets(sam) if "DeadLetterConfig" in t]
    assert targets
    for rule, target in targets:
        queue = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
        # One policy a queue: two would overwrite each other's document on SQS.
        [document] = policies.get(queue, [None])
        assert document is not None, f"{rule}: EventBridge may not send to {queue}"
        [statement] = document["Statement"]
        assert statement["Effect"] == "Allow"
        assert statement["Principal"] == {"Service": "events.amazonaws.com"}
        assert statement["Action"] == "sqs:SendMessage"
        assert statement["Resource"] == {"Fn::GetAtt": [queue, "Arn"]}
        assert statement["Condition"] == {
            "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule, "Arn"]}}
        }


def test_the_archive_keeps_events_as_long_as_its_parameter_says():
    [archive] = of_type(RESOURCES, "AWS::Events::Archive").values()
    assert archive["Properties"]["RetentionDays"] == {"Ref": "ArchiveRetentionDays"}
    spec = parameter("ArchiveRetentionDays")
    assert spec["Type"] == "Number" and spec["Default"] == 90
    assert spec["MinValue"] >= 1  # 0 would keep every event for ever


@pytest.mark.parametrize("name", ["LogRetentionDays", "EventLogRetentionDays"])
def test_log_retentions_are_values_cloudwatch_logs_accepts(name):
    allowed = parameter(name)["AllowedValues"]
    assert parameter(name)["Default"] in allowed
    assert set(allowed) <= {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731}


def test_the_readmes_personal_data_table_says_what_the_code_and_the_template_do():
    from hotline_core.adapters.idempotency import RECORD_LIFETIME_SECONDS
    from hotline_core.benefits import FAILURE_WINDOW, LOCKOUT
    from hotline_core.requests import LINK_LIFETIME, REQUEST_RETENTION
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("### Where personal data lives")
    section = readme[start : readme.index("\n#", start + 1)]
    rows = {
        line.split("|")[1].strip(): line for line in section.splitlines() if line.startswith("| ")
    }

    def row(where):
        [found] = [line for name, line in rows.items() if name.startswith(where)]
        return found

    assert f"TTL {REQUEST_RETENTION.days} days after the call" in row("requests table")
    assert f"works {int(LINK_LIFETIME.total_seconds() // 3600)} hours" in row("requests table")
    assert f"TTL {RECORD_LIFETIME_SECONDS // 86400} days" in row("once-only claims")
    assert FAILURE_WINDOW.total_seconds() == LOCKOUT.total_seconds() == 3600
    assert "1 hour each" in row("PIN attempts")
    assert f"{FOURTEEN_DAYS // 86400} days, encrypted" in row("dead-letter queues")
    for where, name in [
        ("bus archive", "ArchiveRetentionDays"),
        ("function logs", "LogRetentionDays"),
        ("answer page access log", "LogRetentionDays"),
        ("event log", "EventLogRetentionDays"),
    ]:
        assert f"`{name}` (default {parameter(name)['Default']})" in row(where), where
