"""`hotline doctor --stack`: dead letters, alarms, function errors, alarm subscriptions."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import boto3

from tests.integration import doctor_stack
from tests.integration.doctor_stack import (
    STACK,
    World,
    connect_answers,
    lines,
    sns_production,
)

# The shared fixtures: pytest finds a fixture by its name in the test module.
wide = doctor_stack.wide
aws = doctor_stack.aws
world = doctor_stack.world


# --- dead letters, alarms, errors ------------------------------------------------------------
def test_dead_letters_fail_naming_the_commands_that_list_and_redrive_them(world: World) -> None:
    sns_production(world)
    connect_answers(world)
    sqs = boto3.client("sqs")
    for body in ("{}", "{}"):
        sqs.send_message(QueueUrl=world.resources["TimerDeadLetterQueue"], MessageBody=body)

    result = world.run()

    assert result.exit_code == 1
    assert lines(result.output)["dead letters in TimerDeadLetterQueue"] == (
        "✗",
        "2 dead letters",
        f"look at them: hotline dead-letters list --stack {STACK}; fix the cause; then "
        f"hotline dead-letters redrive --stack {STACK} --all",
    )
    assert "dead letters in ConsumerDeadLetterQueue" not in lines(result.output)


def test_an_alarm_in_alarm_fails_with_what_it_says(world: World) -> None:
    sns_production(world)
    connect_answers(world)
    name = f"{STACK}-ConsumerDeadLetterQueueAlarm-X1Y2"
    boto3.client("cloudwatch").set_alarm_state(
        AlarmName=name, StateValue="ALARM", StateReason="Threshold Crossed: 1 datapoint [3.0]"
    )

    result = world.run()

    assert result.exit_code == 1
    symbol, detail, fix = lines(result.output)[f"alarm {name}"]
    assert symbol == "✗"
    assert re.fullmatch(
        r"in ALARM since \d{4}-\d\d-\d\d \d\d:\d\d UTC: Threshold Crossed: 1 datapoint \[3\.0\]",
        detail,
    )
    assert fix == (
        f"what it says: Dead letters: `hotline dead-letters list --stack {STACK}` "
        f"(aws cloudwatch describe-alarms --alarm-names {name})"
    )


def test_function_errors_in_the_last_hour_fail_naming_the_log(world: World) -> None:
    sns_production(world)
    connect_answers(world)
    name = world.resources["InviteReceiverFunction"]
    boto3.client("cloudwatch").put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {
                "MetricName": "Errors",
                "Dimensions": [{"Name": "FunctionName", "Value": name}],
                "Timestamp": datetime.now(UTC) - timedelta(minutes=minutes),
                "Value": 1,
            }
            for minutes in (5, 20, 50, 90)  # the last one is older than an hour
        ],
    )

    result = world.run()

    assert result.exit_code == 1
    assert lines(result.output)["errors of InviteReceiverFunction"] == (
        "✗",
        "3 errors in the last hour",
        f"read its log: aws logs tail /hotline/{STACK}/functions --since 1h | grep {name}",
    )


def test_nobody_subscribed_to_the_alarms_is_a_warning(world: World) -> None:
    sns_production(world)
    connect_answers(world)
    sns = boto3.client("sns")
    for subscription in sns.list_subscriptions()["Subscriptions"]:
        sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])

    result = world.run()

    assert result.exit_code == 0, result.output
    assert lines(result.output)["alarm notifications"] == (
        "!",
        "nobody is subscribed to the alarm topic: alarms notify no one",
        "set AlarmEmail (sam deploy --guided) and confirm the e-mail AWS sends",
    )
