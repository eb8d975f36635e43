"""Nothing lost, nothing sent twice: duplicate and concurrent deliveries, replays, and a
publish that fails after the state write (fault injection at the botocore level)."""

from __future__ import annotations

import json
import re
import threading

import pytest

from hotline_core.lambda_support import client as cached_client

TAKUMI, MIZUKI = "+819011112222", "+817033334444"
FORM = {"content-type": "application/x-www-form-urlencoded"}


def link_path(body: str) -> str:
    return "/" + re.search(r"https?://\S+", body).group(0).split("/", 3)[3]


def detail_types(local):
    return [e["detail-type"] for e in local.events()]


class _Http200:
    status_code = 200
    headers: dict[str, str] = {}  # noqa: RUF012


class FailPutEvents:
    """Makes the next `times` PutEvents calls of one detail-type report a failed entry."""

    def __init__(self, detail_type: str, times: int) -> None:
        self.detail_type, self.left, self.failed = detail_type, times, 0

    def __call__(self, params, **kwargs):
        entry = json.loads(params["body"])["Entries"][0]
        if entry["DetailType"] == self.detail_type and self.left > 0:
            self.left -= 1
            self.failed += 1
            response = {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure"}]}
            return (_Http200(), response)  # short-circuits the call
        return None


@pytest.fixture
def fail_put_events():
    hooks = []

    def install(detail_type: str, times: int) -> FailPutEvents:
        hook = FailPutEvents(detail_type, times)
        cached_client("events").meta.events.register("before-call.events.PutEvents", hook)
        hooks.append(hook)
        return hook

    yield install
    for hook in hooks:
        cached_client("events").meta.events.unregister("before-call.events.PutEvents", hook)


def test_every_event_delivered_again_sends_no_second_sms_and_no_second_schedule(local):
    local.call(TAKUMI)
    local.http("POST", link_path(local.sms(MIZUKI)[0]["body"]), body=b"answer=yes", headers=FORM)
    delivered = [e for e in local.events() if "replay-name" not in e]

    for event in delivered * 3:  # at-least-once: the same event id, three more times
        for fn in local.stack.functions.values():
            for rule, url in zip(fn.spec.rules, fn.target_queues, strict=True):
                if event["detail-type"] in rule.pattern["detail-type"]:
                    body = json.dumps(event)
                    local.client("sqs").send_message(QueueUrl=url, MessageBody=body)
    local.pump()

    assert len(local.sms(MIZUKI)) == 1 and len(local.sms(TAKUMI)) == 1
    assert local.client("scheduler").list_schedules()["Schedules"] == []
    assert local.dead_letters == []


def test_concurrent_duplicates_send_one_sms(local):
    """Two deliveries of one CallRequested in flight at once, as two Lambda instances would
    run them: the second finds the first's claim and sends nothing."""
    from moto.sns.models import sns_backends

    from hotline_tools.local.host import FakeContext

    local.call(TAKUMI)
    [event] = [e for e in local.events() if e["detail-type"] == "CallRequested"]
    handler = local.host.handler("InviteReceiverFunction")
    fn = local.stack.functions["InviteReceiverFunction"]
    # Forget the first delivery's claim and text, so both deliveries race from scratch.
    table = fn.environment["IDEMPOTENCY_TABLE_NAME"]
    db = local.client("dynamodb")
    for item in db.scan(TableName=table)["Items"]:
        db.delete_item(TableName=table, Key={"id": item["id"]})
    sent = sns_backends["123456789012"]["ap-northeast-1"].sms_messages
    sent.clear()
    first_sending, second_done = threading.Event(), threading.Event()
    results = {}

    def hold_first(**kwargs):
        if threading.current_thread().name == "first":
            first_sending.set()
            second_done.wait(5)

    def deliver(name):
        with local.host._environment(fn):
            handler(dict(event), FakeContext(name, fn.arn))
        results[name] = "done"

    sns = cached_client("sns").meta.events
    sns.register("before-call.sns.Publish", hold_first)
    try:
        first = threading.Thread(target=deliver, args=("first",), name="first")
        first.start()
        assert first_sending.wait(5)  # the first has claimed and is sending right now
        deliver("second")
        second_done.set()
        first.join(5)
    finally:
        sns.unregister("before-call.sns.Publish", hold_first)

    assert results == {"first": "done", "second": "done"}
    assert len(sent) == 1  # exactly one publish reached SNS
    deliver("later")
    assert len(sent) == 1


def test_a_failed_send_releases_the_claim_so_the_retry_sends(local, monkeypatch):
    from hotline_core.adapters.sms import SnsSms

    real_send, calls = SnsSms.send, []

    def flaky(self, to, body):
        calls.append(to)
        if len(calls) == 1:
            raise RuntimeError("provider down")
        real_send(self, to, body)

    monkeypatch.setattr(SnsSms, "send", flaky)

    local.call(TAKUMI)  # the first attempt fails; Lambda's retry (the engine's) sends

    assert len(calls) == 2
    assert len(local.sms(MIZUKI)) == 1
    assert local.dead_letters == []


def test_a_replayed_conversation_texts_nobody_and_starts_no_timer(local, log_lines):
    from datetime import timedelta

    start = local.clock.now() - timedelta(minutes=1)
    local.call(TAKUMI)
    local.http("POST", link_path(local.sms(MIZUKI)[0]["body"]), body=b"answer=yes", headers=FORM)
    sms_before = len(local.sms())

    result = local.replay(start, local.clock.now() + timedelta(minutes=1))

    assert result["replayed"] == 2
    replayed = [e for e in local.events() if e.get("replay-name") == result["replay_name"]]
    assert [e["detail-type"] for e in replayed] == ["CallRequested", "Accepted"]
    assert len(local.sms()) == sms_before
    assert local.client("scheduler").list_schedules()["Schedules"] == []
    skipped = [e for e in log_lines() if e["message"] == "replayed event: side effect skipped"]
    assert {e["would_have"] for e in skipped} >= {
        "text the receiver the link",
        "start the answer timer",
        "text the caller the outcome",
    }


def test_call_requested_not_published_undoes_the_request_and_the_caller_is_told(
    local, fail_put_events
):
    hook = fail_put_events("CallRequested", times=3)  # every retry of the publisher fails

    answer = local.call(TAKUMI)

    assert hook.failed == 3
    assert answer["prompts"][-1].startswith("ただいまご利用いただけません")
    table = local.stack.output("RequestsTableName")
    assert local.client("dynamodb").scan(TableName=table)["Count"] == 0
    # Calling again works once EventBridge does.
    again = local.call(TAKUMI)
    assert again["attributes"]["registered"] == "true" and len(local.sms(MIZUKI)) == 1


def test_a_failed_put_events_entry_is_retried_by_the_publisher(local, fail_put_events):
    hook = fail_put_events("CallRequested", times=2)

    local.call(TAKUMI)

    assert hook.failed == 2
    assert detail_types(local) == ["CallRequested"] and len(local.sms(MIZUKI)) == 1


def test_an_accept_whose_event_is_lost_still_reaches_the_caller_via_the_timer(
    local, fail_put_events
):
    local.call(TAKUMI)
    path = link_path(local.sms(MIZUKI)[0]["body"])
    fail_put_events("Accepted", times=3)

    page = local.http("POST", path, body=b"answer=yes", headers=FORM)

    assert page.status == 503
    assert "もう一度" in page.body.decode("utf-8")
    assert local.sms(TAKUMI) == []  # not yet
    # Nobody presses again: the timer was never cancelled, fires, and announces the accept.
    local.advance(180)
    assert [m["body"] for m in local.sms(TAKUMI)] == [
        "ミズキさんが話せます。+817033334444 に電話してください"
    ]
    assert "TimedOut" not in detail_types(local)


def test_an_accept_whose_event_is_lost_completes_when_pressed_again(local, fail_put_events):
    local.call(TAKUMI)
    path = link_path(local.sms(MIZUKI)[0]["body"])
    fail_put_events("Accepted", times=3)
    assert local.http("POST", path, body=b"answer=yes", headers=FORM).status == 503

    again = local.http("POST", path, body=b"answer=yes", headers=FORM)

    assert again.status == 200
    assert len(local.sms(TAKUMI)) == 1
    assert local.client("scheduler").list_schedules()["Schedules"] == []


def test_a_timeout_whose_event_is_lost_is_retried_by_scheduler_and_completes(
    local, fail_put_events
):
    local.call(TAKUMI)
    fail_put_events("TimedOut", times=3)

    local.advance(180)  # the timer's first invocation fails; the engine retries it

    assert [m["body"] for m in local.sms(TAKUMI)] == [
        "ミズキさんは今は話せないようです。連絡を待ってください"
    ]
