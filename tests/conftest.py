"""Shared test setup: no test ever reaches AWS (fake credentials; moto answers in-process), and
real payload shapes come from tests/events/ through one loader. No retry or timeout setting
here: every client sets its own in code, so tests run what Lambda runs. The people, the answer
form and the small readers of the local runtime's state the tests share are defined here once
and imported from `tests.conftest`."""

from __future__ import annotations

import http.client
import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hotline_tools.local.engine import LocalClock

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "tests" / "events"

# The two people of tests/events/phonenumber.json (the local runtime's default directory too)
# and two more the circle tests add; the hotline numbers of two circles.
TAKUMI, MIZUKI = "+819011112222", "+817033334444"
NAMES = {TAKUMI: "タクミ", MIZUKI: "ミズキ"}
HARUTO, AOI = "+818055556666", "+819077778888"
LINE_A, LINE_B = "+815012340001", "+815012340009"
# The answer page's form: its media type, and the headers of a POST of it.
FORM_TYPE = "application/x-www-form-urlencoded"
FORM = {"content-type": FORM_TYPE}

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


def link_in(body: str) -> str:
    """The link in a text."""
    match = re.search(r"https?://\S+", body)
    assert match, f"no link in SMS {body!r}"
    return match.group(0)


def link_path(body: str) -> str:
    """The path of the link in a text, as the runtime's HTTP API routes it."""
    return "/" + link_in(body).split("/", 3)[3]


def http_json(server, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One request to a running local runtime (a body given as bytes is sent as it is, any
    other as JSON); its status and its JSON answer."""
    data = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request(method, path, body=data, headers={"Content-Length": str(len(data))})
    response = connection.getresponse()
    status, answer = response.status, json.loads(response.read())
    connection.close()
    return status, answer


def detail_types(local) -> list[str]:
    return [e["detail-type"] for e in local.events()]


def schedules(local) -> list[dict[str, Any]]:
    return list(local.client("scheduler").list_schedules()["Schedules"])


def claims(local) -> list[str]:
    """The once-only claims the consumers hold, sorted."""
    table = local.stack.functions["InviteReceiverFunction"].environment["IDEMPOTENCY_TABLE_NAME"]
    return sorted(i["id"]["S"] for i in local.client("dynamodb").scan(TableName=table)["Items"])


def forget_claims(local) -> None:
    """As if the once-only records had expired: only the replay guard can stop a replay now."""
    table = local.stack.functions["InviteReceiverFunction"].environment["IDEMPOTENCY_TABLE_NAME"]
    db = local.client("dynamodb")
    for item in db.scan(TableName=table)["Items"]:
        db.delete_item(TableName=table, Key={"id": item["id"]})


def status_of(local, request_id: str) -> str:
    return request_item(local, request_id)["status"]["S"]


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


@dataclass
class HandClock:
    """A clock a test moves by hand (`clock.now = …`); called, it tells the time."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class RecordedTexts:
    """An SmsSender that keeps every text, in order; the next `fail` sends raise, as a
    provider that is down does."""

    sent: list[tuple[str, str]] = field(default_factory=list)
    fail: int = 0

    def send(self, to: str, body: str) -> None:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("the SMS provider is down")
        self.sent.append((to, body))


def call_requested(request: Any, link: Any, base: str = "https://hotline.example") -> Any:
    """The `CallRequested` a stored request and its link announce (the link under `base`)."""
    from hotline_core.events import CallRequested
    from hotline_core.requests import link_url

    return CallRequested(
        request_id=request.request_id,
        caller=request.caller,
        receiver=request.receiver,
        hotline_number=request.hotline_number,
        requested_at=request.requested_at,
        answer_by=request.answer_by,
        link=link_url(base, link.token),
    )


@pytest.fixture
def hotline_with() -> Any:
    """Start an in-process hotline on a directory (a list of people), with any other
    `LocalHotline` option (members, benefits, answer_window…); each is stopped after the test."""
    from hotline_tools.local.engine import LocalHotline

    started: list[LocalHotline] = []

    def start(directory: list[dict[str, Any]], **options: Any) -> LocalHotline:
        hotline = LocalHotline(root=ROOT, directory=json.dumps(directory).encode(), **options)
        started.append(hotline.start())
        return hotline

    yield start
    for hotline in started:
        hotline.stop()
