"""A consumer (or the answer timer) that keeps raising is retried as Lambda retries an
asynchronous invocation (60 s, then 120 s later, on the local clock), then lands in its
OnFailure dead-letter queue, visible through `GET /_local/dead-letters`."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from hotline_core.adapters.bus import EventBridgePublisher
from hotline_core.adapters.sms import SnsSms
from hotline_core.ports import PublishFailed
from hotline_tools.local.server import LocalServer
from tests.conftest import MIZUKI, TAKUMI

# What GET /_local/dead-letters adds to Lambda's record (the record itself is what the
# OnFailure queue holds).
SUMMARY = {"id", "function", "event_type", "request_id", "error", "failed_at"}


def fetch(server: LocalServer, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(server.url + path, data=data, method="POST" if data else "GET")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        return json.loads(response.read())


@pytest.fixture
def long_window() -> Iterator[LocalServer]:
    """A ten-minute answer window: every retry of the invitation (the last 180 s after the
    call) still finds the request waiting, so the consumer still tries to text."""
    running = LocalServer(port=0, answer_window=600).start()
    try:
        yield running
    finally:
        running.stop()


def test_failing_consumer_lands_in_the_dead_letter_queue(
    long_window: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = long_window
    attempts: list[str] = []

    def broken_send(self: SnsSms, to: str, body: str) -> None:
        attempts.append(to)
        raise ConnectionError("SMS provider unreachable")

    monkeypatch.setattr(SnsSms, "send", broken_send)
    assert fetch(server, "/_local/dead-letters") == []

    call = fetch(server, "/_local/calls", {"from": TAKUMI})
    # The caller's side is unaffected: the flow ran and the request was made.
    assert call["attributes"]["registered"] == "true"
    assert [e["detail-type"] for e in fetch(server, "/_local/events")] == ["CallRequested"]

    invite = server.engine.stack.functions["InviteReceiverFunction"]
    expected_attempts = invite.spec.max_retries + 1
    assert expected_attempts == 3
    assert attempts == [MIZUKI]  # no retry on the spot: Lambda waits a minute
    assert fetch(server, "/_local/dead-letters") == []
    # The retries come when the clock reaches them: 60 s, then 120 s after that failure (and a
    # second for the real time that passes on this server's clock).
    fetch(server, "/_local/clock/advance", {"seconds": 181})
    assert attempts == [MIZUKI] * expected_attempts
    assert fetch(server, "/_local/sms") == []

    [letter] = fetch(server, "/_local/dead-letters")
    assert letter["requestContext"]["condition"] == "RetriesExhausted"
    assert letter["requestContext"]["functionArn"] == invite.arn
    assert letter["requestContext"]["approximateInvokeCount"] == expected_attempts
    assert letter["responsePayload"] == {
        "errorType": "ConnectionError",
        "errorMessage": "SMS provider unreachable",
    }
    assert letter["requestPayload"]["detail-type"] == "CallRequested"
    assert letter["requestPayload"]["detail"]["data"]["request_id"] == call["contact_id"]

    # The record also sits in the function's dead-letter queue, as the template wires it.
    assert invite.dead_letter_queue, "InviteReceiverFunction has no OnFailure queue"
    got = server.engine.client("sqs").receive_message(
        QueueUrl=invite.dead_letter_queue, MaxNumberOfMessages=10
    )
    queued = [json.loads(m["Body"]) for m in got.get("Messages", [])]
    assert queued == [{k: v for k, v in letter.items() if k not in SUMMARY}]


def test_a_timer_run_that_keeps_failing_lands_in_the_timer_dead_letter_queue(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish = EventBridgePublisher.publish

    def bus_refuses_timed_out(self: EventBridgePublisher, data: Any, **kwargs: Any) -> None:
        if data.detail_type == "TimedOut":
            raise PublishFailed("TimedOut not accepted: bus down", maybe_published=False)
        publish(self, data, **kwargs)

    monkeypatch.setattr(EventBridgePublisher, "publish", bus_refuses_timed_out)
    call = fetch(server, "/_local/calls", {"from": TAKUMI})
    scheduler = server.engine.client("scheduler")
    [summary] = scheduler.list_schedules()["Schedules"]
    schedule = scheduler.get_schedule(Name=summary["Name"], GroupName=summary["GroupName"])

    # Scheduler fires it at some moment within the minute of its at(); up to that moment
    # (and a second for real time) it fires once, and the function has run once.
    [fires_at] = server.engine.fire_times().values()
    until = (fires_at - server.engine.clock.now()).total_seconds() + 1
    assert fetch(server, "/_local/clock/advance", {"seconds": until})["fired"] == 1
    assert server.engine.host.invocations["AnswerTimerFunction"] == 1
    fetch(server, "/_local/clock/advance", {"seconds": 180})  # its retries: +60 s, +180 s

    timer = server.engine.stack.functions["AnswerTimerFunction"]
    attempts = timer.spec.max_retries + 1
    assert server.engine.host.invocations["AnswerTimerFunction"] == attempts
    [letter] = fetch(server, "/_local/dead-letters")
    assert letter["requestContext"]["functionArn"] == timer.arn
    assert letter["requestContext"]["approximateInvokeCount"] == attempts
    assert letter["requestPayload"] == json.loads(schedule["Target"]["Input"])
    assert letter["requestPayload"]["request_id"] == call["contact_id"]
    assert letter["responsePayload"]["errorType"] == "PublishFailed"
    assert (letter["function"], letter["event_type"], letter["request_id"]) == (
        "AnswerTimerFunction",
        "AnswerTimer",
        call["contact_id"],
    )
    # The queue the template names as the timer's OnFailure destination holds the same record.
    queue = server.engine.stack.refs["TimerDeadLetterQueue"]["Ref"]
    assert timer.dead_letter_queue == queue
    got = server.engine.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
    assert [json.loads(m["Body"]) for m in got["Messages"]] == [
        {k: v for k, v in letter.items() if k not in SUMMARY}
    ]
    # The caller was not told: the request is back to waiting, for the operator's redrive.
    assert fetch(server, f"/_local/sms?to={quote(TAKUMI)}") == []
