"""The metrics whole conversations emit, read back from the EMF documents Powertools prints on
stdout, as CloudWatch would read them: each counted once per thing that really happened, not
once per delivery."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest
from botocore.exceptions import ClientError

from hotline_core.runtime.clients import client as cached_client
from tests.conftest import FORM, MIZUKI, TAKUMI, link_path

STRANGER = "+819055556666"
COUNTS = (
    "Calls",
    "UnknownCallers",
    "Invitations",
    "TimersStarted",
    "TimersCancelled",
    "Accepted",
    "AcceptedLate",
    "Declined",
    "TimedOut",
    "SmsSent",
    "SmsFailed",
    "ReplaySkipped",
    "HotlinePinFailures",
    "HotlineLockouts",
    "HotlineLockedAttempts",
)


class Emitted:
    """Totals of every metric printed since the last `read`, with each metric's unit."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys
        self.units: dict[str, str] = {}
        self.values: dict[str, list[float]] = defaultdict(list)

    def read(self) -> dict[str, float]:
        totals: dict[str, float] = dict.fromkeys(COUNTS, 0.0)
        for line in self._capsys.readouterr().out.splitlines():
            if not line.startswith("{"):
                continue
            document = json.loads(line)
            for directive in document.get("_aws", {}).get("CloudWatchMetrics", []):
                assert directive["Namespace"] == "Hotline"
                for metric in directive["Metrics"]:
                    name = metric["Name"]
                    value = document[name]
                    values = value if isinstance(value, list) else [value]
                    self.units[name] = metric["Unit"]
                    self.values[name].extend(values)
                    totals[name] = totals.get(name, 0.0) + sum(values)
        return totals


@pytest.fixture
def local():
    """The whole hotline in-process on a stopped clock: time passes only by `advance`, so a
    measured duration is exactly what the test advanced, however slow the machine."""
    from hotline_tools.local.engine import LocalHotline
    from tests.conftest import ROOT, StoppedClock

    hotline = LocalHotline(root=ROOT)
    hotline.clock = StoppedClock()  # before start(): the handlers read this clock
    hotline.start()
    try:
        yield hotline
    finally:
        hotline.stop()


@pytest.fixture
def emitted(capsys, local):
    reader = Emitted(capsys)
    reader.read()  # whatever start-up printed
    return reader


def answer(local, text: str) -> None:
    path = link_path(local.sms(MIZUKI)[-1]["body"])
    local.http("POST", path, body=f"answer={text}".encode(), headers=FORM)


def only(totals: dict[str, float], **expected: float) -> None:
    """`expected` counts, and zero for every other count."""
    assert {name: totals[name] for name in COUNTS} == {
        name: expected.get(name, 0) for name in COUNTS
    }


def test_an_accepted_call_counts_the_call_the_invitation_the_timer_and_the_answer(local, emitted):
    local.call(TAKUMI)
    local.advance(30)
    answer(local, "yes")

    totals = emitted.read()

    only(
        totals,
        Calls=1,
        Invitations=1,
        TimersStarted=1,
        Accepted=1,
        TimersCancelled=1,
        SmsSent=2,  # the invitation, the caller told
    )
    assert emitted.units["AnswerTimeSeconds"] == "Seconds"
    [seconds] = emitted.values["AnswerTimeSeconds"]
    assert seconds == 30  # from the call to the tap, on the local clock


def test_a_declined_call(local, emitted):
    local.call(TAKUMI)
    answer(local, "no")

    only(
        emitted.read(),
        Calls=1,
        Invitations=1,
        TimersStarted=1,
        Declined=1,
        TimersCancelled=1,
        SmsSent=2,
    )
    assert len(emitted.values["AnswerTimeSeconds"]) == 1


def test_a_call_that_timed_out_then_a_late_yes(local, emitted):
    local.call(TAKUMI)
    local.advance(240)  # the window's end rounded up to a minute, fired within that minute
    answer(local, "yes")

    only(
        emitted.read(),
        Calls=1,
        Invitations=1,
        TimersStarted=1,
        TimedOut=1,
        AcceptedLate=1,
        SmsSent=3,  # the invitation, "can't talk", "free now"
    )  # no timer left to cancel: it fired


