"""Schedules fire in real time when nobody advances the local runtime's clock."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from hotline_tools.local.server import LocalServer
from tests.conftest import MIZUKI, TAKUMI
from tests.integration.project_copy import TIMED_OUT, post_json


def wait_for(predicate: Callable[[], Any], *, limit: float) -> Any:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if found := predicate():
            return found
        time.sleep(0.25)
    return None


def test_a_schedule_fires_in_real_time_when_nobody_advances_the_clock():
    server = LocalServer(port=0).start()  # its ticker runs in the background
    try:
        status, _ = post_json(server.url + "/_local/calls", {"from": TAKUMI})
        assert status == 200
        assert len(server.engine.sms(MIZUKI)) == 1
        # The answer timer, brought forward to two seconds from now (the shortest window the
        # template allows would cost a test minutes of real time).
        scheduler = server.engine.client("scheduler")
        [summary] = scheduler.list_schedules()["Schedules"]
        timer = scheduler.get_schedule(Name=summary["Name"], GroupName=summary["GroupName"])
        # Scheduler may fire it anywhere in the minute of its at(); take the earliest moment,
        # or the test would wait up to a minute of real time.
        server.engine.schedule_moment = lambda name, earliest, latest: earliest
        soon = server.engine.clock.now() + timedelta(seconds=2)
        scheduler.update_schedule(
            Name=timer["Name"],
            GroupName=timer["GroupName"],
            ScheduleExpression=f"at({soon:%Y-%m-%dT%H:%M:%S})",
            ScheduleExpressionTimezone="UTC",
            FlexibleTimeWindow=timer["FlexibleTimeWindow"],
            Target=timer["Target"],
        )

        def timed_out() -> list[dict[str, str]]:
            with urllib.request.urlopen(server.url + "/_local/sms", timeout=30) as response:
                sent = json.loads(response.read())
            return [m for m in sent if m["to"] == TAKUMI and TIMED_OUT in m["body"]]

        told = wait_for(timed_out, limit=60)

        assert told, "the answer timer did not fire in real time"
        assert server.engine.clock.offset == timedelta(0)  # only real time passed
        assert [e["detail-type"] for e in server.engine.events()] == ["CallRequested", "TimedOut"]
        assert server.engine.errors == []
    finally:
        server.stop()
