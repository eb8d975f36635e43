"""`hotline events tail`: the stack's event log group (on the moto stack of
tests/integration/operator_stack.py), once or following it, and `--local` on a running local
runtime; each event once, never a phone number.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import boto3

from hotline_tools import operate
from hotline_tools.cli import app
from tests.conftest import MIZUKI, TAKUMI
from tests.integration import operator_stack
from tests.integration.operator_stack import STACK, call, runner

# Shared fixtures: pytest finds a fixture by its name in the test module.
stack = operator_stack.stack


def test_events_tail_local_prints_type_and_request_id_never_a_phone(server):
    contact = call(server)

    result = runner.invoke(app, ["events", "tail", "--local", server.url, "--since", "1h"])

    assert result.exit_code == 0, result.output
    assert "CallRequested" in result.output
    assert contact in result.output
    for phone in (TAKUMI, MIZUKI):
        assert phone not in result.output


# --- events tail on AWS ------------------------------------------------------------------
def test_events_tail_reads_the_event_log_group(stack):
    logs = boto3.client("logs")
    group = stack["EventLogGroupName"]
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    now = int(time.time() * 1000)
    # What the log rule's input transformer writes: ids and types, no phone numbers.
    record = {
        "detail-type": "Accepted",
        "time": "2026-01-01T00:00:00Z",
        "id": "e-1",
        "request_id": "req-42",
        "member_id": "",
        "replay-name": "",
    }
    logs.put_log_events(
        logGroupName=group,
        logStreamName="s",
        logEvents=[{"timestamp": now, "message": json.dumps(record)}],
    )

    result = runner.invoke(app, ["events", "tail", "--stack", STACK, "--since", "5m"])

    assert result.exit_code == 0, result.output
    assert "Accepted" in result.output and "req-42" in result.output
    assert "replay" not in result.output


def log_record(group: str, stream: str, request_id: str) -> None:
    record = {"detail-type": "Accepted", "time": "2026-01-01T00:00:00Z", "request_id": request_id}
    boto3.client("logs").put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": int(time.time() * 1000), "message": json.dumps(record)}],
    )


def polls_then_stop(*between: Any) -> tuple[list[float], Any]:
    """A stand-in for operate.pause: at the n-th pause it runs `between[n]` (new events
    arrive), after the last it stops the loop as Ctrl-C would. Returns the pauses seen."""
    paused: list[float] = []

    def pause(seconds: float) -> None:
        paused.append(seconds)
        if len(paused) > len(between):
            raise KeyboardInterrupt
        between[len(paused) - 1]()

    return paused, pause


def test_events_tail_follow_prints_new_log_records_once_each(stack, monkeypatch):
    group = stack["EventLogGroupName"]
    boto3.client("logs").create_log_stream(logGroupName=group, logStreamName="s")
    log_record(group, "s", "req-before")
    paused, pause = polls_then_stop(
        lambda: log_record(group, "s", "req-first-poll"),
        lambda: None,  # nothing new: nothing printed again
    )
    monkeypatch.setattr(operate, "pause", pause)

    result = runner.invoke(app, ["events", "tail", "--stack", STACK, "-f", "--poll", "7"])

    assert result.exit_code == 0, result.output  # Ctrl-C ends a follow cleanly
    assert paused == [7, 7, 7]
    ids = re.findall(r"req-[a-z-]+", result.output)
    assert ids == ["req-before", "req-first-poll"]


def test_events_tail_follow_local_prints_new_events_once_each(server, monkeypatch):
    call(server)
    before = len(server.engine.events())
    paused, pause = polls_then_stop(lambda: call(server, MIZUKI), lambda: None)
    monkeypatch.setattr(operate, "pause", pause)

    result = runner.invoke(app, ["events", "tail", "--local", server.url, "--follow"])

    assert result.exit_code == 0, result.output
    assert len(paused) == 3
    events = server.engine.events()
    assert len(events) > before  # Mizuki's call, while following, added some
    kinds = "|".join(operate.EVENT_TYPES)
    # Lines that start with the event's time (the handlers' own log lines are JSON).
    shown = re.findall(rf"^\d{{4}}-\S+\s+({kinds})\b", result.output, re.MULTILINE)
    assert shown == [e["detail-type"] for e in events]  # each once, in order, none again
    for phone in (TAKUMI, MIZUKI):
        assert phone not in result.output


def test_events_tail_says_when_there_is_nothing(stack):
    result = runner.invoke(app, ["events", "tail", "--stack", STACK, "--since", "2h"])

    assert result.exit_code == 0, result.output
    assert "no events in the last 2h" in result.output
