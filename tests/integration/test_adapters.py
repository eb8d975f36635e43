"""Adapters against moto, or botocore's Stubber (which checks each request against the real
service model) where moto has no such service."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

from hotline_core.adapters.bus import EventBridgePublisher, PublishFailed
from hotline_core.adapters.idempotency import Once, OnceOnly, OnceOnlyMessages
from hotline_core.adapters.retry import OutOfTime, Retrier, RetryingSms, RetryPolicy
from hotline_core.adapters.sms import EndUserMessagingSms, SnsSms
from hotline_core.adapters.timer import SchedulerAnswerTimer
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
            EventBridgePublisher(client, "bus", sleep=lambda _: None).publish(
                _timed_out(), correlation_id="r-1"
            )
        stub.assert_no_pending_responses()


def test_put_events_succeeds_on_a_retry_after_a_failed_entry():
    client = boto3.client("events", region_name=REGION)
    with Stubber(client) as stub:
        stub.add_response(
            "put_events",
            {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "ThrottlingException"}]},
        )
        stub.add_response("put_events", {"FailedEntryCount": 0, "Entries": [{"EventId": "e"}]})
        EventBridgePublisher(client, "bus", sleep=lambda _: None).publish(
            _timed_out(), correlation_id="r-1"
        )
        stub.assert_no_pending_responses()


def test_failed_entries_are_retried_after_short_jittered_pauses_not_at_once():
    client = boto3.client("events", region_name=REGION)
    failed = {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "ThrottlingException"}]}
    pauses: list[float] = []
    with Stubber(client) as stub:
        for _ in range(3):
            stub.add_response("put_events", failed)
        publisher = EventBridgePublisher(client, "bus", sleep=pauses.append)
        with pytest.raises(PublishFailed):
            publisher.publish(_timed_out(), correlation_id="r-1")
    assert len(pauses) == 2  # one before each retry, none before the first attempt
    assert 0 <= pauses[0] <= 0.05 and 0 <= pauses[1] <= 0.1  # exponential ceilings, jittered


@pytest.mark.parametrize(
    "failure",
    [
        ClientError({"Error": {"Code": "InternalException", "Message": "x"}}, "PutEvents"),
        EndpointConnectionError(endpoint_url="https://events.ap-northeast-1.amazonaws.com"),
    ],
    ids=["ClientError", "BotoCoreError"],
)
def test_a_failed_put_events_call_is_raised_as_publish_failed(failure):
    client = boto3.client("events", region_name=REGION)

    def fail(**_):
        raise failure

    client.meta.events.register("before-call.events.PutEvents", fail)
    with pytest.raises(PublishFailed) as raised:
        EventBridgePublisher(client, "bus").publish(_timed_out(), correlation_id="r-1")
    assert raised.value.__cause__ is failure


# --- bounded retries -------------------------------------------------------------------------
SMS_POLICY = RetryPolicy(
    attempts=4, attempt_seconds=2.5, budget_seconds=3.5, base_delay=0.2, max_delay=2.0
)


class FakeTime:
    """A clock that only `sleep` and the fake provider move."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Provider:
    """An SMS provider answering each attempt with the next outcome after `takes` seconds."""

    def __init__(self, clock: FakeTime, *outcomes: Exception | None, takes: float = 0.05):
        self.clock, self.outcomes, self.takes, self.sent = clock, list(outcomes), takes, 0

    def send(self, to: str, body: str) -> None:
        self.clock.now += self.takes
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome
        self.sent += 1


def throttled() -> ClientError:
    return ClientError(
        {"Error": {"Code": "ThrottlingException"}, "ResponseMetadata": {"HTTPStatusCode": 429}},
        "SendTextMessage",
    )


def retrying(provider: Provider, clock: FakeTime, **kw) -> RetryingSms:
    return RetryingSms(provider, SMS_POLICY, sleep=clock.sleep, clock=lambda: clock.now, **kw)


def test_sms_throttling_is_retried_with_backoff_then_sent():
    client = boto3.client("pinpoint-sms-voice-v2", region_name=REGION)
    clock = FakeTime()
    with Stubber(client) as stub:
        stub.add_client_error("send_text_message", "ThrottlingException", http_status_code=429)
        stub.add_client_error("send_text_message", "InternalServerException", http_status_code=500)
        stub.add_response("send_text_message", {"MessageId": "m-1"})
        RetryingSms(EndUserMessagingSms(client), SMS_POLICY, sleep=clock.sleep).send("+8190", "x")
        stub.assert_no_pending_responses()
    assert len(clock.slept) == 2
    assert 0 <= clock.slept[0] <= 0.2 and 0 <= clock.slept[1] <= 0.4  # exponential, jittered


