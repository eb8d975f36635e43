"""Fuzzing the Connect and Scheduler payloads: the parameters the contact flows really pass,
against a directory entry with a PIN; missing fields, wrong types. No crash: a clean rejection,
and nothing changes (no table item, no event, no SMS, no schedule) unless the input is exactly
a valid one, which then does exactly what it should.

Each test prints how many inputs it tried (run pytest with -s): the Connect parameter test
tries FUZZ_EXAMPLES (Hypothesis), the mutation tests every field of every base payload removed
and given each of 7 wrong values, one at a time.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import ValidationError

from hotline_core import messages
from hotline_core.pins import is_pin_shaped, pin_proof
from tests.conftest import HARUTO, MIZUKI, TAKUMI, load_event, request_item
from tests.integration import fuzzing
from tests.integration.fuzzing import (
    BENEFIT_PIN,
    CAMPAIGN,
    FUZZ,
    FUZZ_EXAMPLES,
    HOTLINE_PIN,
    NAMES,
    PIN_HASH,
    STRANGER,
    Live,
    assert_unchanged_but_attempts,
    clean_rejection,
    forget_pin_failures,
    forget_settled_requests,
    snapshot,
)

# The shared fixtures (pytest finds a fixture by its name in the module).
hotline, pin_hotline = fuzzing.hotline, fuzzing.pin_hotline


# --- Connect ---------------------------------------------------------------------------------
def contact_event(caller: str, dialled: str, parameters: dict[str, Any]) -> dict[str, Any]:
    event = load_event("connect-contact-flow-event.json")
    data = event["Details"]["ContactData"]
    data["ContactId"] = data["InitialContactId"] = data["PreviousContactId"] = str(uuid.uuid4())
    data["CustomerEndpoint"]["Address"] = caller
    data["SystemEndpoint"]["Address"] = dialled
    event["Details"]["Parameters"] = parameters
    return event


def real_proof(event: dict[str, Any]) -> str:
    return pin_proof(
        PIN_HASH, contact_id=event["Details"]["ContactData"]["ContactId"], phone=TAKUMI
    )


def caller_of(event: dict[str, Any]) -> str | None:
    """The caller's address; None when the event has none (a withheld number)."""
    return (event["Details"]["ContactData"].get("CustomerEndpoint") or {}).get("Address")


def expect_hotline(event: dict[str, Any]) -> dict[str, Any]:
    """What CallRequestFunction must do with this (well-formed) event, from the rules: an
    entry with a PIN needs the right PIN (asked for, typed) or this call's proof of it; then
    a valid menu digit (`asked=choice`, 1 or 2) creates the request; nothing else does."""
    caller = caller_of(event)
    params = event["Details"].get("Parameters") or {}  # absent: the first invocation
    asked, pin = params.get("asked", ""), params.get("pin", "")
    if caller not in NAMES:
        return {"registered": "false", "create": False, "attempt": False, "proof": ""}
    has_pin = caller == TAKUMI
    proof_ok = has_pin and params.get("pin_proof", "") == real_proof(event)
    pin_ok = has_pin and not proof_ok and asked == "pin" and pin == HOTLINE_PIN
    through = not has_pin or proof_ok or pin_ok
    return {
        "registered": "true",
        "create": through and asked == "choice" and params.get("choice") in ("1", "2"),
        "attempt": has_pin and not through and asked == "pin" and is_pin_shaped(pin),
        "proof": real_proof(event) if has_pin and through else "",
        "receiver": [p for p in NAMES if p != caller][int(params.get("choice") or 1) - 1]
        if through and params.get("choice") in ("1", "2")
        else None,
    }


def expect_benefits(event: dict[str, Any]) -> dict[str, Any]:
    caller = caller_of(event)
    params = event["Details"].get("Parameters") or {}  # absent: the first invocation
    cmd, pin = params.get("cmd", ""), params.get("pinCode", "")
    member = caller == TAKUMI
    return {
        "reject": cmd not in ("getMemberId", "sendSms"),
        "lookup": cmd == "getMemberId",
        "grant": cmd == "sendSms" and member and pin == BENEFIT_PIN,
        "attempt": cmd == "sendSms" and member and is_pin_shaped(pin) and pin != BENEFIT_PIN,
        "member": "M-1" if member else "-1",
        "withheld": caller is None or caller.strip().lower() in ("", "anonymous"),
    }


