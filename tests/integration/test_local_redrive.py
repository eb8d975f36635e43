"""Dead letters as an operator handles them: `GET /_local/dead-letters` gives each Lambda
record an `id` and a summary without phone numbers (`function`, `event_type`, `request_id`,
`error`, `failed_at`); `POST /_local/dead-letters/redrive` (`redrive()` in-process) re-invokes
one or all asynchronously with the original payload, once: a redriven letter leaves the list
and its OnFailure queue, and may fail, be retried and land again as a new letter."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from hotline_core.adapters.sms import SnsSms
from hotline_tools.local.engine import LocalHotline, NotFound
from hotline_tools.local.server import LocalServer
from tests.conftest import MIZUKI, ROOT, TAKUMI, StoppedClock
from tests.conftest import http_json as request

SUMMARY = ("id", "function", "event_type", "request_id", "error", "failed_at")


@pytest.fixture
def local() -> Iterator[LocalHotline]:
    """On a stopped clock, with a ten-minute answer window: a redrive a few minutes later
    still finds the request waiting, so the invitation is still due."""
    hotline = LocalHotline(root=ROOT, answer_window=600)
    hotline.clock = StoppedClock()  # before start(): the handlers read this clock
    hotline.start()
    try:
        yield hotline
    finally:
        hotline.stop()


class Provider:
    """The SMS provider, down until `up` is set; each failure names the number it tried."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.up = False
        self.tries = 0
        send = SnsSms.send

        def maybe_send(sms: SnsSms, to: str, body: str) -> None:
            self.tries += 1
            if not self.up:
                raise ConnectionError(f"SMS provider refused {to}")
            send(sms, to, body)

        monkeypatch.setattr(SnsSms, "send", maybe_send)


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Provider:
    return Provider(monkeypatch)


def dead_invitation(local: LocalHotline) -> dict[str, Any]:
    """A call whose invitation failed every attempt: its one dead letter, as listed."""
    answer = local.call(TAKUMI)
    local.advance(180)
    [letter] = local.dead_letter_entries()
    assert letter["requestPayload"]["detail"]["data"]["request_id"] == answer["contact_id"]
    return letter


def queued(local: LocalHotline, function: str) -> list[dict[str, Any]]:
    queue = local.stack.functions[function].dead_letter_queue
    got = local.client("sqs").receive_message(
        QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=0
    )
    return [json.loads(m["Body"]) for m in got.get("Messages", [])]


def test_each_dead_letter_is_listed_with_an_id_and_a_summary_without_phone_numbers(local, provider):
    answer = local.call(TAKUMI)
    local.advance(180)

    [letter] = local.dead_letter_entries()

    [record] = local.dead_letters  # Lambda's record, every field kept
    assert {k: v for k, v in letter.items() if k not in SUMMARY} == record
    assert letter["id"] == record["requestContext"]["requestId"]
    assert letter["function"] == "InviteReceiverFunction"
    assert letter["event_type"] == "CallRequested"
    assert letter["request_id"] == answer["contact_id"]
    assert letter["failed_at"] == record["timestamp"]
    # The error says what failed, with the number it named masked.
    assert record["responsePayload"]["errorMessage"] == f"SMS provider refused {MIZUKI}"
    assert letter["error"] == "ConnectionError: SMS provider refused <number>"
    summary = json.dumps([letter[k] for k in SUMMARY], ensure_ascii=False)
    assert TAKUMI[1:] not in summary and MIZUKI[1:] not in summary
    assert local.dead_letter_entries() == [letter]  # the id is stable


def test_a_timer_payload_is_listed_as_the_answer_timer(local):
    local.stack.functions["AnswerTimerFunction"].spec.max_retries = 0
    local.host.invoke = _failing(local, "AnswerTimerFunction")  # type: ignore[method-assign]
    answer = local.call(TAKUMI)
    local.advance(720)  # the ten-minute window ends, the timer fires in its minute and fails

    [letter] = local.dead_letter_entries()

    assert (letter["function"], letter["event_type"]) == ("AnswerTimerFunction", "AnswerTimer")
    assert letter["request_id"] == answer["contact_id"]
    assert letter["error"] == "RuntimeError: timer down"


