"""Faults on demand: `POST /_local/faults` (or `arm_fault` in-process) makes the next N
matching AWS calls the handlers make fail as the service would answer, counting every HTTP
attempt botocore sends, then work again; `GET /_local/faults` lists what is still armed. The
runtime's own calls (draining queues, listing schedules, a test's client) never fail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from hotline_core.runtime import clients
from hotline_tools.local.engine import BadRequest, LocalHotline
from tests.conftest import MIZUKI, ROOT, TAKUMI, StoppedClock
from tests.conftest import http_json as request


@pytest.fixture
def local() -> Iterator[LocalHotline]:
    hotline = LocalHotline(root=ROOT)
    hotline.clock = StoppedClock()  # before start(): the handlers read this clock
    hotline.start()
    try:
        yield hotline
    finally:
        hotline.stop()


def as_a_handler(local: LocalHotline, monkeypatch: pytest.MonkeyPatch) -> None:
    """Calls made on this thread count as a handler's (only those ever fail)."""
    monkeypatch.setattr(local.host, "in_handler", lambda: True)


def handler_client(service: str, attempts: int) -> Any:
    """A client from the handlers' botocore session, with botocore's own retries."""
    config = Config(retries={"mode": "standard", "total_max_attempts": attempts})
    return clients._session().create_client(service, config=config)


def code(error: ClientError) -> str:
    return str(error.response["Error"]["Code"])


# --- in-process ------------------------------------------------------------------------------


def test_a_fault_fails_the_next_n_attempts_counting_botocores_retries(local, monkeypatch):
    as_a_handler(local, monkeypatch)
    table = local.stack.output("RequestsTableName")
    db = handler_client("dynamodb", attempts=3)

    local.arm_fault("dynamodb", times=2)
    db.get_item(TableName=table, Key={"pk": {"S": "x"}})  # the third attempt works

    assert local.faults() == []
    local.arm_fault("dynamodb", times=3)
    with pytest.raises(ClientError) as failed:
        db.get_item(TableName=table, Key={"pk": {"S": "x"}})
    assert code(failed.value) == "ProvisionedThroughputExceededException"
    assert failed.value.response["ResponseMetadata"]["RetryAttempts"] == 2
    assert local.faults() == []
    db.get_item(TableName=table, Key={"pk": {"S": "x"}})  # works again


def test_get_lists_what_is_still_armed(local, monkeypatch):
    as_a_handler(local, monkeypatch)
    local.arm_fault("scheduler", times=3, error="ServiceUnavailable")
    local.arm_fault("sms", times=1, to=TAKUMI)

    with pytest.raises(ClientError) as failed:
        handler_client("scheduler", attempts=1).list_schedules()

    assert code(failed.value) == "ServiceUnavailable"
    assert local.faults() == [
        {"service": "scheduler", "to": None, "times": 2, "error": "ServiceUnavailable"},
        {"service": "sms", "to": TAKUMI, "times": 1, "error": None},
    ]


def test_an_sms_fault_for_one_phone_fails_only_texts_to_that_phone(local, monkeypatch):
    as_a_handler(local, monkeypatch)
    local.arm_fault("sms", times=5, to=TAKUMI)
    sns = handler_client("sns", attempts=1)
    sms_v2 = handler_client("pinpoint-sms-voice-v2", attempts=1)

    sns.publish(PhoneNumber=MIZUKI, Message="to Mizuki")  # not the phone: it goes out
    with pytest.raises(ClientError) as by_sns:
        sns.publish(PhoneNumber=TAKUMI, Message="to Takumi")
    with pytest.raises(ClientError) as by_sms_v2:
        sms_v2.send_text_message(DestinationPhoneNumber=TAKUMI, MessageBody="to Takumi")

    assert code(by_sns.value) == "Throttling"  # SNS's own code for it
    assert code(by_sms_v2.value) == "ThrottlingException"  # End User Messaging's
    assert local.faults()[0]["times"] == 3
    assert [m["to"] for m in local.sms()] == [MIZUKI]


def test_an_events_fault_matches_put_events_only(local, monkeypatch):
    as_a_handler(local, monkeypatch)
    local.arm_fault("events", times=1)
    events = handler_client("events", attempts=1)
    bus = local.stack.output("EventBusName")

    events.describe_event_bus(Name=bus)  # not PutEvents
    assert local.faults()[0]["times"] == 1
    with pytest.raises(ClientError) as failed:
        events.put_events(
            Entries=[
                {"Source": "test", "DetailType": "Nothing", "Detail": "{}", "EventBusName": bus}
            ]
        )

    assert code(failed.value) == "ThrottlingException"
    assert local.faults() == []


