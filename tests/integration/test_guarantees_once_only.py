"""Once only, through the real handlers and the real idempotency table: a CallRequested
delivered again after its timer is gone starts no second one; concurrent duplicates start one
timer and tell the caller once; a redelivered BenefitRequested texts the member once; and an
SMS the provider throttles is retried with backoff inside the invocation and sent once."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from moto.sns.exceptions import SNSException
from moto.sns.models import SNSBackend, sns_backends

from hotline_core.runtime.clients import client as cached_client
from hotline_tools.local.engine import LocalHotline
from hotline_tools.local.host import FakeContext
from tests.conftest import (
    FORM,
    MIZUKI,
    ROOT,
    TAKUMI,
    claims,
    forget_claims,
    link_path,
    schedules,
)

PIN, URL = "246810", "https://example.jp/campaign/spring"


def the_event(local, detail_type: str) -> dict[str, Any]:
    [event] = [e for e in local.events() if e["detail-type"] == detail_type]
    return event


def sent_by_sns() -> dict[str, Any]:
    """Every Publish moto's SNS accepted, by message id (the local runtime's record of SMS
    reads the same dict, so a test that clears it reads this one instead)."""
    return sns_backends["123456789012"]["ap-northeast-1"].sms_messages


class Counting:
    """A botocore before-call hook that counts the calls that reached it."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, **kwargs: Any) -> None:
        self.calls += 1


def started_lines(log_lines) -> list[bool]:
    return [e["timer_started"] for e in log_lines() if "timer_started" in e]


# --- A duplicate after the timer is gone ----------------------------------------------------
@pytest.mark.parametrize("gone_by", ["fired", "cancelled by an answer"])
def test_a_call_requested_delivered_again_after_its_timer_is_gone_starts_no_second_one(
    local, hook, log_lines, gone_by
):
    """The schedule's name cannot stop this duplicate: the schedule no longer exists. The
    invocation is direct (no pump), so a schedule created by mistake is still there to see,
    not fired or cancelled by the engine before the check."""
    answer = local.call(TAKUMI)
    if gone_by == "fired":
        local.advance(240)  # the window's end rounded up to a minute, fired within that minute
        assert local.sms(TAKUMI)[-1]["body"].startswith("ミズキさんは今は話せない")
    else:
        path = link_path(local.sms(MIZUKI)[0]["body"])
        assert local.http("POST", path, body=b"answer=yes", headers=FORM).status == 200
    assert schedules(local) == []
    assert f"timer#{answer['contact_id']}" in claims(local)
    creates = hook(cached_client("scheduler"), "before-call.scheduler.CreateSchedule", Counting())

    for _ in range(2):  # EventBridge's retry, and Lambda's
        local.host.invoke("StartTimerFunction", the_event(local, "CallRequested"))

    assert schedules(local) == []
    assert creates.calls == 0
    assert started_lines(log_lines) == [True, False, False]
    assert local.handler_errors == ()


# --- Concurrent duplicates ------------------------------------------------------------------
class Race:
    """Two deliveries of one event in flight at once, as two Lambda instances would run them:
    thread "first" is held at `hold_at` (a botocore before-call event) while the second
    delivery runs to the end; then the first goes on."""

    def __init__(self, local, function: str, hold_client, hold_at: str) -> None:
        self.local, self.function = local, function
        self.fn = local.stack.functions[function]
        self.handler = local.host.handler(function)
        self.client, self.hold_at = hold_client, hold_at
        self.first_inside, self.second_done = threading.Event(), threading.Event()
        self.results: dict[str, str] = {}

    def _hold_first(self, **kwargs: Any) -> None:
        if threading.current_thread().name == "first":
            self.first_inside.set()
            self.second_done.wait(5)

    def deliver(self, name: str, event: dict[str, Any]) -> None:
        with self.local.host._environment(self.fn):
            self.handler(dict(event), FakeContext(name, self.fn.arn))
        self.results[name] = "done"

    def run(self, event: dict[str, Any]) -> None:
        self.client.meta.events.register(self.hold_at, self._hold_first)
        try:
            first = threading.Thread(target=self.deliver, args=("first", event), name="first")
            first.start()
            assert self.first_inside.wait(5)  # the first is at the hold point now
            self.deliver("second", event)
            self.second_done.set()
            first.join(5)
        finally:
            self.client.meta.events.unregister(self.hold_at, self._hold_first)
        assert self.results == {"first": "done", "second": "done"}


# Where the first delivery is held: in the middle of its effect (claimed, not done), or just
# before its claim is written (both have checked nothing yet: only a conditional write, not a
# read then a write, lets exactly one of them through).
HOLD_POINTS = {
    "inside the effect": None,
    "before the claim is written": ("claims", "before-call.dynamodb.PutItem"),
}