def _failing(local: LocalHotline, function: str) -> Any:
    invoke = local.host.invoke

    def fail(logical_id: str, event: Any) -> Any:
        if logical_id == function:
            raise RuntimeError("timer down")
        return invoke(logical_id, event)

    return fail


def test_a_redrive_reinvokes_the_original_payload_once(local, provider):
    letter = dead_invitation(local)
    assert len(queued(local, "InviteReceiverFunction")) == 1
    provider.up = True
    runs: list[Any] = []
    invoke = local.host.invoke

    def spy(function: str, event: Any) -> Any:
        runs.append((function, event))
        return invoke(function, event)

    local.host.invoke = spy  # type: ignore[method-assign]

    assert local.redrive(letter["id"]) == 1

    assert runs == [("InviteReceiverFunction", letter["requestPayload"])]
    assert [m["to"] for m in local.sms()] == [MIZUKI]
    assert local.dead_letter_entries() == [] and local.dead_letters == []
    assert queued(local, "InviteReceiverFunction") == []  # out of its OnFailure queue too
    with pytest.raises(NotFound):
        local.redrive(letter["id"])  # once only
    assert local.redrive() == 0
    assert len(runs) == 1


def test_a_redrive_that_fails_again_is_retried_and_becomes_a_new_dead_letter(local, provider):
    first = dead_invitation(local)
    start = local.clock.now()

    assert local.redrive() == 1  # all of them: the one

    [retry] = local.pending()
    assert (retry.source, retry.attempt) == ("redrive", 2)
    assert retry.due_at == start + timedelta(seconds=60)
    assert local.dead_letter_entries() == []
    local.advance(180)
    [again] = local.dead_letter_entries()
    assert again["id"] != first["id"]
    assert again["requestPayload"] == first["requestPayload"]
    assert again["requestContext"]["approximateInvokeCount"] == 3
    assert [q["requestContext"]["requestId"] for q in queued(local, again["function"])] == [
        again["id"]
    ]


# --- over HTTP -------------------------------------------------------------------------------


@pytest.fixture
def server(provider: Provider) -> Iterator[LocalServer]:
    running = LocalServer(port=0, answer_window=600)
    running.engine.clock = StoppedClock()
    running.start()
    try:
        yield running
    finally:
        running.stop()


def test_redrive_over_http_once_by_id_then_a_404(server, provider):
    request(server, "POST", "/_local/calls", {"from": TAKUMI})
    request(server, "POST", "/_local/clock/advance", {"seconds": 180})
    status, [letter] = request(server, "GET", "/_local/dead-letters")
    assert status == 200 and letter["function"] == "InviteReceiverFunction"
    provider.up = True

    assert request(server, "POST", "/_local/dead-letters/redrive", {"id": letter["id"]}) == (
        200,
        {"redriven": 1},
    )

    assert request(server, "GET", "/_local/dead-letters") == (200, [])
    assert [m["to"] for m in request(server, "GET", "/_local/sms")[1]] == [MIZUKI]
    status, error = request(server, "POST", "/_local/dead-letters/redrive", {"id": letter["id"]})
    assert status == 404 and letter["id"] in error["error"]
    assert request(server, "POST", "/_local/dead-letters/redrive", {}) == (200, {"redriven": 0})


def test_redrive_over_http_all_at_once(server, provider):
    request(server, "POST", "/_local/calls", {"from": TAKUMI})
    request(server, "POST", "/_local/clock/advance", {"seconds": 180})
    provider.up = True

    assert request(server, "POST", "/_local/dead-letters/redrive", {}) == (200, {"redriven": 1})
    assert request(server, "GET", "/_local/dead-letters") == (200, [])


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"id": "no-such-letter"}, 404),
        ({"id": 5}, 400),
        ({"id": ""}, 400),
        ({"id": None}, 400),
        ({"ids": []}, 400),
        ([], 400),
        (b"", 400),
        (b"{", 400),
    ],
)
def test_a_bad_redrive_body_is_an_error_in_json(server, body, status):
    answer = request(server, "POST", "/_local/dead-letters/redrive", body)

    assert answer[0] == status
    assert isinstance(answer[1]["error"], str) and answer[1]["error"]
