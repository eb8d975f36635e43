"""The flows' warm-up: each line's first action invokes its Lambda ASYNCHRONOUSLY with
`warm=1` while the greeting plays. The warm-up builds the clients (and reads the directory or
the PIN key), answers nothing the flow uses, and stores, publishes, texts and counts nothing;
Lambda never retries it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hotline_core.pins import hash_pin
from hotline_tools.local.engine import LocalHotline
from tests.conftest import MIZUKI, ROOT, TAKUMI
from tests.unit.template_doc import RESOURCES

MEMBER = "+819011112222"
MEMBERS = json.dumps([{"phone": MEMBER, "member_id": "M001"}]).encode()
BENEFITS = b"pin,campaign_url\n246810,https://example.jp/campaign/spring\n"
DIRECTORY = [
    {"name": "Takumi", "phone": TAKUMI, "pin_hash": hash_pin("2468")},
    {"name": "Mizuki", "phone": MIZUKI},
]


@pytest.fixture
def local(hotline_with):
    return hotline_with(DIRECTORY, members=MEMBERS, benefits=BENEFITS)


def record_invocations(local: LocalHotline) -> list[tuple[str, dict[str, Any], Any]]:
    seen: list[tuple[str, dict[str, Any], Any]] = []
    invoke = local.host.invoke

    def recording(logical_id: str, event: Any) -> Any:
        result = invoke(logical_id, event)
        seen.append((logical_id, event, result))
        return result

    local.host.invoke = recording  # type: ignore[method-assign]
    return seen


def warm_ups(seen: list[tuple[str, dict[str, Any], Any]]) -> list[tuple[str, Any]]:
    return [
        (logical_id, result)
        for logical_id, event, result in seen
        if isinstance(event, dict)
        and event.get("Details", {}).get("Parameters", {}).get("warm") == "1"
    ]


@pytest.mark.parametrize(
    ("line", "caller", "digits", "function"),
    [
        ("hotline", TAKUMI, "2468#", "CallRequestFunction"),
        ("benefits", MEMBER, "246810#", "BenefitRequestFunction"),
    ],
)
def test_each_line_warms_its_function_once_and_the_call_goes_on_as_before(
    local, line, caller, digits, function
):
    seen = record_invocations(local)

    answer = local.call(caller, line=line, digits=digits)

    assert answer["async_invocations"] == 1
    assert warm_ups(seen) == [(function, {"warmed": "true"})]
    assert local.handler_errors == ()
    assert local.pending() == []
    # The call itself did what it always did: one text each time, none from the warm-up.
    assert len(local.sms()) == 1


def test_a_warm_up_alone_stores_publishes_and_texts_nothing(local):
    seen = record_invocations(local)
    event = json.loads(
        (ROOT / "tests" / "events" / "connect-contact-flow-event.json").read_text("utf-8")
    )
    event["Details"]["Parameters"] = {"warm": "1"}
    event["Details"]["ContactData"]["CustomerEndpoint"]["Address"] = TAKUMI

    for function in ("CallRequestFunction", "BenefitRequestFunction"):
        assert local.host.invoke(function, event) == {"warmed": "true"}
    local.pump()

    assert len(seen) == 2
    assert local.events() == []
    assert local.sms() == []
    dynamodb = local.client("dynamodb")
    written = [
        name
        for name in dynamodb.list_tables()["TableNames"]
        if not name.endswith(("MembersTable", "BenefitsTable"))  # seeded by the fixture
    ]
    assert len(written) >= 3
    for name in written:
        assert dynamodb.scan(TableName=name)["Items"] == [], name


@pytest.mark.parametrize("function", ["CallRequestFunction", "BenefitRequestFunction"])
def test_lambda_never_retries_a_warm_up_and_drops_it_when_a_minute_old(function):
    config = RESOURCES[function]["Properties"]["EventInvokeConfig"]
    assert config == {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60}