def test_the_runtimes_own_calls_never_fail(local):
    for service in ("dynamodb", "scheduler", "events", "sms"):
        local.arm_fault(service, times=50)
    armed = local.faults()

    # A test's client (the runtime's own), and a whole pump, on this thread.
    local.client("dynamodb").list_tables()
    local.client("scheduler").list_schedules()
    local.pump()
    # Calls from the handlers' session, but not while a handler runs.
    handler_client("dynamodb", attempts=1).list_tables()

    assert local.faults() == armed


def test_a_handlers_calls_fail_then_work_again(local):
    local.arm_fault("sms", times=50, to=MIZUKI)
    armed = local.faults()[0]["times"]

    local.call(TAKUMI)

    # The invitation's send and its own retries all failed: no text, and each attempt
    # took one of the fault's times; Lambda retries the invocation a minute later.
    assert local.sms(MIZUKI) == []
    left = local.faults()[0]["times"]
    assert left < armed
    errors = [e for e in local.handler_errors if e[0] == "InviteReceiverFunction"]
    assert len(errors) == 1 and "(Throttling)" in errors[0][2]
    local.arm_fault("sms", times=1, to=TAKUMI)  # untouched by texts to Mizuki

    # Spend the rest on this thread as a handler would, then the retry goes through.
    local.host.in_handler = lambda: True  # type: ignore[method-assign]
    sns = handler_client("sns", attempts=1)
    for _ in range(left):
        with pytest.raises(ClientError):
            sns.publish(PhoneNumber=MIZUKI, Message="spent")
    del local.host.in_handler
    local.advance(60)

    assert len(local.sms(MIZUKI)) == 1
    assert local.faults() == [{"service": "sms", "to": TAKUMI, "times": 1, "error": None}]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"service": "lambda"}, '"service" must be one of'),
        ({"service": "sms", "times": 0}, '"times" must be a positive whole number'),
        ({"service": "sms", "times": True}, '"times" must be a positive whole number'),
        ({"service": "sms", "times": 2.5}, '"times" must be a positive whole number'),
        ({"service": "sms", "times": 10**6}, '"times" may be at most'),
        ({"service": "dynamodb", "to": TAKUMI}, '"to" narrows only "sms" faults'),
        ({"service": "sms", "to": "090-1111-2222"}, '"to" must be a phone number'),
        ({"service": "sms", "error": "no such code!"}, '"error" must be an AWS error code'),
    ],
)
def test_arm_fault_refuses_what_it_cannot_do(local, arguments, message):
    service = arguments.pop("service")
    with pytest.raises(BadRequest, match=message):
        local.arm_fault(service, **arguments)
    assert local.faults() == []


# --- over HTTP -------------------------------------------------------------------------------


def test_post_arms_a_fault_and_get_lists_it(server):
    status, armed = request(
        server,
        "POST",
        "/_local/faults",
        json.dumps({"service": "sms", "to": MIZUKI, "times": 2, "error": "Throttling"}).encode(),
    )
    request(server, "POST", "/_local/faults", b'{"service": "dynamodb", "times": 1}')

    assert status == 200
    assert armed == {"service": "sms", "to": MIZUKI, "times": 2, "error": "Throttling"}
    assert request(server, "GET", "/_local/faults") == (
        200,
        [
            armed,
            {
                "service": "dynamodb",
                "to": None,
                "times": 1,
                "error": "ProvisionedThroughputExceededException",
            },
        ],
    )


def test_an_armed_sms_fault_keeps_the_invitation_from_going_out(server):
    request(server, "POST", "/_local/faults", b'{"service": "sms", "times": 100}')

    status, _ = request(server, "POST", "/_local/calls", json.dumps({"from": TAKUMI}).encode())

    assert status == 200
    assert request(server, "GET", "/_local/sms") == (200, [])
    [fault] = request(server, "GET", "/_local/faults")[1]
    assert fault["times"] < 100  # the handler's attempts used some up


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b"not json",
        b"{}",
        b'{"service": "sms"}',
        b'{"service": "sms", "times": -1}',
        b'{"service": "sms", "times": "3"}',
        b'{"service": "bogus", "times": 1}',
        b'{"service": "sms", "times": 1, "to": 8190}',
        b'{"service": "events", "times": 1, "to": "+819011112222"}',
        b'{"service": "sms", "times": 1, "error": ""}',
        b'{"service": "sms", "times": 1, "errors": "Throttling"}',
    ],
)
def test_a_bad_fault_body_is_a_400_with_a_json_error(server, body):
    status, answer = request(server, "POST", "/_local/faults", body)

    assert status == 400
    assert isinstance(answer["error"], str) and answer["error"]
    assert request(server, "GET", "/_local/faults") == (200, [])
