"""A producer whose publish fails: what EventBridge said decides whether the state write is
undone. A refusal (a failed entry, an error answer) means the event is certainly not on the
bus: the request is undone and the caller is told at once. No answer at all (a read timeout)
means it may be: the request stays, so a link or a timer that does arrive finds it. And no
attempt starts that could run past the invocation's deadline."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ReadTimeoutError

from hotline_core.runtime.clients import client as cached_client
from tests.conftest import TAKUMI, request_item

UNAVAILABLE = "ただいまご利用いただけません"


class PutEventsFault:
    """Every PutEvents of one detail-type meets `fault` (an exception to raise, or a failed
    entry code to answer with); counts the attempts."""

    def __init__(self, detail_type: str, fault: Exception | str) -> None:
        self.detail_type, self.fault, self.attempts = detail_type, fault, 0

    def __call__(self, params, **kwargs):
        entry = json.loads(params["body"])["Entries"][0]
        if entry["DetailType"] != self.detail_type:
            return None
        self.attempts += 1
        if isinstance(self.fault, Exception):
            raise self.fault

        class Http200:
            status_code = 200
            headers: dict[str, str] = {}  # noqa: RUF012

        return Http200(), {"FailedEntryCount": 1, "Entries": [{"ErrorCode": self.fault}]}


@pytest.fixture
def put_events_fault(hook):
    def install(detail_type: str, fault: Exception | str) -> PutEventsFault:
        fault_hook = PutEventsFault(detail_type, fault)
        return hook(cached_client("events"), "before-call.events.PutEvents", fault_hook)

    return install


def requests_stored(local) -> int:
    table = local.stack.output("RequestsTableName")
    return local.client("dynamodb").scan(TableName=table)["Count"]


def test_no_answer_from_eventbridge_keeps_the_request_for_the_event_that_may_have_landed(
    local, put_events_fault
):
    fault = put_events_fault("CallRequested", ReadTimeoutError(endpoint_url="https://events"))

    answer = local.call(TAKUMI)

    assert fault.attempts == 3  # retried: publishing twice is harmless, consumers dedupe
    assert answer["prompts"][-1].startswith(UNAVAILABLE)  # the flow's error branch
    item = request_item(local, answer["contact_id"])
    assert item is not None and item["status"]["S"] == "inquiry"  # not undone
    assert local.sms() == [] and local.events() == []


def test_a_refused_entry_that_is_not_worth_retrying_is_tried_once_and_the_request_undone(
    local, put_events_fault
):
    fault = put_events_fault("CallRequested", "AccessDeniedException")

    answer = local.call(TAKUMI)

    assert fault.attempts == 1  # the same refusal again would only delay the caller
    assert answer["prompts"][-1].startswith(UNAVAILABLE)
    assert requests_stored(local) == 0


def test_throttled_entries_are_retried_then_the_request_undone(local, put_events_fault):
    fault = put_events_fault("CallRequested", "ThrottlingException")

    local.call(TAKUMI)

    assert fault.attempts == 3
    assert requests_stored(local) == 0


def test_no_publish_attempt_starts_that_could_outlast_the_invocation(
    local, put_events_fault, monkeypatch
):
    """A call that reaches PutEvents with less time left than an attempt plus the reserve
    to undo the request makes no attempt: it undoes the request and the caller is told."""
    from hotline_tools.local.host import FakeContext

    fault = put_events_fault("CallRequested", "ThrottlingException")
    monkeypatch.setattr(FakeContext, "get_remaining_time_in_millis", lambda self: 2000)

    answer = local.call(TAKUMI)

    assert fault.attempts == 0  # 2 s left < 1.5 s attempt + 1.5 s reserve
    assert answer["prompts"][-1].startswith(UNAVAILABLE)
    assert requests_stored(local) == 0
