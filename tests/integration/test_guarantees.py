"""Nothing lost, nothing sent twice: duplicate and concurrent deliveries, replays, and a
publish that fails after the state write (fault injection at the botocore level)."""

from __future__ import annotations

import json
import threading

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from pydantic import ValidationError

from hotline_core.runtime import budgets, clients
from hotline_core.runtime.clients import client as cached_client
from hotline_core.runtime.deps import Deps
from tests.conftest import (
    FORM,
    MIZUKI,
    ROOT,
    TAKUMI,
    claims,
    detail_types,
    forget_claims,
    link_path,
    request_item,
)


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


HOLD_POINTS = {  # where the first of two concurrent deliveries waits for the second
    "inside the effect": (("sns",), "before-call.sns.Publish"),
    # Neither has claimed yet: only a conditional write (not a read, then a write) lets
    # exactly one of them through.
    "before the claim is written": (("dynamodb", "claims"), "before-call.dynamodb.PutItem"),
}


@pytest.mark.parametrize("held_at", sorted(HOLD_POINTS))
def test_concurrent_duplicates_send_one_sms(local, held_at):
    """Two deliveries of one CallRequested in flight at once, as two Lambda instances would
    run them: the first is held (in the middle of sending, or just before its claim is
    written) while the second runs to the end; exactly one text goes out."""
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

    purpose, event_name = HOLD_POINTS[held_at]
    held = cached_client(*purpose).meta.events
    held.register(event_name, hold_first)
    try:
        first = threading.Thread(target=deliver, args=("first",), name="first")
        first.start()
        assert first_sending.wait(5)  # the first is at the hold point right now
        deliver("second")
        second_done.set()
        first.join(5)
    finally:
        held.unregister(event_name, hold_first)

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

    local.call(TAKUMI)  # the first attempt fails
    assert len(calls) == 1  # Lambda retries a minute later, not at once
    local.advance(60)  # Lambda's retry (the engine's) sends

    assert len(calls) == 2
    assert len(local.sms(MIZUKI)) == 1
    assert local.dead_letters == []


def replay_everything(local):
    from datetime import timedelta

    now = local.clock.now()
    return local.replay(now - timedelta(minutes=10), now + timedelta(minutes=1))


