"""The control API's LINE routes over HTTP: the directory names each phone's simulated LINE
user, a code is made only for a phone in the directory, and a bad request (code, send, fault)
is a one-line 400 that changes nothing. One server for the module: no test here changes what
another one reads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hotline_tools.local.line_fake import simulated_user_id
from tests.conftest import MIZUKI, TAKUMI
from tests.conftest import http_json as request

MIZUKI_LINE = simulated_user_id(MIZUKI)


@pytest.fixture(scope="module")
def served() -> Iterator[Any]:
    from hotline_tools.local.server import LocalServer

    running = LocalServer(port=0, line_channel_secret="s3cret-for-this-test").start()
    try:
        yield running
    finally:
        running.stop()


def test_the_directory_gives_each_phone_its_simulated_line_user(served):
    status, directory = request(served, "GET", "/_local/directory")
    assert status == 200
    users = {p["phone"]: p["line_user_id"] for p in directory["people"]}
    assert users[MIZUKI] == MIZUKI_LINE and users[TAKUMI] == simulated_user_id(TAKUMI)


def test_a_code_is_six_digits_for_a_phone_in_the_directory(served):
    status, answer = request(served, "POST", "/_local/line/codes", {"phone": MIZUKI})
    assert status == 200 and len(answer["code"]) == 6 and answer["code"].isdigit()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"phone": "090-1111-2222"},
        {"phone": "+819099999999"},  # not in the directory
        {"phone": MIZUKI, "name": "ミズキ"},
        [MIZUKI],
    ],
)
def test_a_bad_code_request_is_a_one_line_400(served, body):
    status, answer = request(served, "POST", "/_local/line/codes", body)
    assert status == 400 and "\n" not in answer["error"]


@pytest.mark.parametrize(
    "body",
    [
        {"from": MIZUKI, "type": "follow"},  # a phone, not a LINE user id
        {"from": MIZUKI_LINE, "type": "join"},
        {"from": MIZUKI_LINE, "type": "message"},
        {"from": MIZUKI_LINE, "type": "message", "text": ""},
        {"from": MIZUKI_LINE, "type": "postback"},
        {"from": MIZUKI_LINE, "type": "postback", "data": "x" * 301},
        {"from": MIZUKI_LINE, "type": "follow", "text": "hello"},
        {"from": MIZUKI_LINE, "type": "follow", "extra": 1},
    ],
)
def test_a_bad_send_is_a_one_line_400_that_posts_nothing(served, body):
    before = request(served, "GET", "/_local/line")[1]
    status, answer = request(served, "POST", "/_local/line/send", body)
    assert status == 400 and "\n" not in answer["error"]
    assert request(served, "GET", "/_local/line")[1] == before


def test_a_bad_fault_over_http_is_a_400(served):
    status, answer = request(
        served, "POST", "/_local/faults", {"service": "line", "times": 1, "error": "x"}
    )
    assert status == 400 and "HTTP error status" in answer["error"]
    assert request(served, "GET", "/_local/faults") == (200, [])


def test_send_signs_with_the_channel_secret_the_server_was_given(served):
    """The webhook verifies the signature before anything: a 200 and a reply show the runtime
    signed with this server's own secret (not the default)."""
    status, answer = request(
        served, "POST", "/_local/line/send", {"from": MIZUKI_LINE, "type": "follow"}
    )
    assert status == 200 and answer["status"] == 200
    assert answer["event"]["type"] == "follow" and len(answer["event"]["webhookEventId"]) == 26
    assert [reply["to"] for reply in answer["replies"]] == [MIZUKI_LINE]
    assert request(served, "GET", "/_local/line")[1][-1] == answer["replies"][-1]
