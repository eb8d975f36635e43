"""Fuzzing the outside edges: the HTTP routes (random paths, tokens, methods, headers, bodies,
huge and non-UTF-8 input, also against the link of a request that is waiting for its answer)
and the Connect and Scheduler payloads (the parameters the contact flows really pass, against
a directory entry with a PIN; missing fields, wrong types). No 5xx and no crash: a clear 4xx
or a clean rejection, and nothing changes (no table item, no event, no SMS, no schedule)
unless the input is exactly a valid one, which then does exactly what it should.

Each test prints how many inputs it tried (run pytest with -s): the HTTP tests and the
Connect parameter tests try FUZZ_EXAMPLES each (Hypothesis), the mutation tests every
field of every base payload removed and given each of 7 wrong values, one at a time.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from hotline_core import messages
from hotline_core.pins import hash_pin, is_pin_shaped, pin_proof
from hotline_tools.local.engine import LocalHotline
from tests.conftest import (
    FORM_TYPE,
    HARUTO,
    MIZUKI,
    ROOT,
    TAKUMI,
    StoppedClock,
    load_event,
    request_item,
)

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


# --- HTTP ------------------------------------------------------------------------------------
token_chars = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40
)
paths = st.one_of(
    token_chars.map(lambda t: "/a/" + t),
    st.text(
        alphabet="abcdefghijklmnopqrstuvwxyz-_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
        min_size=22,
        max_size=22,
    ).map(lambda t: "/a/" + t),
    st.sampled_from(["/a/", "/a", "/", "/a/x/y", "/A/abc", "/a/%00", "/a/..%2F..%2Fetc"]),
)
methods = st.sampled_from(
    ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "post", "TRACE", "BREW"]
)
near_answers = st.sampled_from(
    [
        b"answer=yes",
        b"answer=no",
        b"answer=YES",
        b"answer=yes ",
        b"answer=maybe",
        b"answer=",
        b"answer",
        b"ANSWER=yes",
        b"answer=yes&answer=yes",
        b"answer=yes&answer=no",
        b"answer=yes&a=1&b=2&c=3&d=4&e=5",  # more fields than a form has
        b"answer=%79es",
        b"answer=yes;x=1",
        b"answer=yes%00",
        b"answer=yes\x00",
        b"\xef\xbb\xbfanswer=yes",
        b"answer=no&pad=" + b"x" * 1100,  # over the form's size limit
        b"answer=" + "はい".encode(),
        b"answer=%FF",
        b'{"answer": "yes"}',
        b"--b\r\nContent-Disposition: form-data; name=answer\r\n\r\nyes\r\n--b--",
    ]
)
bodies = st.one_of(
    st.binary(max_size=300),
    near_answers,
    st.builds(lambda a, b: a + b, near_answers, st.binary(max_size=20)),
    st.sampled_from(
        [
            b"answer=yes" * 200,  # too long
            b"\xff\xfe\xfd",
            b"\xc3\x28answer=yes",  # invalid UTF-8 first
            b"x" * 70_000,
            b"answer=yes&" + b"&" * 70_000,
        ]
    ),
)
header_values = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80),
    st.sampled_from(["", "x" * 10_000, "ümlaut", "\t", "0", "-1", "99999999999999999999"]),
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "content-type": st.one_of(
            st.sampled_from(
                [
                    FORM_TYPE,
                    FORM_TYPE + "; charset=utf-8",
                    FORM_TYPE + "; charset=shift_jis",
                    "application/json",
                    "multipart/form-data; boundary=b",
                    "text/plain",
                    "",
                ]
            ),
            header_values,
        ),
        "content-length": header_values,
        "cookie": header_values,
        "user-agent": header_values,
        "x-forwarded-for": header_values,
        "origin": header_values,
        "referer": header_values,
        "x-http-method-override": st.sampled_from(["POST", "GET", "DELETE"]),
    },
)


def valid_answer(method: str, body: bytes) -> str | None:
    """The one thing that may answer a request: a POST whose body is a form (UTF-8, at most
    1 KiB, at most 5 fields) with exactly one `answer` field, `yes` or `no`."""
    if method != "POST":
        return None
    try:
        text = body.decode("utf-8")
        fields = parse_qs(text, max_num_fields=5)
    except (UnicodeDecodeError, ValueError):
        return None
    values = fields.get("answer", [])
    ok = len(text) <= 1024 and len(values) == 1 and values[0] in ("yes", "no")
    return values[0] if ok else None


def test_random_requests_to_the_link_routes_never_5xx_and_change_nothing(hotline):
    local = hotline
    local.call(TAKUMI)
    before = snapshot(local)
    tried = 0

    @FUZZ
    @given(method=methods, path=paths, body=bodies, headers=headers)
    def probe(method, path, body, headers):
        nonlocal tried
        tried += 1
        response = local.http(method, path, body=body, headers=headers)
        status = 404 if response is None else response.status
        assert 400 <= status < 500, (method, path, status)

    probe()
    assert snapshot(local) == before
    assert tried == FUZZ_EXAMPLES
    print(f"\nHTTP fuzz, random paths: {tried} requests")


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


def test_junk_posted_to_a_waiting_requests_link_changes_nothing(hotline):
    """The real link of a real request: anything but exactly a valid answer leaves it, and
    everything else, as it was; a valid answer settles it once (then a new request is made)."""
    local = hotline
    live = Live(local)
    tried, answered = 0, Counter()

    @FUZZ
    @given(method=st.one_of(st.just("POST"), methods), body=bodies, headers=headers)
    def probe(method, body, headers):
        nonlocal tried
        tried += 1
        before = snapshot(local)
        response = local.http(method, live.path, body=body, headers=headers)
        assert response is not None
        answer = valid_answer(method, body)
        if answer is not None:
            assert response.status == 200, response
            assert live.state() == ("accepted/" if answer == "yes" else "refused/declined")
            answered[answer] += 1
            live.renew()
            return
        if method == "GET":
            assert response.status == 200  # the page; GET never answers
        elif method == "POST":
            assert response.status == 400, (body, response.status)
        else:
            assert response.status == 405, (method, response.status)
        assert live.state() == "inquiry/"
        assert snapshot(local) == before, (method, body, headers)

    probe()
    assert tried == FUZZ_EXAMPLES and local.handler_errors == ()
    print(f"\nHTTP fuzz, a waiting request's link: {tried} requests, valid answers {answered}")


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


INPUT_MODELS = ("ConnectContactEvent", "TimerInput")


def clean_rejection(exc: Exception) -> bool:
    """The input model refusing the payload, or the benefits Lambda refusing an unknown
    `cmd`: the flow takes its error branch. Any other exception, also a ValidationError of
    something the handler builds later (an event), is a crash."""
    if isinstance(exc, ValidationError):
        return exc.title in INPUT_MODELS
    return type(exc).__name__ == "UnknownCommand"


def expect_hotline(event: dict[str, Any]) -> dict[str, Any]:
    """What CallRequestFunction must do with this (well-formed) event, from the rules: an
    entry with a PIN needs the right PIN (asked for, typed) or this call's proof of it; then
    a valid menu digit (`asked=choice`, 1 or 2) creates the request; nothing else does."""
    caller = event["Details"]["ContactData"]["CustomerEndpoint"]["Address"]
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
    caller = event["Details"]["ContactData"]["CustomerEndpoint"]["Address"]
    params = event["Details"].get("Parameters") or {}  # absent: the first invocation
    cmd, pin = params.get("cmd", ""), params.get("pinCode", "")
    member = caller == TAKUMI
    return {
        "reject": cmd not in ("getMemberId", "sendSms"),
        "lookup": cmd == "getMemberId",
        "grant": cmd == "sendSms" and member and pin == BENEFIT_PIN,
        "attempt": cmd == "sendSms" and member and is_pin_shaped(pin) and pin != BENEFIT_PIN,
        "member": "M-1" if member else "-1",
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
        assert answer == {"memberId": want["member"]}
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
