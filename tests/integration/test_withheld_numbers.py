"""Withheld numbers, the Lambda side: a call with no usable caller ID (no CustomerEndpoint, no
address, "anonymous", empty) is answered, not an error (an error would take the flow's error
branch, "unavailable"). The hotline says to call again with the number shown and stores,
publishes and texts nothing; the benefits line answers the original contract's -1, marked
`withheld`, and looks nothing up. Connect's event shape: tests/events (= ../shared/fixtures)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from hotline_core import benefits, messages
from hotline_core.call import request_call
from hotline_core.connect import ConnectContactEvent
from hotline_core.directory import parse_directory
from tests.conftest import MIZUKI, ROOT, TAKUMI, load_event

WITHHELD_JA = "番号を通知しておかけ直しください。先頭に186をつけると通知されます。"


def no_endpoint(data: dict[str, Any]) -> None:
    del data["CustomerEndpoint"]


def null_endpoint(data: dict[str, Any]) -> None:
    data["CustomerEndpoint"] = None


def no_address(data: dict[str, Any]) -> None:
    del data["CustomerEndpoint"]["Address"]


def address(value: str | None) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["CustomerEndpoint"]["Address"] = value

    return change


WITHHELD = {
    "no CustomerEndpoint": no_endpoint,
    "CustomerEndpoint null": null_endpoint,
    "no Address": no_address,
    "Address null": address(None),
    "anonymous": address("anonymous"),
    "Anonymous": address("Anonymous"),
    "empty": address(""),
    "blank": address("  "),
}


def withheld_event(form: str, dialled: str | None = None, **parameters: str) -> dict[str, Any]:
    event = load_event("connect-contact-flow-event.json")
    data = event["Details"]["ContactData"]
    if dialled:
        data["SystemEndpoint"]["Address"] = dialled
    event["Details"]["Parameters"] = parameters
    WITHHELD[form](data)
    return event


# --- the event model and the use cases -----------------------------------------------------


@pytest.mark.parametrize("form", WITHHELD)
def test_each_withheld_form_parses_as_withheld(form):
    contact = ConnectContactEvent.parse(withheld_event(form))

    assert contact.withheld and contact.caller == ""


def test_a_shown_number_is_not_withheld():
    contact = ConnectContactEvent.parse(load_event("connect-contact-flow-event.json"))

    assert not contact.withheld and contact.caller == "+819011112222"


class Untouchable:
    """A store and a bus that fail the test if anything is read, written or published."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a withheld call touched {name}")


def test_the_hotline_use_case_tells_a_withheld_caller_and_touches_nothing():
    directory = parse_directory(
        json.dumps([{"name": "タ", "phone": TAKUMI}, {"name": "ミ", "phone": MIZUKI}])
    )
    answer = request_call(
        directory=directory,
        caller_phone="",
        hotline_number="+815012340001",
        request_id="c-1",
        now=None,  # type: ignore[arg-type]
        answer_window=None,  # type: ignore[arg-type]
        link_base_url="https://h.example",
        store=Untouchable(),  # type: ignore[arg-type]
        bus=Untouchable(),  # type: ignore[arg-type]
        guard=Untouchable(),  # type: ignore[arg-type]
    )

    assert answer.as_connect_map()["registered"] == "false"
    assert answer.prompt == messages.text("prompt_withheld", "ja") == WITHHELD_JA
    assert answer.outcome == "withheld" and not answer.created


def test_the_withheld_prompt_exists_in_english_too():
    assert "withheld" in messages.text("prompt_withheld", "en")


def test_the_benefits_use_cases_answer_minus_one_withheld_and_look_nothing_up():
    assert benefits.member_answer("", Untouchable()) == {"memberId": "-1", "withheld": "true"}
    assert benefits.member_answer("", Untouchable(), tries=0) == {
        "memberId": "-1",
        "withheld": "true",
    }
    answer = benefits.request_benefit(
        phone="",
        pin="1234",
        contact_id="c-1",
        now=None,  # type: ignore[arg-type]
        members=Untouchable(),
        benefits=Untouchable(),
        guard=Untouchable(),
        bus=Untouchable(),
    )
    assert answer.as_connect_map() == {"result": "Fail"}


# --- in-process: the real handlers, provisioned from the template in moto -------------------


def everything(local) -> dict[str, Any]:
    db = local.client("dynamodb")
    items = {name: db.scan(TableName=name)["Items"] for name in db.list_tables()["TableNames"]}
    return {"tables": items, "events": local.events(), "sms": local.sms()}


@pytest.fixture
def stack():
    from hotline_tools.local.engine import LocalHotline

    local = LocalHotline(
        root=ROOT, members=json.dumps([{"phone": TAKUMI, "member_id": "M001"}]).encode()
    ).start()
    try:
        yield local
    finally:
        local.stop()


def test_the_handlers_answer_every_withheld_form_and_change_nothing(stack):
    hotline, line = stack.lines["hotline"], stack.lines["benefits"]
    before = everything(stack)
    for form in WITHHELD:
        for parameters in ({}, {"asked": "choice", "choice": "1", "tries": "0"}):
            answer = stack.host.invoke(
                "CallRequestFunction", copy.deepcopy(withheld_event(form, hotline, **parameters))
            )
            assert answer["registered"] == "false", form
            assert answer["prompt"] == WITHHELD_JA, form
            assert answer["step"] == "done", form
        member = stack.host.invoke(
            "BenefitRequestFunction", withheld_event(form, line, cmd="getMemberId")
        )
        assert member == {"memberId": "-1", "withheld": "true"}, form
        sent = stack.host.invoke(
            "BenefitRequestFunction", withheld_event(form, line, cmd="sendSms", pinCode="1234")
        )
        assert sent["result"] == "Fail", form
    stack.pump()
    assert everything(stack) == before  # nothing stored, nothing published, nothing texted
    assert stack.handler_errors == ()