def invoke_and_check(local, function: str, event: Any, counts: Counter) -> None:
    """One Connect invocation against the oracle above; raises on any difference."""
    forget_pin_failures(local)
    before = snapshot(local)
    try:
        answer = local.host.invoke(function, copy.deepcopy(event))
    except Exception as exc:
        if not clean_rejection(exc):
            raise
        local.pump()
        assert snapshot(local) == before, (function, event)
        counts["rejected"] += 1
        return
    local.pump()
    after = snapshot(local)
    # Connect takes a flat string map of less than 32 KB, or takes the error branch.
    assert isinstance(answer, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in answer.items()
    ), answer
    assert len(json.dumps(answer, ensure_ascii=False).encode()) < 32_000
    if function == "CallRequestFunction":
        want = expect_hotline(event)
        assert answer["registered"] == want["registered"], (answer, event)
        # A proof of the PIN comes only from the right PIN (or an earlier proof), and it
        # travels with the menu, the one step that needs it.
        proof = want["proof"] if answer["step"] == "choose" else ""
        assert answer["pin_proof"] == proof, (answer, event)
        if want["create"]:
            counts["created"] += 1
            request_id = event["Details"]["ContactData"]["ContactId"]
            name = NAMES[want["receiver"]]
            assert answer["prompt"] == messages.text("prompt_asking", "ja", receiver=name)
            item = request_item(local, request_id)
            assert item is not None and item["status"]["S"] == "inquiry"
            assert after["events"] == before["events"] + 1
            assert [m["to"] for m in local.sms()[before["sms"] :]] == [want["receiver"]]
            assert len(after["schedules"]) == len(before["schedules"]) + 1
            local.advance(3600)  # let it time out, so the next valid input makes a new one
            forget_settled_requests(local)
            return
        counts["attempts recorded" if want["attempt"] else "changed nothing"] += 1
        assert_unchanged_but_attempts(before, after, local, attempt_recorded=want["attempt"])
        return
    want = expect_benefits(event)
    assert not want["reject"], (answer, event)
    if want["lookup"]:
        counts["looked up"] += 1
        # A withheld number: the original contract's -1, marked for the flow's words.
        withheld = {"withheld": "true"} if want["withheld"] else {}
        assert answer == {"memberId": want["member"], **withheld}
        assert after == before
        return
    assert answer == {"result": "Success" if want["grant"] else "Fail"}, (answer, event)
    if want["grant"]:
        counts["granted"] += 1
        (event_,) = local.events()[before["events"] :]
        assert event_["detail-type"] == "BenefitRequested"
        sent = local.sms()[before["sms"] :]
        assert [(m["to"], CAMPAIGN in m["body"]) for m in sent] == [(TAKUMI, True)]
        # Two grants are two texts because they differ in time; the clock here only moves
        # when told to.
        local.advance(1)
        return
    counts["attempts recorded" if want["attempt"] else "changed nothing"] += 1
    assert_unchanged_but_attempts(before, after, local, attempt_recorded=want["attempt"])


odd_digits = ["١", "²", "０", "٣", "⑴", "1.0", "+1", "-1", " 1", "1 ", "01", "1e2", "0x1"]
huge = ["9" * 70_000, "x" * 70_000, "あ" * 20_000]
strange = ["", "\x00", "\ud800", "\udcff", "\u202e1234", "null", "None", "[]", "{}", "#", "*"]
junk_text = st.one_of(st.text(max_size=40), st.sampled_from(huge + strange + odd_digits))
pins = st.one_of(
    st.just(HOTLINE_PIN),
    st.just(BENEFIT_PIN),
    st.from_regex(r"[0-9]{4,8}", fullmatch=True),
    st.from_regex(r"(?:[0-9]{1,3}|[0-9]{9,12})", fullmatch=True),
    junk_text,
)
flow_parameters = st.fixed_dictionaries(
    {},
    optional={
        "asked": st.one_of(st.sampled_from(["pin", "choice", "PIN", "Choice", "menu"]), junk_text),
        "pin": pins,
        "choice": st.one_of(st.sampled_from(["1", "2", "3", "0", "9", "#", "12"]), junk_text),
        "tries": st.one_of(st.sampled_from(["0", "1", "2", "3", "99", "100"]), junk_text),
        "pin_proof": st.one_of(
            st.just("<real>"), st.from_regex(r"[0-9a-f]{32}", fullmatch=True), junk_text
        ),
        "cmd": st.one_of(
            st.sampled_from(["getMemberId", "sendSms", "sendsms", "getmemberid"]), junk_text
        ),
        "pinCode": pins,
        "registered": st.sampled_from(["true", "false"]),
        "step": st.sampled_from(["done", "pin", "choose"]),
    },
)
callers = st.sampled_from([TAKUMI, MIZUKI, HARUTO, STRANGER, "", "anonymous", "+81" + "9" * 40])


