"""Adapters against moto, or botocore's Stubber (which checks each request against the real
service model) where moto has no such service."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

from hotline_core.adapters.bus import EventBridgePublisher, PublishFailed
from hotline_core.adapters.sms import EndUserMessagingSms, SnsSms
from hotline_core.events import Party, TimedOut

REGION = "ap-northeast-1"
TAKUMI = Party(name="タクミ", phone="+819011112222")
MIZUKI = Party(name="ミズキ", phone="+817033334444")


@mock_aws
def test_sns_sends_a_transactional_sms_to_the_phone_number():
    SnsSms(boto3.client("sns", region_name=REGION)).send("+819011112222", "ミズキさんが話せます")

    sent = list(sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages.values())
    assert sent == [("+819011112222", "ミズキさんが話せます")]


def test_end_user_messaging_sends_with_send_text_message():
    client = boto3.client("pinpoint-sms-voice-v2", region_name=REGION)
    with Stubber(client) as stub:
        stub.add_response(
            "send_text_message",
            {"MessageId": "m-1"},
            {
                "DestinationPhoneNumber": "+819011112222",
                "MessageBody": "ミズキさんが話せます",
                "MessageType": "TRANSACTIONAL",
                "OriginationIdentity": "+815012345678",
            },
        )
        EndUserMessagingSms(client, origination_identity="+815012345678").send(
            "+819011112222", "ミズキさんが話せます"
        )
        stub.assert_no_pending_responses()


def test_end_user_messaging_errors_propagate_so_the_consumer_is_retried():
    client = boto3.client("pinpoint-sms-voice-v2", region_name=REGION)
    with Stubber(client) as stub:
        stub.add_client_error("send_text_message", "ThrottlingException", http_status_code=429)
        with pytest.raises(client.exceptions.ThrottlingException):
            EndUserMessagingSms(client).send("+819011112222", "x")


def _timed_out() -> TimedOut:
    return TimedOut(
        request_id="r-1", caller=TAKUMI, receiver=MIZUKI, timed_out_at=datetime.now(UTC)
    )


def test_put_events_with_failed_entries_is_retried_then_raised():
    client = boto3.client("events", region_name=REGION)
    failed = {
        "FailedEntryCount": 1,
        "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}],
    }
    with Stubber(client) as stub:
        for _ in range(3):
            stub.add_response("put_events", failed)
        with pytest.raises(PublishFailed, match="InternalFailure"):
            EventBridgePublisher(client, "bus").publish(_timed_out(), correlation_id="r-1")
        stub.assert_no_pending_responses()


def test_put_events_succeeds_on_a_retry_after_a_failed_entry():
    client = boto3.client("events", region_name=REGION)
    with Stubber(client) as stub:
        stub.add_response(
            "put_events",
            {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "ThrottlingException"}]},
        )
        stub.add_response("put_events", {"FailedEntryCount": 0, "Entries": [{"EventId": "e"}]})
        EventBridgePublisher(client, "bus").publish(_timed_out(), correlation_id="r-1")
        stub.assert_no_pending_responses()


def test_sms_throttling_is_retried_with_backoff_then_sent():
    from hotline_core.adapters.retry import RetryingSms

    client = boto3.client("pinpoint-sms-voice-v2", region_name=REGION)
    delays: list[float] = []
    with Stubber(client) as stub:
        stub.add_client_error("send_text_message", "ThrottlingException", http_status_code=429)
        stub.add_client_error("send_text_message", "InternalServerException", http_status_code=500)
        stub.add_response("send_text_message", {"MessageId": "m-1"})
        RetryingSms(EndUserMessagingSms(client), sleep=delays.append).send("+819011112222", "x")
        stub.assert_no_pending_responses()
    assert len(delays) == 2
    assert 0 <= delays[0] <= 0.2 and 0 <= delays[1] <= 0.4  # exponential ceilings, jittered


def test_sms_retries_give_up_and_raise_so_the_event_reaches_the_dead_letter_queue():
    from hotline_core.adapters.retry import RetryingSms

    client = boto3.client("pinpoint-sms-voice-v2", region_name=REGION)
    with Stubber(client) as stub:
        for _ in range(4):
            stub.add_client_error("send_text_message", "ThrottlingException", http_status_code=429)
        with pytest.raises(client.exceptions.ThrottlingException):
            RetryingSms(EndUserMessagingSms(client), sleep=lambda _: None).send("+8190", "x")
        stub.assert_no_pending_responses()


def test_a_permanent_sms_error_is_not_retried():
    from hotline_core.adapters.retry import RetryingSms

    client = boto3.client("pinpoint-sms-voice-v2", region_name=REGION)
    with Stubber(client) as stub:
        stub.add_client_error("send_text_message", "ValidationException", http_status_code=400)
        with pytest.raises(client.exceptions.ValidationException):
            RetryingSms(EndUserMessagingSms(client), sleep=lambda _: None).send("+8190", "x")
        stub.assert_no_pending_responses()