def test_an_unknown_caller_is_a_call_and_nothing_else(local, emitted):
    local.call(STRANGER)

    only(emitted.read(), Calls=1, UnknownCallers=1)


def test_duplicate_deliveries_count_nothing_again(local, emitted):
    local.call(TAKUMI)
    answer(local, "yes")
    first = emitted.read()

    for event in [e for e in local.events() if "replay-name" not in e] * 2:
        for fn in local.stack.functions.values():
            for rule, url in zip(fn.spec.rules, fn.target_queues, strict=True):
                if event["detail-type"] in rule.pattern["detail-type"]:
                    local.client("sqs").send_message(QueueUrl=url, MessageBody=json.dumps(event))
    local.pump()

    assert first["Invitations"] == 1 and first["SmsSent"] == 2
    only(emitted.read())  # Invitations, SmsSent, Accepted, timers: all still where they were
    assert len(local.sms(MIZUKI)) == 1 and len(local.sms(TAKUMI)) == 1


def test_a_failed_sms_counts_as_failed_then_sent_on_the_retry(local, emitted):
    left = [1]

    def refuse_once(**kwargs):
        if left[0]:
            left[0] -= 1
            raise ClientError({"Error": {"Code": "InvalidParameter"}}, "Publish")

    sns = cached_client("sns").meta.events
    sns.register("before-call.sns.Publish", refuse_once)
    try:
        local.call(TAKUMI)
    finally:
        sns.unregister("before-call.sns.Publish", refuse_once)
    local.advance(60)  # Lambda's retry, a minute later

    only(
        emitted.read(),
        Calls=1,
        SmsFailed=1,
        SmsSent=1,
        Invitations=1,  # by the retry, which sent it
        TimersStarted=1,
    )


def test_a_replay_counts_only_what_it_skipped(local, emitted):
    from datetime import timedelta

    local.call(TAKUMI)
    answer(local, "yes")
    emitted.read()
    now = local.clock.now()

    local.replay(now - timedelta(minutes=10), now + timedelta(minutes=1))

    # CallRequested: invite, start timer; Accepted: tell the caller, cancel the timer.
    only(emitted.read(), ReplaySkipped=4)


def test_hotline_pins_count_failures_the_lockout_and_locked_attempts(capsys):
    from hotline_core.pins import hash_pin
    from hotline_tools.local.engine import LocalHotline
    from tests.conftest import ROOT

    directory = [
        {"name": "タクミ", "phone": TAKUMI, "pin_hash": hash_pin("2468")},
        {"name": "ミズキ", "phone": MIZUKI},
    ]
    local = LocalHotline(root=ROOT, directory=json.dumps(directory).encode()).start()
    try:
        emitted = Emitted(capsys)
        emitted.read()
        local.call(TAKUMI, digits="1111#1112#1113#")  # three wrong: goodbye
        first = emitted.read()
        local.call(TAKUMI, digits="1114#1115#")  # the fifth wrong PIN within the hour locks
        second = emitted.read()
        local.call(TAKUMI, digits="2468#")  # right, but locked: nobody is texted
        third = emitted.read()
    finally:
        local.stop()

    only(first, Calls=1, HotlinePinFailures=3)
    only(second, Calls=1, HotlinePinFailures=2, HotlineLockouts=1)
    only(third, Calls=1, HotlineLockedAttempts=1)
    assert local.sms() == []


def test_sms_sends_are_counted_as_sent_or_failed_and_failures_still_raise():
    from hotline_core.adapters.sms import MeteredSms

    counted: list[str] = []

    class Flaky:
        def __init__(self) -> None:
            self.calls = 0

        def send(self, to: str, body: str) -> None:
            self.calls += 1
            if self.calls == 2:
                raise ConnectionError("provider down")

    sms = MeteredSms(Flaky(), count=counted.append)
    sms.send(TAKUMI, "one")
    with pytest.raises(ConnectionError):
        sms.send(TAKUMI, "two")
    assert counted == ["SmsSent", "SmsFailed"]
