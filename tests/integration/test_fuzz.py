"""Fuzzing the outside edges: the HTTP routes (random paths, tokens, methods, bodies, huge and
non-UTF-8 input) and the Connect and Scheduler payloads (missing fields, wrong types). No 5xx,
no state change; a clear 4xx or a clean rejection. Each test reports how many inputs it tried
(run pytest with -s to see the counts)."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import load_event

TAKUMI = "+819011112222"
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def snapshot(local):
    table = local.stack.output("RequestsTableName")
    items = local.client("dynamodb").scan(TableName=table)["Items"]
    return (
        sorted(json.dumps(i, sort_keys=True) for i in items),
        len(local.events()),
        len(local.sms()),
        len(local.client("scheduler").list_schedules()["Schedules"]),
    )


@pytest.fixture
def conversation(local):
    local.call(TAKUMI)
    return local


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
bodies = st.one_of(
    st.binary(max_size=300),
    st.sampled_from(
        [
            b"answer=yes" * 200,  # too long
            b"\xff\xfe\xfd",
            b"answer=%FF",
            b"answer=yes&answer=yes",
            b"answer=" + "はい".encode(),
            b"x" * 70_000,
        ]
    ),
)


def test_random_requests_to_the_link_routes_never_5xx_and_change_nothing(conversation):
    local = conversation
    before = snapshot(local)
    tried = 0

    @FUZZ
    @given(
        method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]), path=paths, body=bodies
    )
    def probe(method, path, body):
        nonlocal tried
        tried += 1
        response = local.http(
            method, path, body=body, headers={"content-type": "application/x-www-form-urlencoded"}
        )
        status = 404 if response is None else response.status
        assert 400 <= status < 500, (method, path, status)

    probe()
    assert snapshot(local) == before
    print(f"HTTP fuzz: {tried} requests")


def _mutations(event):
    """Every field removed, and every field given each wrong type, one at a time."""

    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                yield (*path, key)
                yield from walk(value, (*path, key))

    for path in walk(event, ()):
        for replacement in ("__delete__", None, 12345, [], {}, "", "x" * 5000, True):
            mutated = copy.deepcopy(event)
            parent = mutated
            for key in path[:-1]:
                parent = parent[key]
            if replacement == "__delete__":
                del parent[path[-1]]
            else:
                parent[path[-1]] = replacement
            yield path, replacement, mutated


def test_connect_payloads_with_missing_fields_or_wrong_types_are_rejected_cleanly(local):
    base = load_event("connect-contact-flow-event.json")
    base["Details"]["ContactData"]["ContactId"] = "fuzz-contact"
    before = snapshot(local)
    tried = rejected = 0
    for path, _replacement, event in _mutations(base):
        tried += 1
        try:
            answer = local.host.invoke("CallRequestFunction", event)
        except ValueError:  # pydantic's ValidationError: a clean rejection
            rejected += 1
            continue
        # What the model accepts must be a harmless variation: still a flat string map.
        assert all(isinstance(v, str) for v in answer.values()), path
    local.pump()
    after = snapshot(local)
    # Only variations that kept a valid registered caller may have created a request.
    assert after[3] <= before[3] + 1
    assert rejected > 0
    print(f"Connect fuzz: {tried} payloads, {rejected} rejected by the model")


def test_scheduler_payloads_with_missing_fields_or_wrong_types_are_rejected_cleanly(conversation):
    local = conversation
    before = snapshot(local)
    tried = 0
    for payload in (
        {},
        {"request_id": None},
        {"request_id": 12},
        {"request_id": ""},
        {"request_id": "x" * 1000},
        {"request_id": ["a"]},
        {"request_id": "nope", "extra": 1},
        {"unexpected": "field"},
        [],
        "string",
    ):
        tried += 1
        with pytest.raises(ValueError):
            local.host.invoke("AnswerTimerFunction", payload)
    # A well-formed but unknown request is not an error: there is nothing to time out.
    assert local.host.invoke("AnswerTimerFunction", {"request_id": "unknown"}) == {
        "outcome": "not_found"
    }
    assert snapshot(local) == before
    print(f"Scheduler fuzz: {tried + 1} payloads")