def test_a_replayed_conversation_texts_nobody_and_starts_no_timer(local, log_lines, hook):
    local.call(TAKUMI)
    local.http("POST", link_path(local.sms(MIZUKI)[0]["body"]), body=b"answer=yes", headers=FORM)
    sms_before = len(local.sms())
    forget_claims(local)
    # No schedule left to see is not enough: the replayed Accepted reaches CancelTimer after
    # the replayed CallRequested reached StartTimer, and would delete a timer it started.
    creates = hook(
        cached_client("scheduler"), "before-call.scheduler.CreateSchedule", Raise(None, times=0)
    )

    result = replay_everything(local)

    assert result["replayed"] == 2
    replayed = [e for e in local.events() if e.get("replay-name") == result["replay_name"]]
    assert [e["detail-type"] for e in replayed] == ["CallRequested", "Accepted"]
    assert len(local.sms()) == sms_before
    assert creates.calls == 0
    assert local.client("scheduler").list_schedules()["Schedules"] == []
    skipped = [e for e in log_lines() if e["message"] == "replayed event: side effect skipped"]
    assert {e["would_have"] for e in skipped} >= {
        "text the receiver the link",
        "start the answer timer",
        "text the caller the outcome",
    }
    [timer] = [e for e in skipped if e["function_name"].endswith("StartTimerFunction")]
    assert (timer["would_have"], timer["detail_type"]) == (
        "start the answer timer",
        "CallRequested",
    )
    assert timer["replay_name"] == result["replay_name"]
    # StartTimer's own work ran once: for the call, never for its replay.
    assert [e["timer_started"] for e in log_lines() if "timer_started" in e] == [True]


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
    # Nobody presses again: the timer was never cancelled, fires (within the minute of its
    # at(), the window's end rounded up: 240 s after the call at the latest), and announces
    # the accept.
    local.advance(240)
    assert [m["body"] for m in local.sms(TAKUMI)] == [
        "ミズキさんが話せます。070-3333-4444 に電話してください"
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

    # The timer fires within 240 s of the call; its first invocation fails, and Lambda
    # retries it a minute later.
    local.advance(300)

    assert [m["body"] for m in local.sms(TAKUMI)] == [
        "ミズキさんは今は話せないようです。連絡を待ってください"
    ]


def test_with_allow_replay_side_effects_a_replay_texts_and_starts_the_timer_again(log_lines):
    from hotline_tools.local.engine import LocalHotline

    local = LocalHotline(root=ROOT, parameters={"AllowReplaySideEffects": "true"}).start()
    try:
        local.call(TAKUMI)
        path = link_path(local.sms(MIZUKI)[0]["body"])
        local.http("POST", path, body=b"answer=yes", headers=FORM)
        assert (len(local.sms(MIZUKI)), len(local.sms(TAKUMI))) == (1, 1)
        forget_claims(local)

        result = replay_everything(local)

        assert result["replayed"] == 2
        # The caller is told again; the receiver is not invited again: the consumers still
        # decide from the request's state, and it is answered.
        assert (len(local.sms(MIZUKI)), len(local.sms(TAKUMI))) == (1, 2)
        assert local.sms(TAKUMI)[1]["body"] == local.sms(TAKUMI)[0]["body"]
    finally:
        local.stop()
    started = [e for e in log_lines() if e["message"] == "answer timer" and e.get("timer_started")]
    assert len(started) == 2  # the call's timer, and the replay's
    assert [e["because"] for e in log_lines() if e["message"] == "invitation not sent"] == [
        "settled"
    ]
    assert not [e for e in log_lines() if e["message"] == "replayed event: side effect skipped"]


# --- every effect ends before the function's timeout ---------------------------------------
COLD_START_SECONDS = 1.0  # the first invocation builds its settings and clients


def consumer_effects():
    """What each consumer does at worst, in order: (claimed?, the effect's retry policy,
    the seconds its other calls may take: reads of the request, marking a claim ended)."""
    read = clients.LOOKUP_CLIENT.worst_case
    # LINE first: is the person linked (one read), the channel's token (one read per
    # container), the push with its retries; what still fails goes by SMS (the policy).
    line = (
        clients.LINE_LINKS_CLIENT.worst_case
        + clients.LINE_SECRET_CLIENT.worst_case
        + budgets.LINE_PUSH_RETRIES.worst_case
    )
    return {
        # One read of the request, once the invitation is claimed.
        "InviteReceiverFunction": (True, budgets.SMS_RETRIES, read + line),
        # One text per outcome; MutualCallMatched sends two, bounded by the deadline guard.
        # A time-out reads the request (pointer, item) and marks its claim ended.
        "TellCallerFunction": (
            True,
            budgets.SMS_RETRIES,
            2 * read + budgets.CLAIM_RETRIES.worst_case + line,
        ),
        "TextMemberFunction": (True, budgets.SMS_RETRIES, 0.0),
        "StartTimerFunction": (True, budgets.SCHEDULER_RETRIES, 0.0),
        "CancelTimerFunction": (False, budgets.SCHEDULER_RETRIES, 0.0),
    }


def test_every_consumer_ends_its_effect_and_releases_its_claim_well_before_its_timeout():
    from hotline_core.adapters.idempotency import CLAIM_SETTLED_AFTER
    from hotline_tools.local.template import Template

    functions = {f.logical_id: f for f in Template(ROOT / "template.yaml").functions()}
    consumers = {name for name, f in functions.items() if f.code_uri.rstrip("/") == "consumers"}
    effects = consumer_effects()
    assert consumers == set(effects)  # a new consumer needs its line here
    claim = release = budgets.CLAIM_RETRIES.worst_case
    for name, (claimed, policy, other) in effects.items():
        worst = (
            policy.worst_case + other + budgets.FINISH_SECONDS + (claim + release if claimed else 0)
        )
        assert COLD_START_SECONDS + worst <= functions[name].timeout, (name, worst)
        # A claim older than this belongs to an effect that has ended (`preempt`).
        assert functions[name].timeout < CLAIM_SETTLED_AFTER.total_seconds(), name
    # An attempt inside a claimed effect starts only with this much time left after it (the
    # consumer wrapper passes the invocation's deadline): enough to release, then finish.
    assert budgets.RELEASE_RESERVE >= release + budgets.FINISH_SECONDS > release
    # Each policy knows how long one of its attempts can take: its client's timeouts.
    assert budgets.SMS_RETRIES.attempt_seconds >= clients.SMS_CLIENT.attempt_seconds
    assert budgets.SCHEDULER_RETRIES.attempt_seconds >= clients.SCHEDULER_CLIENT.attempt_seconds
    assert budgets.CLAIM_RETRIES.attempt_seconds >= clients.CLAIMS_CLIENT.attempt_seconds
    from hotline_core.adapters import line_api

    assert budgets.LINE_PUSH_RETRIES.attempt_seconds >= line_api.ATTEMPT_SECONDS


def test_side_effect_clients_have_short_timeouts_and_leave_retries_to_the_budget(local):
    for (service, purpose), limits in clients.CLIENT_LIMITS.items():
        config = cached_client(service, purpose).meta.config
        assert (config.connect_timeout, config.read_timeout) == (limits.connect, limits.read)
        assert config.retries == {"mode": "standard", "total_max_attempts": limits.attempts}
    side_effects = {
        ("sns", ""),
        ("pinpoint-sms-voice-v2", ""),
        ("scheduler", ""),
        ("dynamodb", "claims"),
        ("dynamodb", "lookup"),
        ("dynamodb", "line"),
        ("secretsmanager", "line"),
    }
    assert set(clients.CLIENT_LIMITS) >= side_effects
    assert all(clients.CLIENT_LIMITS[key].attempts == 1 for key in side_effects)
    # No client without limits: an unknown one is refused, not made with the environment's.
    with pytest.raises(LookupError):
        cached_client("lambda")
    # The consumers' adapters are built on those clients.
    from hotline_core.settings import Settings

    deps = Deps(Settings(TABLE_NAME="t", EVENT_BUS_NAME="b"))
    assert deps.once_only._db is cached_client("dynamodb", "claims")
    assert deps.timer._scheduler is cached_client("scheduler")


class Raise:
    """A botocore hook counting calls and raising `error` the next `times` (None: always)."""

    def __init__(self, error: Exception | None, times: int | None = None) -> None:
        self.error, self.left, self.calls = error, times, 0

    def __call__(self, **kwargs):
        self.calls += 1
        if self.left is None or self.left > 0:
            if self.left is not None:
                self.left -= 1
            raise self.error


def test_an_sms_call_that_times_out_releases_its_claim_and_the_retry_sends(local, hook):
    timeout = hook(
        cached_client("sns"),
        "before-call.sns.Publish",
        Raise(ReadTimeoutError(endpoint_url="https://sns"), times=1),
    )

    answer = local.call(TAKUMI)
    assert timeout.calls == 1  # not retried at once (it may have been sent)
    local.advance(60)  # Lambda's retry

    assert timeout.calls == 2
    assert local.host.invocations["InviteReceiverFunction"] == 2
    assert len(local.sms(MIZUKI)) == 1 and local.dead_letters == []
    assert f"invite#{answer['contact_id']}" in claims(local)


def test_an_sms_that_could_outlast_the_invocation_is_not_started_and_the_retry_sends(
    local, hook, monkeypatch
):
    """The first invocation starts with enough time left to claim, not enough for an SMS
    attempt and the release after it: it releases its claim and raises."""
    from hotline_tools.local.host import FakeContext

    left = budgets.CLAIM_RETRIES.attempt_seconds + budgets.RELEASE_RESERVE + 0.1
    assert left < budgets.SMS_RETRIES.attempt_seconds + budgets.RELEASE_RESERVE
    real, short = FakeContext.get_remaining_time_in_millis, []

    def remaining(self):
        if "InviteReceiver" in self.function_name and (not short or short[0] is self):
            short[:] = [self]
            return int(left * 1000)
        return real(self)

    monkeypatch.setattr(FakeContext, "get_remaining_time_in_millis", remaining)
    counting = Raise(None, times=0)
    publishes = hook(cached_client("sns"), "before-call.sns.Publish", counting)

    local.call(TAKUMI)
    local.advance(60)  # Lambda's retry

    assert short, "the consumer never asked how much time it had"
    assert local.host.invocations["InviteReceiverFunction"] == 2
    assert publishes.calls == 1  # only the retry's
    assert len(local.sms(MIZUKI)) == 1 and local.dead_letters == []


def test_a_schedule_create_that_times_out_is_retried_at_once(local, hook):
    timeout = hook(
        cached_client("scheduler"),
        "before-call.scheduler.CreateSchedule",
        Raise(ReadTimeoutError(endpoint_url="https://scheduler"), times=1),
    )

    answer = local.call(TAKUMI)

    assert timeout.calls == 2
    assert local.host.invocations["StartTimerFunction"] == 1
    [schedule] = local.client("scheduler").list_schedules()["Schedules"]
    assert schedule["Name"] == f"answer-{answer['contact_id']}"


def test_a_scheduler_that_keeps_hanging_leaves_no_claim_so_a_redrive_starts_the_timer(local, hook):
    hung = hook(
        cached_client("scheduler"),
        "before-call.scheduler.CreateSchedule",
        Raise(ReadTimeoutError(endpoint_url="https://scheduler")),
    )

    answer = local.call(TAKUMI)
    local.advance(180)  # Lambda's two retries: a minute, then two minutes later

    assert local.host.invocations["StartTimerFunction"] == 3
    [letter] = local.dead_letters
    assert letter["requestContext"]["functionArn"].endswith("StartTimerFunction")
    assert f"timer#{answer['contact_id']}" not in claims(local)  # released every time
    hung.left = 0  # Scheduler answers again; the operator redrives the dead letter
    fn = local.stack.functions["StartTimerFunction"]
    local.client("sqs").send_message(
        QueueUrl=fn.target_queues[0], MessageBody=json.dumps(letter["requestPayload"])
    )
    local.pump()
    [schedule] = local.client("scheduler").list_schedules()["Schedules"]
    assert schedule["Name"] == f"answer-{answer['contact_id']}"


@pytest.mark.parametrize(
    "failure",
    [
        ClientError({"Error": {"Code": "InternalException", "Message": "x"}}, "PutEvents"),
        EndpointConnectionError(endpoint_url="https://events.ap-northeast-1.amazonaws.com"),
    ],
    ids=["ClientError", "BotoCoreError"],
)
def test_a_failed_put_events_call_after_an_answer_is_a_retry_page_and_pressing_again_announces(
    local, hook, failure
):
    answer = local.call(TAKUMI)
    path = link_path(local.sms(MIZUKI)[0]["body"])
    down, failed = [True], []

    def fail_accepted(params, **kwargs):
        entry = json.loads(params["body"])["Entries"][0]
        if entry["DetailType"] == "Accepted" and down[0]:
            failed.append(entry["DetailType"])
            raise failure

    hook(cached_client("events"), "before-call.events.PutEvents", fail_accepted)

    # Down for the whole press: the publisher's own retries (a connection never made is
    # retried within the invocation) fail too.
    page = local.http("POST", path, body=b"answer=yes", headers=FORM)

    assert failed
    assert page.status == 503 and "もう一度" in page.body.decode("utf-8")
    assert request_item(local, answer["contact_id"])["status"]["S"] == "accepted"  # stored
    assert local.sms(TAKUMI) == []
    down[0] = False
    again = local.http("POST", path, body=b"answer=yes", headers=FORM)
    assert again.status == 200
    assert [m["body"] for m in local.sms(TAKUMI)] == [
        "ミズキさんが話せます。070-3333-4444 に電話してください"
    ]


def test_a_malformed_timer_input_is_logged_without_its_values(local, log_lines):
    stranger = "+819055556666"
    bad = {"request_id": TAKUMI * 30, "link_hash": MIZUKI, stranger: "x"}

    with pytest.raises(ValidationError):
        local.host.invoke("AnswerTimerFunction", bad)

    [line] = [e for e in log_lines() if e["message"] == "malformed timer input rejected"]
    logged = json.dumps(line, ensure_ascii=False)
    for phone in (TAKUMI, MIZUKI, stranger):
        assert phone[3:] not in logged
    problems = line["problems"]
    assert [p.split(":")[0] for p in problems] == ["request_id", "link_hash", "<unexpected field>"]
    assert all(p.split(": ", 1)[1] for p in problems)  # each says what is wrong
