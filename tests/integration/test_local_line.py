"""LINE in the local runtime: the fake Messaging API is the handlers' transport while the runtime
runs, its faults are armed, listed and cleared with every other service's, the channel secret
is in moto's Secrets Manager, and the control API's LINE routes (`GET /_local/line`,
`POST /_local/line/codes`, `POST /_local/line/send`, `GET /_local/line/links`,
`POST /_local/line/unlink`) do what DESIGN.md says (over HTTP: test_local_line_http.py)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from hotline_core.adapters import line_api
from hotline_tools.local.engine import BadRequest, LocalHotline
from hotline_tools.local.line_fake import PUSH_PATH, simulated_user_id
from hotline_tools.local.line_local import (
    DEFAULT_CHANNEL_SECRET,
    LOCAL_ACCESS_TOKEN,
    SECRET_NAME,
    LocalLine,
)
from tests.conftest import MIZUKI, ROOT, TAKUMI, StoppedClock

MIZUKI_LINE = simulated_user_id(MIZUKI)


@pytest.fixture
def local() -> Iterator[LocalHotline]:
    hotline = LocalHotline(root=ROOT)
    hotline.clock = StoppedClock()
    hotline.line = LocalLine(clock=hotline.clock.now, fault=hotline._line_fault)
    hotline.start()
    try:
        yield hotline
    finally:
        hotline.stop()


def push(to: str = MIZUKI_LINE) -> tuple[int, dict[str, str], bytes]:
    """One push through whatever transport the process has installed, as a handler sends it."""
    return line_api.current_transport()(
        "POST",
        line_api.LINE_API + PUSH_PATH,
        headers={
            "Authorization": f"Bearer {LOCAL_ACCESS_TOKEN}",
            "Content-Type": "application/json",
            "X-Line-Retry-Key": str(uuid.uuid4()),
        },
        body=json.dumps({"to": to, "messages": [{"type": "text", "text": "テスト"}]}).encode(),
        timeout=2.5,
    )


# --- the runtime installs LINE -----------------------------------------------------------


def test_line_is_on_locally_with_the_secret_in_secrets_manager(local):
    assert local.line_on
    assert local.template.parameters["LineSecretName"] == SECRET_NAME
    stored = local.client("secretsmanager").get_secret_value(SecretId=SECRET_NAME)
    assert json.loads(stored["SecretString"]) == {
        "channelSecret": DEFAULT_CHANNEL_SECRET,
        "channelAccessToken": LOCAL_ACCESS_TOKEN,
    }
    assert any(
        fn.environment.get("LINE_SECRET_NAME") == SECRET_NAME
        for fn in local.stack.functions.values()
    )


def test_the_fake_is_the_transport_while_the_runtime_runs_and_only_then():
    hotline = LocalHotline(root=ROOT).start()
    try:
        assert push()[0] == 200
        assert [m["to"] for m in hotline.line_messages()] == [MIZUKI_LINE]
    finally:
        hotline.stop()
    assert line_api.current_transport() is not hotline.line.api


def test_a_channel_secret_with_spaces_is_refused_before_anything_starts():
    with pytest.raises(ValueError, match="channel secret"):
        LocalHotline(root=ROOT, line_channel_secret="two words")


# --- faults --------------------------------------------------------------------------------


def test_a_line_fault_fails_the_next_calls_with_its_status_and_is_listed(local):
    armed = local.arm_fault("line", times=2, error=503)
    assert armed == {"service": "line", "to": None, "times": 2, "error": "503"}
    local.arm_fault("dynamodb", times=1)
    assert push()[0] == 503
    assert local.faults() == [
        {"service": "line", "to": None, "times": 1, "error": "503"},
        {
            "service": "dynamodb",
            "to": None,
            "times": 1,
            "error": "ProvisionedThroughputExceededException",
        },
    ]
    assert push()[0] == 503
    assert push()[0] == 200
    assert [m["kind"] for m in local.line_messages()] == ["push"]


def test_a_line_fault_answers_500_by_default_and_clears_with_the_others(local):
    local.arm_fault("line", times=5)
    assert push()[0] == 500
    assert local.clear_faults() == [{"service": "line", "to": None, "times": 4, "error": "500"}]
    assert push()[0] == 200


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"error": "ThrottlingException"}, "HTTP error status"),
        ({"error": 200}, "HTTP error status"),
        ({"error": True}, "HTTP error status"),
        ({"to": TAKUMI}, '"to" narrows only "sms"'),
        ({"times": 0}, '"times"'),
    ],
)
def test_a_bad_line_fault_is_refused_and_arms_nothing(local, fields, message):
    arguments: dict[str, Any] = {"times": 1, **fields}
    with pytest.raises(BadRequest, match=message):
        local.arm_fault("line", **arguments)
    assert local.faults() == []


# --- forgetting a person takes their LINE link too -------------------------------------------


def test_forget_removes_the_phones_line_link_and_waiting_codes(local):
    code = local.line_code(MIZUKI)
    wrong = "000000" if code != "000000" else "111111"
    assert local.line_send({"from": MIZUKI_LINE, "type": "message", "text": wrong})["status"] == 200
    assert local.line_send({"from": MIZUKI_LINE, "type": "message", "text": code})["status"] == 200
    local.line_code(MIZUKI)  # a second code, never sent
    takumi_code = local.line_code(TAKUMI)
    assert [link["phone"] for link in local.line_links()] == [MIZUKI]

    answer = local.forget(MIZUKI)

    assert answer["forgotten"]["line_links"] == 1
    assert local.line_links() == []
    table = local.template.resolve({"Ref": "LineLinksTable"}, local.stack.refs)
    items = local.client("dynamodb").scan(TableName=table)["Items"]
    # Takumi's code is someone else's and stays; nothing of Mizuki's does.
    assert [item["pk"]["S"] for item in items if item["pk"]["S"].startswith("code#")] == [
        f"code#{takumi_code}"
    ]
    assert not any(MIZUKI_LINE in json.dumps(item) or MIZUKI in json.dumps(item) for item in items)
