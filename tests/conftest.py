"""Shared test setup: no test ever reaches AWS (fake credentials; moto answers in-process), and
real payload shapes come from tests/events/ through one loader. No retry or timeout setting
here: every client sets its own in code, so tests run what Lambda runs."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hotline_tools.local.engine import LocalClock

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "tests" / "events"

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "ap-northeast-1",
        "AWS_REGION": "ap-northeast-1",
        "POWERTOOLS_METRICS_NAMESPACE": "Hotline",
        "POWERTOOLS_SERVICE_NAME": "hotline",
    }
)
os.environ.pop("AWS_PROFILE", None)


def load_event(name: str) -> Any:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


@pytest.fixture
def local():
    """The whole hotline in-process (template provisioned in moto, real handlers)."""
    from hotline_tools.local.engine import LocalHotline

    hotline = LocalHotline(root=ROOT).start()
    try:
        yield hotline
    finally:
        hotline.stop()


@pytest.fixture
def server():
    """The local runtime serving HTTP on a free port of 127.0.0.1 (`server.url`)."""
    from hotline_tools.local.server import LocalServer

    running = LocalServer(port=0).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def hook():
    """Installs botocore event hooks (`hook(client, "before-call.events.PutEvents", fn)`),
    removed again when the test ends: fault injection at the botocore level."""
    installed = []

    def install(client, event, handler):
        client.meta.events.register(event, handler)
        installed.append((client, event, handler))
        return handler

    yield install
    for client, event, handler in installed:
        client.meta.events.unregister(event, handler)


@pytest.fixture
def log_lines():
    """Every JSON line the handlers' Powertools logger writes during the test."""
    import io

    from hotline_core.runtime.observability import logger

    buffer = io.StringIO()
    handler = logger.registered_handler
    previous = handler.setStream(buffer)  # type: ignore[attr-defined]

    def lines() -> list[dict[str, Any]]:
        return [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]

    try:
        yield lines
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]


def request_item(local, request_id: str) -> dict[str, Any] | None:
    """The stored request: `REQ#<contact id>` points at the item keyed by its link."""
    table = local.stack.output("RequestsTableName")
    db = local.client("dynamodb")
    pointer = db.get_item(TableName=table, Key={"pk": {"S": f"REQ#{request_id}"}}).get("Item")
    if pointer is None:
        return None
    key = {"pk": {"S": f"LINK#{pointer['link_hash']['S']}"}}
    found: dict[str, Any] | None = db.get_item(TableName=table, Key=key).get("Item")
    return found


class StoppedClock(LocalClock):
    """The local runtime's clock, moving only when advanced and from a whole second: a model's
    deadlines are exact, and however slow the machine, nothing drifts across an answer window
    (a waiting request never times out by itself in the middle of a run)."""

    def __init__(self) -> None:
        super().__init__()
        self._start = datetime.now(UTC).replace(microsecond=0)

    def now(self) -> datetime:
        with self._lock:
            return self._start + self._offset