def test_sms_retries_give_up_and_raise_so_the_event_reaches_the_dead_letter_queue():
    client = boto3.client("pinpoint-sms-voice-v2", region_name=REGION)
    with Stubber(client) as stub:
        for _ in range(4):
            stub.add_client_error("send_text_message", "ThrottlingException", http_status_code=429)
        with pytest.raises(client.exceptions.ThrottlingException):
            RetryingSms(EndUserMessagingSms(client), SMS_POLICY, sleep=lambda _: None).send(
                "+8190", "x"
            )
        stub.assert_no_pending_responses()


def test_a_permanent_sms_error_is_not_retried():
    client = boto3.client("pinpoint-sms-voice-v2", region_name=REGION)
    with Stubber(client) as stub:
        stub.add_client_error("send_text_message", "ValidationException", http_status_code=400)
        with pytest.raises(client.exceptions.ValidationException):
            RetryingSms(EndUserMessagingSms(client), SMS_POLICY, sleep=lambda _: None).send(
                "+8190", "x"
            )
        stub.assert_no_pending_responses()


def test_sms_retries_stop_at_the_time_budget_not_at_the_attempt_count():
    clock = FakeTime()
    # Each throttled answer takes 0.6 s: a retry that could run past 3.5 s is not started.
    provider = Provider(clock, *[throttled()] * 4, takes=0.6)
    with pytest.raises(ClientError):
        retrying(provider, clock).send("+8190", "x")
    attempts = len(clock.slept) + 1
    assert attempts < SMS_POLICY.attempts
    # What was started could end in the budget, even had it taken its worst case.
    started_last = clock.now - provider.takes
    assert started_last + SMS_POLICY.attempt_seconds <= SMS_POLICY.budget_seconds


def test_an_unanswered_sms_is_not_sent_again_in_the_same_invocation():
    clock = FakeTime()
    provider = Provider(clock, ReadTimeoutError(endpoint_url="https://sns"))
    with pytest.raises(ReadTimeoutError):
        retrying(provider, clock).send("+8190", "x")
    assert clock.slept == [] and provider.sent == 0


def test_a_refused_connection_is_retried():
    clock = FakeTime()
    provider = Provider(clock, EndpointConnectionError(endpoint_url="https://sns"))
    retrying(provider, clock).send("+8190", "x")
    assert provider.sent == 1 and len(clock.slept) == 1


def test_no_sms_attempt_starts_that_could_outlast_the_invocation():
    clock = FakeTime()
    provider = Provider(clock)
    # 4 s left; an attempt may take 2.5 s and the caller needs 2 s after it.
    sms = retrying(provider, clock, reserve=2.0, remaining=lambda: 4.0)
    with pytest.raises(OutOfTime):
        sms.send("+8190", "x")
    assert provider.sent == 0


def test_retries_stop_when_the_invocation_runs_short():
    clock = FakeTime()
    provider = Provider(clock, throttled(), throttled(), throttled(), takes=1.0)
    roomy = RetryPolicy(attempts=4, attempt_seconds=2.5, budget_seconds=60, base_delay=0.2)
    # 6 s left at the start; the caller needs 2 s after the last attempt.
    sms = RetryingSms(
        provider,
        roomy,
        reserve=2.0,
        remaining=lambda: 6.0 - clock.now,
        sleep=clock.sleep,
        clock=lambda: clock.now,
    )
    with pytest.raises(ClientError, match="Throttling"):
        sms.send("+8190", "x")
    # The second attempt could still end 2 s before the deadline; a third could not.
    assert len(clock.slept) == 1 and provider.sent == 0
    assert clock.now <= 6.0 - 2.0