@pytest.mark.parametrize("function", ["CallRequestFunction", "BenefitRequestFunction"])
def test_the_parameters_the_flows_pass_are_rejected_unless_exactly_valid(pin_hotline, function):
    local = pin_hotline
    dialled = local.lines["hotline" if function == "CallRequestFunction" else "benefits"]
    counts: Counter = Counter()

    @FUZZ
    @given(caller=callers, parameters=flow_parameters)
    # Digits that are not 0-9 (DTMF has no others): every run tries these.
    @example(caller=MIZUKI, parameters={"asked": "choice", "choice": "²"})
    @example(caller=MIZUKI, parameters={"asked": "choice", "choice": "١"})
    @example(caller=TAKUMI, parameters={"asked": "pin", "pin": "٢٤٦٨"})
    @example(caller=TAKUMI, parameters={"tries": "²"})
    def probe(caller, parameters):
        event = contact_event(caller, dialled, parameters)
        if parameters.get("pin_proof") == "<real>":
            parameters["pin_proof"] = real_proof(event)
        counts["tried"] += 1
        invoke_and_check(local, function, event, counts)

    probe()
    assert counts["tried"] >= FUZZ_EXAMPLES and local.handler_errors == ()
    print(f"\nConnect fuzz, {function} parameters: {dict(counts)}")


WRONG = ("__delete__", None, 12345, [], {}, "", "x" * 5000, True)


def _mutations(make):
    """Every field of `make()` removed, and every field given each wrong value, one at a time;
    each on a fresh `make()` (a new contact id: Connect never reuses one)."""

    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                yield (*path, key)
                yield from walk(value, (*path, key))

    for path in list(walk(make(), ())):
        for replacement in WRONG:
            mutated = make()
            parent = mutated
            for key in path[:-1]:
                parent = parent[key]
            if replacement == "__delete__":
                del parent[path[-1]]
            else:
                parent[path[-1]] = replacement
            yield path, replacement, mutated


def connect_bases(local) -> list[tuple[str, Callable[[], dict[str, Any]]]]:
    """Each step of both flows, as Connect invokes it, each valid as it stands."""
    hotline, benefits = local.lines["hotline"], local.lines["benefits"]

    def choice() -> dict[str, Any]:
        event = contact_event(TAKUMI, hotline, {"asked": "choice", "choice": "1", "tries": "0"})
        event["Details"]["Parameters"]["pin_proof"] = real_proof(event)
        return event

    return [
        ("CallRequestFunction", lambda: contact_event(TAKUMI, hotline, {})),
        (
            "CallRequestFunction",
            lambda: contact_event(
                TAKUMI, hotline, {"asked": "pin", "pin": HOTLINE_PIN, "tries": "0"}
            ),
        ),
        ("CallRequestFunction", choice),
        (
            "BenefitRequestFunction",
            lambda: contact_event(TAKUMI, benefits, {"cmd": "getMemberId"}),
        ),
        (
            "BenefitRequestFunction",
            lambda: contact_event(TAKUMI, benefits, {"cmd": "sendSms", "pinCode": BENEFIT_PIN}),
        ),
    ]


def test_connect_payloads_with_missing_fields_or_wrong_types_are_rejected_cleanly(pin_hotline):
    local = pin_hotline
    counts: Counter = Counter()
    for function, make in connect_bases(local):
        for _path, _replacement, event in _mutations(make):
            counts["tried"] += 1
            invoke_and_check(local, function, event, counts)
    assert counts["rejected"] > 0 and counts["created"] > 0 and counts["granted"] > 0
    assert local.handler_errors == ()
    print(f"\nConnect fuzz, mutated payloads: {dict(counts)}")


# --- Scheduler -------------------------------------------------------------------------------
def test_scheduler_payloads_with_missing_fields_or_wrong_types_are_rejected_cleanly(hotline):
    local = hotline
    live = Live(local)
    before = snapshot(local)
    tried = 0
    for payload in (
        {},
        {"request_id": None},
        {"request_id": 12},
        {"request_id": ""},
        {"request_id": "x" * 1000},
        {"request_id": ["a"]},
        {"request_id": {"S": live.request_id}},
        {"request_id": live.request_id, "extra": 1},
        {"request_id": live.request_id, "link_hash": "nothex"},
        {"request_id": live.request_id, "link_hash": 7},
        {"request_id": live.request_id, "link_hash": "A" * 64},
        {"request_id": live.request_id, "link_hash": "0" * 65},
        {"request_id": "\ud800"},
        {"unexpected": "field"},
        [],
        [{"request_id": live.request_id}],
        "string",
        None,
        12,
    ):
        tried += 1
        with pytest.raises(ValidationError) as rejected:
            local.host.invoke("AnswerTimerFunction", payload)
        assert clean_rejection(rejected.value), rejected.value
    local.pump()
    # A well-formed but unknown request is not an error: there is nothing to time out.
    for payload in ({"request_id": "unknown"}, {"request_id": "unknown", "link_hash": "0" * 64}):
        tried += 1
        assert local.host.invoke("AnswerTimerFunction", payload) == {"outcome": "not_found"}
    local.pump()
    assert snapshot(local) == before
    assert live.state() == "inquiry/"
    print(f"\nScheduler fuzz: {tried} payloads")
