"""The environment model and what Deps builds from it: the SMS provider the template's
SmsProvider parameter chooses, sending from SmsOriginationIdentity. AWS clients sit behind
botocore's Stubber (requests checked against the real service model, nothing sent)."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from hotline_core.runtime import deps as deps_module
from hotline_core.runtime.deps import Deps
from hotline_core.runtime.observability import metrics
from hotline_core.settings import Settings, SettingsError

BASE = {"TABLE_NAME": "requests", "EVENT_BUS_NAME": "bus"}
TO, BODY = "+819011112222", "ミズキさんが話せます。+817033334444 に電話してください"


@pytest.fixture
def stubs(monkeypatch):
    """SNS and End User Messaging clients with no responses queued: any call Deps makes that
    a test did not expect fails."""
    clients = {
        service: boto3.client(service, region_name="ap-northeast-1")
        for service in ("sns", "pinpoint-sms-voice-v2")
    }
    stubbers = {service: Stubber(c) for service, c in clients.items()}
    for stubber in stubbers.values():
        stubber.activate()
    monkeypatch.setattr(deps_module, "client", lambda service, *_, **__: clients[service])
    yield stubbers
    for stubber in stubbers.values():
        stubber.deactivate()
    metrics.clear_metrics()  # SmsSent, counted outside any handler


def test_end_user_messaging_is_chosen_and_sends_from_the_origination_identity(stubs):
    settings = Settings.from_env(
        {
            **BASE,
            "SMS_PROVIDER": "end-user-messaging",
            "SMS_ORIGINATION_IDENTITY": "pool-0123456789abcdef",
        }
    )
    stubs["pinpoint-sms-voice-v2"].add_response(
        "send_text_message",
        {"MessageId": "m-1"},
        expected_params={
            "DestinationPhoneNumber": TO,
            "MessageBody": BODY,
            "MessageType": "TRANSACTIONAL",
            "OriginationIdentity": "pool-0123456789abcdef",
        },
    )

    Deps(settings).sms.send(TO, BODY)

    stubs["pinpoint-sms-voice-v2"].assert_no_pending_responses()


def test_end_user_messaging_without_an_identity_is_a_clear_settings_error(stubs):
    # SendTextMessage is allowed only on the account's origination identities (template.yaml;
    # its Rules refuse the same parameters before a deploy): name one, or nothing is sent.
    with pytest.raises(SettingsError, match="SMS_ORIGINATION_IDENTITY"):
        Settings.from_env({**BASE, "SMS_PROVIDER": "end-user-messaging"})


def test_sns_is_the_default_provider(stubs):
    settings = Settings.from_env(dict(BASE))
    assert settings.sms_provider == "sns"
    stubs["sns"].add_response(
        "publish",
        {"MessageId": "m-1"},
        expected_params={
            "PhoneNumber": TO,
            "Message": BODY,
            "MessageAttributes": {
                "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}
            },
        },
    )

    Deps(settings).sms.send(TO, BODY)

    stubs["sns"].assert_no_pending_responses()


def test_an_unknown_sms_provider_is_an_error_naming_the_variable():
    with pytest.raises(SettingsError, match="SMS_PROVIDER"):
        Settings.from_env({**BASE, "SMS_PROVIDER": "pinpoint"})


@pytest.mark.parametrize("missing", ["TABLE_NAME", "EVENT_BUS_NAME"])
def test_a_missing_variable_is_an_error_naming_it(missing):
    env = {k: v for k, v in BASE.items() if k != missing}
    with pytest.raises(SettingsError, match=missing):
        Settings.from_env(env)


def test_a_variable_a_function_needs_is_an_error_naming_it_when_empty():
    with pytest.raises(SettingsError, match="IDEMPOTENCY_TABLE_NAME"):
        Settings.from_env({**BASE, "IDEMPOTENCY_TABLE_NAME": ""}, needs=("IDEMPOTENCY_TABLE_NAME",))


@pytest.mark.parametrize(("value", "allowed"), [("false", False), ("true", True), (None, False)])
def test_allow_replay_side_effects_reads_the_template_parameter(value, allowed):
    # The template passes the parameter's string ("true" / "false"); absent means off.
    env = dict(BASE) if value is None else {**BASE, "ALLOW_REPLAY_SIDE_EFFECTS": value}
    assert Settings.from_env(env).allow_replay_side_effects is allowed
