"""What the fuzz tests share: the hotline they fuzz (on a stopped clock; a circle whose first
entry has a PIN, with the benefits line's tables, for the Connect fuzz), what "nothing changed"
means (every table item, event, SMS and schedule), the waiting request the link fuzz aims at,
and what a clean rejection of a payload is. Each Hypothesis test tries FUZZ_EXAMPLES inputs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from pydantic import ValidationError

from hotline_core.pins import hash_pin
from hotline_tools.local.engine import LocalHotline
from tests.conftest import HARUTO, MIZUKI, ROOT, TAKUMI, StoppedClock, request_item

STRANGER = "+819055556666"
HOTLINE_PIN = "2468"
BENEFIT_PIN = "98765432"
CAMPAIGN = "https://example.com/c"
PIN_HASH = hash_pin(HOTLINE_PIN)
# Takumi's entry carries a PIN; three people, so the flow also asks who to call.
CIRCLE = [
    {"name": "タクミ", "phone": TAKUMI, "pin_hash": PIN_HASH},
    {"name": "ミズキ", "phone": MIZUKI},
    {"name": "ハルト", "phone": HARUTO},
]
NAMES = {p["phone"]: p["name"] for p in CIRCLE}
FUZZ_EXAMPLES = 150
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def start_hotline(**kwargs: Any) -> LocalHotline:
    local = LocalHotline(root=ROOT, **kwargs)
    local.clock = StoppedClock()
    return local.start()


@pytest.fixture
def hotline():
    local = start_hotline()
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture
def pin_hotline():
    """A circle of three whose first entry has a PIN, and the benefits line's tables."""
    local = start_hotline(
        directory=json.dumps(CIRCLE, ensure_ascii=False).encode(),
        members=json.dumps([{"phone": TAKUMI, "member_id": "M-1"}]).encode(),
        benefits=json.dumps([{"pin": BENEFIT_PIN, "campaign_url": CAMPAIGN}]).encode(),
    )
    try:
        yield local
    finally:
        local.stop()


# --- what "nothing changed" means ---------------------------------------------------------
def tables(local) -> dict[str, list[str]]:
    db = local.client("dynamodb")
    return {
        name: sorted(
            json.dumps(item, sort_keys=True)
            for page in db.get_paginator("scan").paginate(TableName=name)
            for item in page["Items"]
        )
        for name in db.list_tables()["TableNames"]
    }


def snapshot(local) -> dict[str, Any]:
    """Every table item, every event the bus took, every SMS, every pending schedule."""
    pages = local.client("scheduler").get_paginator("list_schedules").paginate()
    return {
        "tables": tables(local),
        "events": len(local.events()),
        "sms": len(local.sms()),
        "schedules": sorted(s["Name"] for page in pages for s in page["Schedules"]),
    }


def attempts_table(local) -> str:
    return local.stack.functions["CallRequestFunction"].environment["ATTEMPTS_TABLE_NAME"]


def empty_table(local, table: str) -> None:
    db = local.client("dynamodb")
    keys = [k["AttributeName"] for k in db.describe_table(TableName=table)["Table"]["KeySchema"]]
    for page in db.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            db.delete_item(TableName=table, Key={k: item[k] for k in keys})


def forget_pin_failures(local) -> None:
    """Each input meets an unlocked phone: a lockout from earlier wrong PINs would hide what
    the next input does."""
    empty_table(local, attempts_table(local))


def forget_settled_requests(local) -> None:
    """After a created request has been checked and has timed out, its items (and the
    consumers' once-only records) only slow down every later snapshot's scan."""
    consumer = local.stack.functions["InviteReceiverFunction"].environment
    empty_table(local, local.stack.output("RequestsTableName"))
    empty_table(local, consumer["IDEMPOTENCY_TABLE_NAME"])


def assert_unchanged_but_attempts(before, after, local, *, attempt_recorded: bool) -> None:
    """Nothing changed, except that a wrong PIN-shaped PIN is counted (and only then)."""
    table = attempts_table(local)
    assert (after["tables"][table] != before["tables"][table]) == attempt_recorded
    before["tables"].pop(table), after["tables"].pop(table)
    assert after == before


class Live:
    """The request the fuzz aims at: one that is waiting for its answer."""

    def __init__(self, local) -> None:
        self.local = local
        self.renew()

    def renew(self) -> None:
        answer = self.local.call(TAKUMI)
        self.request_id = answer["contact_id"]
        item = request_item(self.local, self.request_id)
        assert item is not None and item["status"]["S"] == "inquiry"
        (data,) = [
            e["detail"]["data"]
            for e in self.local.events()
            if e["detail-type"] == "CallRequested"
            and e["detail"]["data"]["request_id"] == self.request_id
        ]
        self.path = "/" + data["link"].split("/", 3)[3]

    def state(self) -> str:
        item = request_item(self.local, self.request_id)
        assert item is not None
        return item["status"]["S"] + "/" + item.get("reason", {}).get("S", "")


INPUT_MODELS = ("ConnectContactEvent", "TimerInput")


def clean_rejection(exc: Exception) -> bool:
    """The input model refusing the payload, or the benefits Lambda refusing an unknown
    `cmd`: the flow takes its error branch. Any other exception, also a ValidationError of
    something the handler builds later (an event), is a crash."""
    if isinstance(exc, ValidationError):
        return exc.title in INPUT_MODELS
    return type(exc).__name__ == "UnknownCommand"
