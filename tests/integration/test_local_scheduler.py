"""The local scheduler fires schedules made through the Scheduler API as EventBridge Scheduler
documents it: a one-time at() schedule fires once, at some moment inside the minute of its
at() ("60 second precision"; inside its flexible window when it has one), and is deleted after
only when its ActionAfterCompletion says DELETE; a disabled one does not fire; an at() already
past when the schedule is made never fires; a rate() or cron() schedule is reported, never
fired at a guessed time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from hotline_core import clock as core_clock
from hotline_tools.local.engine import LocalHotline
from tests.conftest import ROOT, StoppedClock

NO_SUCH_REQUEST = {"request_id": "no-such-request"}


@pytest.fixture
def scheduler(local):
    return local.client("scheduler")


def create(local, name: str, expression: str, *, request: str = "", **options: Any) -> None:
    """A schedule targeting the answer timer, as any Scheduler API caller would make it."""
    timer = local.stack.functions["AnswerTimerFunction"]
    given = {"request_id": request} if request else NO_SUCH_REQUEST
    local.client("scheduler").create_schedule(
        **{
            "Name": name,
            "ScheduleExpression": expression,
            "ScheduleExpressionTimezone": "UTC",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "Target": {
                "Arn": timer.arn,
                "RoleArn": "arn:aws:iam::123456789012:role/scheduler",
                "Input": json.dumps(given),
            },
            **options,
        }
    )


def at(moment: datetime) -> str:
    return f"at({moment:%Y-%m-%dT%H:%M:%S})"


def whole_minute(local, minutes: int) -> datetime:
    """The start of the minute `minutes` whole minutes after the current one."""
    now = local.clock.now()
    return now.replace(second=0, microsecond=0) + timedelta(minutes=minutes)


@pytest.fixture
def stopped() -> Iterator[Any]:
    """A hotline on a stopped clock (time passes only by advance), with the seed asked for
    (one per test: moto's state is the process's)."""
    running: list[LocalHotline] = []

    def start(seed: int = 0) -> LocalHotline:
        hotline = LocalHotline(root=ROOT, seed=seed)
        hotline.clock = StoppedClock()  # before start(): the handlers read this clock
        running.append(hotline.start())
        return hotline

    yield start
    for hotline in running:
        hotline.stop()


def timer_clock(local) -> list[datetime]:
    """The clock the answer timer's handler sees, at each of its runs from now on."""
    seen: list[datetime] = []
    invoke = local.host.invoke

    def spy(function: str, event: Any) -> Any:
        if function == "AnswerTimerFunction":
            seen.append(core_clock.now())
        return invoke(function, event)

    local.host.invoke = spy
    return seen


def names(local) -> list[str]:
    return [s["Name"] for s in local.client("scheduler").list_schedules()["Schedules"]]


def timer_runs(local) -> int:
    return local.host.invocations.get("AnswerTimerFunction", 0)


def test_a_one_time_schedule_without_delete_fires_once_and_stays(local):
    create(local, "kept", at(local.clock.now() + timedelta(minutes=1)))

    first = local.advance(120)
    again = local.advance(120)

    assert (first["fired"], again["fired"]) == (1, 0)
    assert timer_runs(local) == 1
    assert names(local) == ["kept"]  # Scheduler keeps it: ActionAfterCompletion is not DELETE


def test_a_one_time_schedule_with_delete_fires_once_and_is_deleted(local):
    when = at(whole_minute(local, 2))  # its minute starts more than 60 s from now
    create(local, "deleted", when, ActionAfterCompletion="DELETE")

    assert local.advance(60)["fired"] == 0  # not yet due
    assert local.advance(120)["fired"] == 1  # past the end of its minute
    assert local.advance(120)["fired"] == 0

    assert timer_runs(local) == 1
    assert names(local) == []


def test_a_disabled_schedule_does_not_fire(local):
    create(local, "off", at(local.clock.now() + timedelta(minutes=1)), State="DISABLED")

    assert local.advance(120)["fired"] == 0

    assert timer_runs(local) == 0
    assert names(local) == ["off"]


def enable(scheduler, name: str) -> None:
    found = scheduler.get_schedule(Name=name)
    scheduler.update_schedule(
        Name=name,
        ScheduleExpression=found["ScheduleExpression"],
        FlexibleTimeWindow=found["FlexibleTimeWindow"],
        Target=found["Target"],
        State="ENABLED",
    )


def test_a_schedule_enabled_again_before_its_time_fires_in_its_minute(local, scheduler):
    create(local, "later", at(whole_minute(local, 3)), State="DISABLED")
    assert local.advance(60)["fired"] == 0

    enable(scheduler, "later")

    assert local.advance(60)["fired"] == 0  # its minute has not begun
    assert local.advance(180)["fired"] == 1
    assert timer_runs(local) == 1


def test_a_schedule_enabled_again_after_its_time_never_fires(local, scheduler):
    create(local, "later", at(whole_minute(local, 1)), State="DISABLED")
    assert local.advance(180)["fired"] == 0

    enable(scheduler, "later")  # an update whose at() is past, as a new one would be

    assert [local.advance(600)["fired"] for _ in range(2)] == [0, 0]
    assert timer_runs(local) == 0
    assert len(local.errors) == 1 and "already past" in local.errors[0]