# --- once only -------------------------------------------------------------------------------
@pytest.fixture
def claims():
    with mock_aws():
        db = boto3.client("dynamodb", region_name=REGION)
        db.create_table(
            TableName="claims",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield db


def once_only(db, **kw) -> OnceOnly:
    return OnceOnly(db, "claims", clock=lambda: datetime.now(UTC), **kw)


def keys(db) -> list[str]:
    return [item["id"]["S"] for item in db.scan(TableName="claims")["Items"]]


def test_do_reports_whether_the_effect_ran_even_when_it_returns_nothing(claims):
    once = once_only(claims)
    effects: list[str] = []

    first = once.do("invite#r-1", lambda: effects.append("sent"))
    again = once.do("invite#r-1", lambda: effects.append("sent"))

    assert (first.ran, again.ran) == (True, False)
    assert effects == ["sent"]


def test_send_once_says_whether_it_sent_and_a_record_keeps_only_what_was_sent(claims):
    sent: list[str] = []

    class Sms:
        def send(self, to: str, body: str) -> None:
            sent.append(body)

    sms = OnceOnlyMessages(Sms(), once_only(claims))
    assert sms.send_once("invite#r-1", "+8190", "one") == "sms"
    record = sms.recording()
    record.send_once("invite#r-1", "+8190", "one")  # a duplicate
    record.send_once("late#r-1", "+8190", "two")
    assert record.sent == ["late#r-1"] and sent == ["one", "two"]


def test_a_failed_effect_releases_its_claim_so_the_retry_runs_it(claims):
    once = once_only(claims)

    def fails():
        raise OutOfTime("no time left")

    with pytest.raises(OutOfTime):
        once.do("timer#r-1", fails)
    assert keys(claims) == []
    assert once.do("timer#r-1", lambda: True) == Once(ran=True, value=True)


def _written_but_unanswered(db, times: int):
    """PutItem writes the claim, then its answer is lost (a read timeout) `times` times."""
    left = [times]

    def lose_answer(**_):
        if left[0] > 0:
            left[0] -= 1
            raise ReadTimeoutError(endpoint_url="https://dynamodb")

    db.meta.events.register("after-call.dynamodb.PutItem", lose_answer)


def test_a_retried_claim_that_finds_its_own_write_goes_on(claims):
    _written_but_unanswered(claims, times=1)
    retry = Retrier(
        RetryPolicy(attempts=2, attempt_seconds=1.0, budget_seconds=2.1),
        retry_if=lambda e: isinstance(e, ReadTimeoutError),
        sleep=lambda _: None,
    )
    effects: list[str] = []

    done = once_only(claims, claim_retry=retry).do("invite#r-1", lambda: effects.append("x"))

    assert done.ran and effects == ["x"]  # not mistaken for a duplicate of itself


def test_a_claim_whose_answer_was_lost_is_undone_so_the_retry_runs_the_effect(claims):
    _written_but_unanswered(claims, times=1)
    once = once_only(claims)
    effects: list[str] = []

    with pytest.raises(ReadTimeoutError):
        once.do("invite#r-1", lambda: effects.append("x"))
    assert keys(claims) == []  # written, then deleted before raising

    assert once.do("invite#r-1", lambda: effects.append("x")).ran and effects == ["x"]


def test_a_release_deletes_only_the_claim_it_made(claims):
    owners = iter(["first", "second"])
    once = once_only(claims, owner=lambda: next(owners))
    assert once.do("invite#r-1", lambda: None).ran  # "first" holds the claim

    def fails():
        raise RuntimeError("boom")

    assert not once.do("invite#r-1", fails).ran  # a duplicate: its effect never runs
    assert keys(claims) == ["invite#r-1"]
    once._release("invite#r-1", "second")  # not its claim: nothing deleted
    assert keys(claims) == ["invite#r-1"]


# --- the timer -------------------------------------------------------------------------------
def _timer(client, **kw) -> SchedulerAnswerTimer:
    return SchedulerAnswerTimer(client, group="g", target_arn="arn:t", role_arn="arn:r", **kw)


def _retry() -> Retrier:
    from hotline_core.adapters.retry import transient_or_unanswered

    policy = RetryPolicy(attempts=3, attempt_seconds=2.0, budget_seconds=3.0)
    return Retrier(policy, retry_if=transient_or_unanswered, sleep=lambda _: None)


def test_a_throttled_schedule_create_is_retried():
    client = boto3.client("scheduler", region_name=REGION)
    with Stubber(client) as stub:
        stub.add_client_error("create_schedule", "ThrottlingException", http_status_code=429)
        stub.add_response("create_schedule", {"ScheduleArn": "arn:s"})
        assert _timer(client, retry=_retry()).start("r-1", datetime.now(UTC)) is True
        stub.assert_no_pending_responses()


def test_a_create_whose_answer_was_lost_is_retried_and_counts_as_started():
    client = boto3.client("scheduler", region_name=REGION)
    lost = [1]

    def lose_answer(**_):
        if lost[0]:
            lost[0] = 0
            raise ReadTimeoutError(endpoint_url="https://scheduler")

    client.meta.events.register("after-call.scheduler.CreateSchedule", lose_answer)
    with Stubber(client) as stub:
        stub.add_response("create_schedule", {"ScheduleArn": "arn:s"})  # written, answer lost
        stub.add_client_error("create_schedule", "ConflictException", http_status_code=409)
        assert _timer(client, retry=_retry()).start("r-1", datetime.now(UTC)) is True
        stub.assert_no_pending_responses()


def test_a_schedule_that_already_existed_is_not_started_again():
    client = boto3.client("scheduler", region_name=REGION)
    with Stubber(client) as stub:
        stub.add_client_error("create_schedule", "ConflictException", http_status_code=409)
        assert _timer(client, retry=_retry()).start("r-1", datetime.now(UTC)) is False
