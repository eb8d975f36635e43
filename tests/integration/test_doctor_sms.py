"""`hotline doctor --stack`: the SMS checks, through SNS or End User Messaging."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError

from hotline_tools import doctor
from tests.integration import doctor_stack
from tests.integration.doctor_stack import (
    ACCOUNT,
    EUM_NUMBER,
    REGION,
    REN,
    TAKUMI,
    World,
    assert_no_phone,
    connect_answers,
    eum_account,
    eum_number_by_e164,
    eum_phone_number,
    eum_pool,
    eum_unknown,
    lines,
    make_world,
    sns_production,
    sns_sandbox,
)

# The shared fixtures: pytest finds a fixture by its name in the test module.
wide = doctor_stack.wide
aws = doctor_stack.aws
world = doctor_stack.world


# --- SMS -------------------------------------------------------------------------------------
def test_in_the_sns_sandbox_each_unverified_directory_phone_fails_with_the_command_to_verify(
    world: World,
) -> None:
    sns_sandbox(world, {TAKUMI: "Verified", REN: "Pending"})
    connect_answers(world)

    result = world.run()

    assert result.exit_code == 1
    found = lines(result.output)
    assert found["SMS account"][0] == "!"
    assert "request production access" in found["SMS account"][2]
    symbol, detail, fix = found["SMS sandbox ミズキ"]
    assert symbol == "✗"
    assert detail == "+81********44 is not verified in the SNS sandbox: texts to it fail"
    assert fix.startswith("verify ミズキ (+81********44) in the SNS sandbox: ")
    assert "aws sns create-sms-sandbox-phone-number --phone-number <ミズキ's phone>" in fix
    assert "aws sns verify-sms-sandbox-phone-number" in fix
    symbol, detail, fix = found["SMS sandbox レン"]
    assert (symbol, detail) == (
        "✗",
        "+81********33 is waiting for its code in the SNS sandbox: texts to it fail",
    )
    assert "--one-time-password" in fix
    assert "SMS sandbox タクミ" not in found
    assert_no_phone(result.output)


def test_an_sms_spend_limit_below_the_expected_bill_fails_and_so_does_an_alarm_above_it(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world(monkeypatch)
    boto3.client("sns").set_sms_attributes(attributes={"MonthlySpendLimit": "1"})
    sns_production(world)
    connect_answers(world)

    result = world.run()

    assert result.exit_code == 1
    found = lines(result.output)
    symbol, detail, fix = found["SMS spend limit"]
    assert symbol == "✗"
    assert detail == (
        "SNS SMS spend limit USD 1 a month is below the expected bill ~USD 72 a month: SMS stop "
        "silently at the limit"
    )
    assert fix.endswith("aws sns set-sms-attributes --attributes MonthlySpendLimit=87")
    symbol, detail, fix = found["SMS spend alarm"]
    assert symbol == "✗"
    assert "fires at USD 80, not below the spend limit USD 1" in detail
    assert "sam deploy --guided, answering SmsMonthlySpendAlarmUsd 0.9" in fix


def test_more_conversations_than_the_limit_covers_fail_and_a_short_link_halves_the_invitation(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world(monkeypatch, CustomDomainName="h.example.jp")
    sns_production(world)
    connect_answers(world)

    result = world.run("--conversations", "1000")

    _, detail, fix = lines(result.output)["SMS spend limit"]
    # 1000 × (1 + 1) segments × USD 0.08
    assert "below the expected bill ~USD 160" in detail
    assert "1000 conversations a month × (1-segment invitation with a short link" in (result.output)
    assert "MonthlySpendLimit=192" in fix
    assert result.exit_code == 1


def test_a_spend_alarm_below_the_expected_bill_is_a_warning(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world(monkeypatch, SmsMonthlySpendAlarmUsd="0.8")
    sns_production(world)
    connect_answers(world)

    result = world.run()

    assert result.exit_code == 0, result.output
    symbol, detail, fix = lines(result.output)["SMS spend alarm"]
    assert symbol == "!"
    assert "below the expected bill ~USD 72: it will ring in an ordinary month" in detail
    assert fix == (
        "set it between the expected bill and the limit, e.g. 90: sam deploy --guided, "
        "answering SmsMonthlySpendAlarmUsd"
    )


def test_an_end_user_messaging_identity_in_another_country_fails(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world(
        monkeypatch, SmsProvider="end-user-messaging", SmsOriginationIdentity="phone-1"
    )
    eum_account(world)
    eum_phone_number(world, "US", {"PhoneNumberIds": ["phone-1"]})
    connect_answers(world)

    result = world.run()

    assert result.exit_code == 1
    found = lines(result.output)
    assert found["SMS account"][:2] == (
        "✓",
        "End User Messaging SMS in production: any phone can be texted",
    )
    assert found["SMS spend limit"][0] == "✓"
    symbol, detail, fix = found["origination identity"]
    assert (symbol, detail) == ("✗", "phone number phone-1 is for US, not Japan (JP)")
    assert "use an identity for JP" in fix
    assert "set SmsOriginationIdentity to it (sam deploy --guided)" in fix


def test_end_user_messaging_in_the_sandbox_a_jp_sender_id_and_a_low_limit(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world(
        monkeypatch, SmsProvider="end-user-messaging", SmsOriginationIdentity="HOTLINE"
    )
    eum_account(world, tier="SANDBOX", limit=1, max_limit=1)
    world.eum.add_response(
        "describe_sender_ids",
        {
            "SenderIds": [
                {
                    "SenderIdArn": f"arn:aws:sms-voice:{REGION}:{ACCOUNT}:sender-id/HOTLINE/JP",
                    "SenderId": "HOTLINE",
                    "IsoCountryCode": "JP",
                    "MessageTypes": ["TRANSACTIONAL"],
                    "MonthlyLeasingPrice": "0.00",
                    "DeletionProtectionEnabled": False,
                    "Registered": True,
                }
            ]
        },
        {"Filters": [{"Name": "sender-id", "Values": ["HOTLINE"]}]},
    )
    connect_answers(world)

    result = world.run()

    found = lines(result.output)
    assert found["SMS account"][0] == "!"
    assert "#sandbox-sms-move-to-production" in found["SMS account"][2]
    assert found["SMS sandbox ミズキ"][0] == "✗"
    assert "create-verified-destination-number" in found["SMS sandbox ミズキ"][2]
    assert "SMS sandbox タクミ" not in found
    symbol, detail, fix = found["SMS spend limit"]
    assert symbol == "✗"
    assert detail.startswith("End User Messaging text spend limit USD 1 a month is below")
    assert fix.startswith("request a spending quota increase to USD 87")
    assert found["origination identity"][:2] == ("✓", "sender ID HOTLINE, active, for JP")
    assert result.exit_code == 1
    assert_no_phone(result.output)


@pytest.mark.parametrize(
    ("identity", "answers", "expected"),
    [
        ("pool-1", eum_pool, ("✓", "pool pool-1, active, for JP")),
        (EUM_NUMBER, eum_number_by_e164, ("✓", "phone number +81********22, active, for JP")),
        (
            "phone-nope",
            eum_unknown,
            (
                "✗",
                "phone-nope is no phone number, sender ID or pool of this account in this region",
            ),
        ),
    ],
)
def test_the_origination_identity_is_found_whatever_form_sendtextmessage_takes_it_in(
    aws: None, monkeypatch: pytest.MonkeyPatch, identity: str, answers: Any, expected: Any
) -> None:
    world = make_world(
        monkeypatch, SmsProvider="end-user-messaging", SmsOriginationIdentity=identity
    )
    eum_account(world)
    answers(world)
    connect_answers(world)

    result = world.run()

    assert lines(result.output)["origination identity"][:2] == expected
    assert EUM_NUMBER not in result.output
    world.eum.assert_no_pending_responses()


def test_a_network_failure_is_a_one_line_failure_of_the_checks_that_needed_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    sns_production(world)
    connect_answers(world)
    stubbed = doctor.aws

    class Unreachable:
        def __getattr__(self, name: str) -> Any:
            def call(**_: Any) -> Any:
                raise EndpointConnectionError(
                    endpoint_url="https://monitoring.ap-northeast-1.amazonaws.com/"
                )

            return call

    monkeypatch.setattr(doctor, "aws", lambda s: Unreachable() if s == "cloudwatch" else stubbed(s))

    result = world.run()

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    found = lines(result.output)
    unreachable = (
        "EndpointConnectionError: Could not connect to the endpoint URL: "
        '"https://monitoring.ap-northeast-1.amazonaws.com/"'
    )
    fix = "check the network connection to AWS and run hotline doctor again"
    assert found["alarms"] == ("✗", unreachable, fix)
    assert found["errors of CallRequestFunction"] == ("✗", unreachable, fix)
    assert found["dead letters"][0] == "✓"
