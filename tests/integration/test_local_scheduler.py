"""The local scheduler fires schedules made through the Scheduler API as EventBridge Scheduler
does: a one-time at() schedule fires once when the local clock reaches it, and is deleted
after only when its ActionAfterCompletion says DELETE; a disabled one does not fire; a rate()
or cron() schedule is reported, never fired at a guessed time."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

NO_SUCH_REQUEST = {"request_id": "no-such-request"}


@pytest.fixture
def scheduler(local):
    return local.client("scheduler")


def create(local, name: str, expression: str, *, request: str = "", **options: Any) -> None:
    """A schedule targeting the answer timer, as any Scheduler API caller would make it."""
    timer = local.stack.functions["AnswerTimerFunction"]
    given = {"request_id": request} if request else NO_SUCH_REQUEST
    local.client("scheduler").create_schedule(
        Name=name,
        ScheduleExpression=expression,
        ScheduleExpressionTimezone="UTC",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": timer.arn,
            "RoleArn": "arn:aws:iam::123456789012:role/scheduler",
            "Input": json.dumps(given),
        },
        **options,
    )


def at(moment: datetime) -> str:
    return f"at({moment:%Y-%m-%dT%H:%M:%S})"


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
    when = at(local.clock.now() + timedelta(minutes=1))
    create(local, "deleted", when, ActionAfterCompletion="DELETE")

    assert local.advance(30)["fired"] == 0  # not yet due
    assert local.advance(60)["fired"] == 1
    assert local.advance(120)["fired"] == 0

    assert timer_runs(local) == 1
    assert names(local) == []


def test_a_disabled_schedule_does_not_fire(local):
    create(local, "off", at(local.clock.now() + timedelta(minutes=1)), State="DISABLED")

    assert local.advance(120)["fired"] == 0

    assert timer_runs(local) == 0
    assert names(local) == ["off"]


def test_a_schedule_enabled_again_fires_when_due(local, scheduler):
    create(local, "later", at(local.clock.now() + timedelta(minutes=1)), State="DISABLED")
    assert local.advance(120)["fired"] == 0
    found = scheduler.get_schedule(Name="later")

    scheduler.update_schedule(
        Name="later",
        ScheduleExpression=found["ScheduleExpression"],
        FlexibleTimeWindow=found["FlexibleTimeWindow"],
        Target=found["Target"],
        State="ENABLED",
    )

    assert local.advance(0)["fired"] == 1
    assert timer_runs(local) == 1


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