def hold_point(where: str, effect_client, effect_event: str):
    if HOLD_POINTS[where] is None:
        return effect_client, effect_event
    purpose, event = HOLD_POINTS[where]
    return cached_client("dynamodb", purpose), event


@pytest.mark.parametrize("held", sorted(HOLD_POINTS))
def test_concurrent_duplicates_start_one_timer_and_the_second_never_reaches_scheduler(
    local, hook, log_lines, held
):
    answer = local.call(TAKUMI)
    event = the_event(local, "CallRequested")
    # Forget the first delivery's claim and schedule, so both deliveries race from scratch.
    forget_claims(local)
    [schedule] = schedules(local)
    local.client("scheduler").delete_schedule(
        Name=schedule["Name"], GroupName=schedule["GroupName"]
    )
    scheduler = cached_client("scheduler")
    creates = hook(scheduler, "before-call.scheduler.CreateSchedule", Counting())
    log_lines_before = len(started_lines(log_lines))

    at = hold_point(held, scheduler, "before-call.scheduler.CreateSchedule")
    Race(local, "StartTimerFunction", *at).run(event)

    [only] = schedules(local)
    assert only["Name"] == f"answer-{answer['contact_id']}"
    # The claim stopped the duplicate before Scheduler; the name alone would not have stopped
    # a duplicate arriving after the schedule fired (see the test above).
    assert creates.calls == 1
    assert sorted(started_lines(log_lines)[log_lines_before:]) == [False, True]


@pytest.mark.parametrize("held", sorted(HOLD_POINTS))
def test_concurrent_duplicates_of_an_answer_tell_the_caller_once(local, held):
    local.call(TAKUMI)
    path = link_path(local.sms(MIZUKI)[0]["body"])
    assert local.http("POST", path, body=b"answer=yes", headers=FORM).status == 200
    event = the_event(local, "Accepted")
    forget_claims(local)
    sent = sent_by_sns()
    sent.clear()

    at = hold_point(held, cached_client("sns"), "before-call.sns.Publish")
    race = Race(local, "TellCallerFunction", *at)
    race.run(event)

    assert [to for to, _ in sent.values()] == [TAKUMI]  # exactly one publish reached SNS
    race.deliver("later", event)
    assert len(sent) == 1


# --- The benefits line ----------------------------------------------------------------------
@pytest.fixture
def benefits_line():
    members = json.dumps([{"phone": TAKUMI, "member_id": "M001"}]).encode()
    benefits = f"pin,campaign_url\n{PIN},{URL}\n".encode()
    local = LocalHotline(root=ROOT, members=members, benefits=benefits).start()
    try:
        yield local
    finally:
        local.stop()


def test_a_benefit_requested_delivered_again_texts_the_member_once(benefits_line):
    local = benefits_line
    answer = local.call(TAKUMI, line="benefits", digits=f"{PIN}#")
    assert answer["attributes"]["memberId"] == "M001"
    event = the_event(local, "BenefitRequested")
    fn = local.stack.functions["TextMemberFunction"]
    [queue] = fn.target_queues

    for _ in range(3):  # at least once: the same event, three more times, through its rule
        local.client("sqs").send_message(QueueUrl=queue, MessageBody=json.dumps(event))
    local.pump()

    assert local.host.invocations["TextMemberFunction"] == 4
    assert [m["body"] for m in local.sms(TAKUMI)] == [f"キャンペーンページ: {URL}"]
    assert [c for c in claims(local) if c.startswith("benefit#")] != []
    assert local.handler_errors == () and local.dead_letters == []


# --- SMS throttling -------------------------------------------------------------------------
class Throttled(SNSException):
    code = "Throttling"
    message = "Rate exceeded"


def test_a_throttled_sms_is_retried_with_backoff_in_the_same_invocation_and_sent_once(
    local, monkeypatch
):
    """SNS throttles the first two attempts (well inside SMS_RETRIES' four attempts and its
    budget): the consumer's own retries send it, so Lambda never sees an error."""
    publish, attempts = SNSBackend.publish, []

    def throttle_twice(self, *args: Any, phone_number=None, **kwargs: Any):
        attempts.append(phone_number)
        if len(attempts) <= 2:
            raise Throttled()
        return publish(self, *args, phone_number=phone_number, **kwargs)

    monkeypatch.setattr(SNSBackend, "publish", throttle_twice)

    local.call(TAKUMI)

    assert attempts == [MIZUKI] * 3
    assert local.host.invocations["InviteReceiverFunction"] == 1
    assert len(local.sms(MIZUKI)) == 1
    assert local.handler_errors == ()
    assert local.dead_letters == []
