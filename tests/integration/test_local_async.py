"""Lambda's asynchronous invocation, as the local runtime emulates it on its own clock: every
consumer run waits in a queue (`pending()`); a failed one is retried 60 s later, then 120 s
after that failure, only when the clock gets there, then goes to OnFailure; an event older
than the function's MaximumEventAgeInSeconds is not run again; a long advance runs each thing
at its own moment; tests may hold deliveries back and choose which due invocation runs next.
All on a stopped clock, so every moment is exact."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from hotline_core import clock as core_clock
from hotline_core.adapters.sms import SnsSms
from hotline_tools.local import engine as engine_module
from hotline_tools.local.engine import Invocation, LocalHotline
from hotline_tools.local.provision import _max_event_age
from hotline_tools.local.template import Template, TemplateError
from tests.conftest import FORM, MIZUKI, ROOT, TAKUMI, StoppedClock

INVITE = "InviteReceiverFunction"


@pytest.fixture
def local() -> Iterator[LocalHotline]:
    """On a stopped clock, with a ten-minute answer window: every retry of the invitation
    (the last 180 s after the call) still finds the request waiting."""
    hotline = LocalHotline(root=ROOT, answer_window=600)
    hotline.clock = StoppedClock()  # before start(): the handlers read this clock
    hotline.start()
    try:
        yield hotline
    finally:
        hotline.stop()


@pytest.fixture
def unreachable(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """Every SMS send fails; the clock each attempt saw, in order."""
    attempts: list[datetime] = []

    def send(self: SnsSms, to: str, body: str) -> None:
        attempts.append(core_clock.now())
        raise ConnectionError("SMS provider unreachable")

    monkeypatch.setattr(SnsSms, "send", send)
    return attempts


def runs(local: LocalHotline) -> list[tuple[str, str, datetime]]:
    """Every handler run from now on: (function, the event's detail-type or "", clock)."""
    seen: list[tuple[str, str, datetime]] = []
    invoke = local.host.invoke

    def spy(function: str, event: Any) -> Any:
        kind = event.get("detail-type", "") if isinstance(event, dict) else ""
        seen.append((function, kind, core_clock.now()))
        return invoke(function, event)

    local.host.invoke = spy  # type: ignore[method-assign]
    return seen


# --- retries on the clock -----------------------------------------------------------------


def test_a_failed_invocation_is_retried_60_s_then_120_s_later_and_not_before(local, unreachable):
    start = local.clock.now()
    local.call(TAKUMI)
    assert unreachable == [start]  # the first attempt, at once
    [retry] = [i for i in local.pending() if i.function == INVITE]
    assert (retry.attempt, retry.source, retry.due_at) == (
        2,
        "event",
        start + timedelta(seconds=60),
    )

    local.advance(59)
    assert unreachable == [start]  # nothing on the spot, nothing early
    local.advance(1)
    assert unreachable == [start, start + timedelta(seconds=60)]
    [retry] = [i for i in local.pending() if i.function == INVITE]
    assert (retry.attempt, retry.due_at) == (3, start + timedelta(seconds=180))

    local.advance(119)
    assert len(unreachable) == 2 and local.dead_letters == []
    local.advance(1)
    assert unreachable[-1] == start + timedelta(seconds=180)

    # After the last attempt, Lambda's record goes to OnFailure, at that moment.
    [letter] = local.dead_letters
    assert letter["requestContext"]["condition"] == "RetriesExhausted"
    assert letter["requestContext"]["approximateInvokeCount"] == 3
    assert letter["timestamp"] == (start + timedelta(seconds=180)).isoformat()
    assert [i for i in local.pending() if i.function == INVITE] == []
    assert [e for e in local.handler_errors if e[0] == INVITE] == [
        (INVITE, "ConnectionError", "SMS provider unreachable")
    ] * 3


def test_one_long_advance_runs_each_attempt_at_its_own_moment(local, unreachable):
    start = local.clock.now()
    local.call(TAKUMI)

    answer = local.advance(600)

    assert unreachable == [start + timedelta(seconds=s) for s in (0, 60, 180)]
    [letter] = local.dead_letters
    assert letter["timestamp"] == (start + timedelta(seconds=180)).isoformat()
    assert answer["now"] == (start + timedelta(seconds=600)).isoformat()


@pytest.mark.parametrize(("retries", "moments"), [(0, [0]), (1, [0, 60])])
def test_maximum_retry_attempts_is_honoured(local, unreachable, retries, moments):
    local.stack.functions[INVITE].spec.max_retries = retries
    start = local.clock.now()
    local.call(TAKUMI)

    local.advance(600)

    assert unreachable == [start + timedelta(seconds=s) for s in moments]
    [letter] = local.dead_letters
    assert letter["requestContext"]["approximateInvokeCount"] == retries + 1
    assert letter["timestamp"] == (start + timedelta(seconds=moments[-1])).isoformat()


def test_an_event_older_than_its_maximum_age_goes_to_on_failure_instead(local, unreachable):
    local.stack.functions[INVITE].max_event_age = 90
    start = local.clock.now()
    local.call(TAKUMI)

    local.advance(600)

    # Attempt 2 (60 s old) runs; attempt 3 would run at 180 s, older than 90 s: it does not.
    assert unreachable == [start, start + timedelta(seconds=60)]
    [letter] = local.dead_letters
    assert letter["requestContext"]["condition"] == "EventAgeExceeded"
    assert letter["requestContext"]["approximateInvokeCount"] == 2
    assert letter["timestamp"] == (start + timedelta(seconds=180)).isoformat()
    assert "responsePayload" not in letter  # nothing ran, so there is no function error


def test_the_template_sets_the_maximum_event_age(tmp_path: Path):
    template_file = tmp_path / "template.yaml"
    shutil.copy2(ROOT / "template.yaml", template_file)
    shutil.copytree(ROOT / "generated", tmp_path / "generated")  # what the template includes
    text = template_file.read_text(encoding="utf-8")
    heading = text.index("  InviteReceiverFunction:\n")
    at = text.index("        MaximumRetryAttempts: 2\n", heading)
    template_file.write_text(
        text[:at] + "        MaximumEventAgeInSeconds: 90\n" + text[at:], encoding="utf-8"
    )
    template = Template(template_file)

    assert _max_event_age(template, INVITE, {}) == 90
    assert _max_event_age(template, "AnswerTimerFunction", {}) is None  # Lambda's 6 hours

    template_file.write_text(
        text[:at] + "        MaximumEventAgeInSeconds: 30\n" + text[at:], encoding="utf-8"
    )
    with pytest.raises(TemplateError, match="from 60 to 21600"):
        _max_event_age(Template(template_file), INVITE, {})


# --- the queue, and the hooks that reorder it -----------------------------------------------


def test_pending_lists_every_invocation_not_yet_run_in_due_order(local):
    local.delay_deliveries = lambda invocation: 10 if invocation.function == INVITE else 5
    start = local.clock.now()

    local.call(TAKUMI)
    pending = local.pending()

    assert [(i.function, i.due_at, i.attempt, i.source) for i in pending] == [
        ("StartTimerFunction", start + timedelta(seconds=5), 1, "event"),
        (INVITE, start + timedelta(seconds=10), 1, "event"),
    ]
    assert pending[0].event["detail-type"] == "CallRequested"
    assert pending[0].id > pending[1].id  # delivered in template order, due in delay order
    assert local.sms() == []
    local.advance(10)
    assert local.pending() == [] and len(local.sms(MIZUKI)) == 1


def test_a_held_delivery_lets_a_later_events_consumer_run_first(local):
    # CallRequested's consumers are held 30 s; the receiver says "not now" at once.
    local.delay_deliveries = lambda i: 30 if i.event["detail-type"] == "CallRequested" else 0
    seen = runs(local)
    start = local.clock.now()
    local.call(TAKUMI)
    link = local.events()[0]["detail"]["data"]["link"]

    local.http("POST", urlsplit(link).path, body=b"answer=no", headers=FORM)
    local.advance(30)

    consumers = [(kind, moment) for _, kind, moment in seen if kind]
    kinds = [kind for kind, _ in consumers]
    # Every consumer of the later Declined ran, at once, before any of CallRequested's.
    assert kinds == sorted(kinds, key=lambda kind: kind != "Declined")
    assert kinds.count("Declined") >= 1 and kinds.count("CallRequested") == 2
    assert {moment for kind, moment in consumers if kind == "Declined"} == {start}
    held = {moment for kind, moment in consumers if kind == "CallRequested"}
    assert held == {start + timedelta(seconds=30)}


def test_delay_deliveries_holds_only_first_deliveries_of_bus_events(local, unreachable):
    held: list[Invocation] = []

    def hold(invocation: Invocation) -> float:
        held.append(invocation)
        return 10

    local.delay_deliveries = hold
    start = local.clock.now()
    local.call(TAKUMI)

    local.advance(600)

    # The first attempt is held; the retries come 60 s and 120 s after each failure, as ever.
    assert unreachable == [start + timedelta(seconds=s) for s in (10, 70, 190)]
    assert {(i.source, i.attempt) for i in held} == {("event", 1)}
    assert {i.function for i in held} == {INVITE, "StartTimerFunction"}


def test_choose_next_picks_which_due_invocation_runs_next(local):
    offered: list[list[str]] = []

    def last(due: list[Invocation]) -> int:
        offered.append([i.function for i in due])
        assert due == sorted(due, key=lambda i: (i.due_at, i.id))
        return len(due) - 1

    local.choose_next = last
    seen = runs(local)

    local.call(TAKUMI)

    assert offered[0] == [INVITE, "StartTimerFunction"]
    consumers = [function for function, kind, _ in seen if kind == "CallRequested"]
    assert consumers == ["StartTimerFunction", INVITE]  # the template's order, reversed


def test_choose_next_must_answer_an_index_into_the_list(local):
    local.choose_next = lambda due: len(due)

    with pytest.raises(ValueError, match="choose_next returned 2"):
        local.call(TAKUMI)


def test_a_pump_stops_at_its_bound_and_says_so(local, monkeypatch):
    monkeypatch.setattr(engine_module, "MAX_RUNS_PER_PUMP", 1)

    local.call(TAKUMI)

    assert len(local.pending()) == 1  # one of the two consumers ran; the other waits
    assert local.errors == [
        "pump stopped after 1 invocations in a row (a loop of events?); the rest stays pending"
    ]
    local.pump()
    assert local.pending() == []