@pytest.mark.parametrize("expression", ["rate(1 minute)", "cron(0/5 * * * ? *)"])
def test_a_recurring_schedule_never_fires_and_is_reported_once(local, expression):
    create(local, "recurring", expression)

    fired = [local.advance(600)["fired"] for _ in range(3)]

    assert fired == [0, 0, 0]
    assert timer_runs(local) == 0
    assert local.errors == [
        f"schedule default/recurring: {expression} is not emulated by the local scheduler "
        "(it fires one-time at() schedules only); this schedule will not fire"
    ]


def test_due_schedules_fire_oldest_first(local):
    now = local.clock.now()
    for name, minutes in (("second", 2), ("third", 3), ("first", 1)):
        when = at(now + timedelta(minutes=minutes))
        create(local, name, when, request=f"{name}-request", ActionAfterCompletion="DELETE")
    seen: list[str] = []
    invoke = local.host.invoke

    def spy(function: str, event: Any) -> Any:
        seen.append(event["request_id"])
        return invoke(function, event)

    local.host.invoke = spy

    assert local.advance(600)["fired"] == 3

    assert seen == ["first-request", "second-request", "third-request"]


# --- when inside its minute: Scheduler's "60 second precision" ----------------------------


def test_schedules_fire_at_moments_inside_their_minute_and_not_before(stopped):
    local = stopped()
    minute = whole_minute(local, 2)
    for n in range(6):
        create(local, f"timer-{n}", at(minute), request=f"request-{n}")
    seen = timer_clock(local)

    moments = sorted(local.fire_times().values())

    assert len(moments) == 6
    assert all(minute <= m <= minute + timedelta(seconds=59) for m in moments)
    # Not all at the start of the minute: a design counting on that would be lucky.
    assert len(set(moments)) > 1, moments
    before = (moments[0] - local.clock.now()).total_seconds() - 1
    assert local.advance(before)["fired"] == 0  # a second before the first moment
    assert seen == []
    local.advance(60)
    assert seen == moments  # each handler saw the clock Scheduler fired it at


@pytest.mark.parametrize("seed", range(8))
def test_advancing_a_whole_minute_past_the_at_time_always_fires_it(stopped, seed):
    local = stopped(seed)
    when = local.clock.now() + timedelta(minutes=3, seconds=17)
    create(local, "timer", at(when))

    to_at = (when.replace(microsecond=0) - local.clock.now()).total_seconds()
    assert local.advance(to_at + 60)["fired"] == 1


def test_the_seconds_of_an_at_time_do_not_keep_it_from_firing_early_in_its_minute(stopped):
    local = stopped()
    local.schedule_moment = lambda name, earliest, latest: earliest
    minute = whole_minute(local, 2)
    create(local, "timer", at(minute + timedelta(seconds=40)))
    seen = timer_clock(local)

    local.advance((minute - local.clock.now()).total_seconds())

    # "if you set your schedule to run at 1:00, it will invoke the target API between
    # 1:00:00 and 1:00:59": 40 s before the at() written, as Scheduler may.
    assert seen == [minute]


def test_the_moment_hook_is_held_inside_the_window(stopped):
    local = stopped()
    asked: list[tuple[str, datetime, datetime]] = []

    def far_too_late(name: str, earliest: datetime, latest: datetime) -> datetime:
        asked.append((name, earliest, latest))
        return latest + timedelta(hours=1)

    local.schedule_moment = far_too_late
    minute = whole_minute(local, 2)
    create(local, "timer", at(minute))

    assert local.fire_times() == {"default/timer": minute + timedelta(seconds=59)}
    assert asked == [("default/timer", minute, minute + timedelta(seconds=59))]


def test_a_flexible_time_window_fires_up_to_its_width_after_the_at_time(stopped):
    local = stopped()
    local.schedule_moment = lambda name, earliest, latest: latest
    minute = whole_minute(local, 2)
    create(
        local,
        "flexible",
        at(minute),
        FlexibleTimeWindow={"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15},
    )

    assert local.advance((minute - local.clock.now()).total_seconds() + 14 * 60)["fired"] == 0
    assert local.advance(60)["fired"] == 1  # 15 minutes after the at() time
    assert timer_runs(local) == 1


def test_a_flexible_window_by_default_fires_somewhere_inside_it(stopped):
    local = stopped(seed=3)
    minute = whole_minute(local, 2)
    create(
        local,
        "flexible",
        at(minute),
        FlexibleTimeWindow={"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15},
    )

    [fires_at] = local.fire_times().values()

    assert minute <= fires_at <= minute + timedelta(minutes=15)


@pytest.mark.parametrize("ago", [timedelta(minutes=5), timedelta(seconds=1)])
def test_an_at_time_already_past_when_created_never_fires(stopped, ago):
    local = stopped()
    create(local, "late", at(local.clock.now() - ago), ActionAfterCompletion="DELETE")

    assert [local.advance(600)["fired"] for _ in range(2)] == [0, 0]

    assert timer_runs(local) == 0
    assert names(local) == ["late"]  # it stays, never completed, as it would on AWS
    [problem] = local.errors  # reported once, not on every pump
    assert problem.startswith("schedule default/late: at(")
    assert "already past" in problem


def test_fire_times_only_looks(stopped):
    local = stopped()
    minute = whole_minute(local, 1)
    create(local, "timer", at(minute))
    [fires_at] = local.fire_times().values()
    local.clock.advance((fires_at - local.clock.now()).total_seconds())  # the clock alone

    assert local.fire_times() == {"default/timer": fires_at}
    assert local.pending() == [] and timer_runs(local) == 0
    assert local.pump() == 1
    assert local.fire_times() == {} and timer_runs(local) == 1
