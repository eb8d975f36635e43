"""The fake Messaging API answers as LINE does, and really validates against the vendored OpenAPI
description: what the spec (or LINE's documented limits) rejects is a 400 and sends nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from hotline_tools.local import line_fake
from hotline_tools.local.line_fake import (
    LOCAL_BOT_USER_ID,
    PUSH_PATH,
    REPLY_PATH,
    SPEC_DIR,
    FakeLineApi,
    SpecViolation,
    follow_event,
    postback_event,
    sign,
    simulated_user_id,
    text_message_event,
    unfollow_event,
    webhook_body,
)

TOKEN = "local-access-token"
USER = simulated_user_id("+817033334444")
BASE = "https://api.line.me"


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at


def invitation(data_yes: str = "yes-data", data_no: str = "no-data") -> dict[str, Any]:
    return {
        "type": "template",
        "altText": "タクミさんが話したがっています",
        "template": {
            "type": "buttons",
            "text": "タクミさんが話したがっています。今、話せますか?",
            "actions": [
                {"type": "postback", "label": "はい", "data": data_yes},
                {"type": "postback", "label": "今はだめ", "data": data_no},
            ],
        },
    }


def headers(retry_key: str | None = None, token: str = TOKEN) -> dict[str, str]:
    out = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if retry_key is not None:
        out["X-Line-Retry-Key"] = retry_key
    return out


def push(api: FakeLineApi, payload: Any, *, retry_key: str | None = None, **kw: Any):
    status, out, body = api(
        "POST",
        BASE + PUSH_PATH,
        headers=kw.get("headers") or headers(retry_key),
        body=payload if isinstance(payload, bytes) else json.dumps(payload).encode(),
        timeout=5.0,
    )
    return status, out, json.loads(body)


def reply(api: FakeLineApi, token: str, messages: list[dict[str, Any]]):
    status, out, body = api(
        "POST",
        BASE + REPLY_PATH,
        headers=headers(),
        body=json.dumps({"replyToken": token, "messages": messages}).encode(),
        timeout=5.0,
    )
    return status, out, json.loads(body)


@pytest.fixture
def api() -> FakeLineApi:
    return FakeLineApi(TOKEN, clock=Clock())


# --- the vendored description --------------------------------------------------------------


def test_the_vendored_description_is_lines_with_its_licence_and_commit():
    source = (SPEC_DIR / "SOURCE.md").read_text()
    assert "github.com/line/line-openapi" in source
    assert "6e4c2a2a1b7b059ea3920456d4f88d03fd8ef0bb" in source
    assert "Apache License" in (SPEC_DIR / "LICENSE").read_text()
    for name in ("messaging-api.yml", "webhook.yml"):
        doc = yaml.safe_load((SPEC_DIR / name).read_text())
        assert doc["openapi"].startswith("3.0")
    paths = yaml.safe_load((SPEC_DIR / "messaging-api.yml").read_text())["paths"]
    assert PUSH_PATH in paths and REPLY_PATH in paths


def test_every_discriminated_schema_dispatches_on_its_mapping():
    """Each mapping value of every discriminator in both files resolves, and a value the
    mapping does not name is refused (the discriminator is really applied, not ignored)."""
    for spec in ("messaging-api.yml", "webhook.yml"):
        schemas = yaml.safe_load((SPEC_DIR / spec).read_text())["components"]["schemas"]
        discriminated = [n for n, s in schemas.items() if "discriminator" in s]
        assert discriminated
        for name in discriminated:
            prop = schemas[name]["discriminator"]["propertyName"]
            errors = line_fake.spec_errors(spec, name, {prop: "no-such-kind"})
            assert any(e["property"] == prop for e in errors), (spec, name)


# --- push --------------------------------------------------------------------------------


def test_a_valid_push_is_sent_and_recorded(api: FakeLineApi):
    key = str(uuid.uuid4())
    status, out, body = push(api, {"to": USER, "messages": [invitation()]}, retry_key=key)
    assert status == 200
    assert len(body["sentMessages"]) == 1 and body["sentMessages"][0]["id"]
    assert out["content-type"] == "application/json" and out["x-line-request-id"]
    assert api.listed() == [
        {
            "to": USER,
            "kind": "push",
            "messages": [invitation()],
            "retry_key": key,
            "sent_at": "2026-05-01T09:00:00+00:00",
        }
    ]


def test_a_repeated_retry_key_is_a_409_naming_the_accepted_request(api: FakeLineApi):
    key = str(uuid.uuid4())
    status, first, sent = push(api, {"to": USER, "messages": [invitation()]}, retry_key=key)
    assert status == 200
    status, out, body = push(api, {"to": USER, "messages": [invitation()]}, retry_key=key)
    assert status == 409
    assert out["x-line-accepted-request-id"] == first["x-line-request-id"]
    assert body["sentMessages"] == sent["sentMessages"]
    assert len(api.sent) == 1


def test_a_retry_key_is_forgotten_after_24_hours(api: FakeLineApi):
    key = str(uuid.uuid4())
    assert push(api, {"to": USER, "messages": [invitation()]}, retry_key=key)[0] == 200
    api.clock.at += timedelta(hours=24, seconds=1)  # type: ignore[attr-defined]
    assert push(api, {"to": USER, "messages": [invitation()]}, retry_key=key)[0] == 200
    assert len(api.sent) == 2


@pytest.mark.parametrize("key", ["not-a-uuid", "123e4567e89b12d3a456426614174000", ""])
def test_a_retry_key_that_is_not_a_uuid_is_a_400(api: FakeLineApi, key: str):
    status, _, body = push(api, {"to": USER, "messages": [invitation()]}, retry_key=key)
    assert status == 400 and "X-Line-Retry-Key" in body["message"]
    assert api.sent == []


def test_a_wrong_or_missing_token_is_a_401(api: FakeLineApi):
    payload = {"to": USER, "messages": [invitation()]}
    assert push(api, payload, headers=headers(token="other"))[0] == 401
    assert push(api, payload, headers={"Content-Type": "application/json"})[0] == 401
    assert (
        push(api, payload, headers={"Authorization": TOKEN, "Content-Type": "application/json"})[0]
        == 401
    )
    assert api.sent == []


def test_a_body_that_is_not_json_is_refused(api: FakeLineApi):
    assert push(api, b"{not json")[0] == 400
    bad_type = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/plain"}
    assert push(api, {"to": USER, "messages": [invitation()]}, headers=bad_type)[0] == 415
    assert api.sent == []


SPEC_VIOLATIONS = {
    "no messages": ({"to": USER, "messages": []}, "messages"),
    "six messages": ({"to": USER, "messages": [{"type": "text", "text": "x"}] * 6}, "messages"),
    "no recipient": ({"messages": [{"type": "text", "text": "x"}]}, ""),
    "a text message without text": ({"to": USER, "messages": [{"type": "text"}]}, "messages[0]"),
    "an unknown message type": (
        {"to": USER, "messages": [{"type": "txt", "text": "x"}]},
        "messages[0].type",
    ),
    "a template without altText": (
        {"to": USER, "messages": [{k: v for k, v in invitation().items() if k != "altText"}]},
        "messages[0]",
    ),
    "an action type LINE lacks": (
        {
            "to": USER,
            "messages": [
                {
                    **invitation(),
                    "template": {
                        **invitation()["template"],
                        "actions": [{"type": "postbak", "label": "はい", "data": "d"}],
                    },
                }
            ],
        },
        "messages[0].template.actions[0].type",
    ),
    "postback data over 300 characters": (
        {"to": USER, "messages": [invitation(data_yes="x" * 301)]},
        "messages[0].template.actions[0].data",
    ),
    "a template type LINE lacks": (
        {"to": USER, "messages": [{**invitation(), "template": {"type": "button", "text": "x"}}]},
        "messages[0].template.type",
    ),
    "a buttons template without text": (
        {
            "to": USER,
            "messages": [
                {**invitation(), "template": {"type": "buttons", "actions": []}},
            ],
        },
        "messages[0].template",
    ),
    "a flex component LINE lacks": (
        {
            "to": USER,
            "messages": [
                {
                    "type": "flex",
                    "altText": "x",
                    "contents": {
                        "type": "bubble",
                        "body": {
                            "type": "box",
                            "layout": "vertical",
                            "contents": [{"type": "txt", "text": "x"}],
                        },
                    },
                }
            ],
        },
        "messages[0].contents.body.contents[0].type",
    ),
    "the recipient as a number": (
        {"to": 12345, "messages": [{"type": "text", "text": "x"}]},
        "to",
    ),
}


@pytest.mark.parametrize("case", sorted(SPEC_VIOLATIONS))
def test_a_body_the_spec_rejects_is_a_400_that_sends_nothing(api: FakeLineApi, case: str):
    payload, where = SPEC_VIOLATIONS[case]
    status, _, body = push(api, payload, retry_key=str(uuid.uuid4()))
    assert status == 400, body
    assert body["message"].startswith("The request body has")
    assert where in [detail["property"] for detail in body["details"]], body["details"]
    assert api.sent == [] and api.calls[-1]["status"] == 400


LIMIT_VIOLATIONS = {
    "a label over 20 characters": invitation()
    | {
        "template": invitation()["template"]
        | {"actions": [{"type": "postback", "label": "は" * 21, "data": "d"}]}
    },
    "buttons text over 160 characters": invitation()
    | {"template": invitation()["template"] | {"text": "あ" * 161}},
    "buttons text over 60 with a title": invitation()
    | {"template": invitation()["template"] | {"title": "タクミ", "text": "あ" * 61}},
    "five buttons": invitation()
    | {
        "template": invitation()["template"]
        | {"actions": [{"type": "postback", "label": "x", "data": "d"}] * 5}
    },
    "a confirm template with one action": invitation()
    | {
        "template": {
            "type": "confirm",
            "text": "x",
            "actions": [{"type": "postback", "label": "x", "data": "d"}],
        }
    },
    "a text over 5000 characters": {"type": "text", "text": "あ" * 5001},
    "altText over 1500 characters": invitation() | {"altText": "あ" * 1501},
}


@pytest.mark.parametrize("case", sorted(LIMIT_VIOLATIONS))
def test_a_body_past_lines_documented_limits_is_a_400(api: FakeLineApi, case: str):
    status, _, body = push(api, {"to": USER, "messages": [LIMIT_VIOLATIONS[case]]})
    assert status == 400, body
    assert api.sent == []


def test_a_push_to_something_that_is_no_user_id_is_a_400(api: FakeLineApi):
    status, _, body = push(api, {"to": "+817033334444", "messages": [invitation()]})
    assert status == 400 and "'to'" in body["message"]


def test_only_push_and_reply_on_api_line_me_are_served(api: FakeLineApi):
    assert (
        api(
            "POST",
            "https://api.line.me/v2/bot/message/broadcast",
            headers=headers(),
            body=b"{}",
            timeout=1,
        )[0]
        == 404
    )
    assert (
        api("POST", "https://example.com" + PUSH_PATH, headers=headers(), body=b"{}", timeout=1)[0]
        == 404
    )
    assert api("GET", BASE + PUSH_PATH, headers=headers(), body=None, timeout=1)[0] == 405


# --- reply -------------------------------------------------------------------------------


def test_a_reply_goes_to_the_user_the_token_was_issued_to_once(api: FakeLineApi):
    token = api.issue_reply_token(USER)
    status, _, body = reply(api, token, [{"type": "text", "text": "リンクしました。"}])
    assert status == 200 and len(body["sentMessages"]) == 1
    assert api.listed()[0] | {"sent_at": None} == {
        "to": USER,
        "kind": "reply",
        "messages": [{"type": "text", "text": "リンクしました。"}],
        "retry_key": None,
        "sent_at": None,
    }
    status, _, body = reply(api, token, [{"type": "text", "text": "again"}])
    assert status == 400 and body["message"] == "Invalid reply token"
    assert len(api.sent) == 1


def test_an_unknown_or_stale_reply_token_is_a_400(api: FakeLineApi):
    assert reply(api, "never-issued", [{"type": "text", "text": "x"}])[0] == 400
    token = api.issue_reply_token(USER)
    api.clock.at += timedelta(seconds=61)  # type: ignore[attr-defined]
    assert reply(api, token, [{"type": "text", "text": "x"}])[0] == 400
    assert api.sent == []


def test_a_reply_with_a_spec_violating_message_keeps_its_token(api: FakeLineApi):
    token = api.issue_reply_token(USER)
    assert reply(api, token, [{"type": "text"}])[0] == 400
    assert reply(api, token, [{"type": "text", "text": "ok"}])[0] == 200


def test_a_reply_takes_no_retry_key(api: FakeLineApi):
    token = api.issue_reply_token(USER)
    status, _, _ = api(
        "POST",
        BASE + REPLY_PATH,
        headers=headers(str(uuid.uuid4())),
        body=json.dumps(
            {"replyToken": token, "messages": [{"type": "text", "text": "x"}]}
        ).encode(),
        timeout=1,
    )
    assert status == 400 and api.sent == []


# --- faults --------------------------------------------------------------------------------


def test_an_armed_fault_fails_the_next_calls_then_lets_them_through(api: FakeLineApi):
    api.arm(2, status=500)
    key = str(uuid.uuid4())
    payload = {"to": USER, "messages": [invitation()]}
    assert push(api, payload, retry_key=key)[0] == 500
    assert api.faults == [{"status": 500, "remaining": 1}]
    assert push(api, payload, retry_key=key)[0] == 500
    assert api.faults == []
    assert push(api, payload, retry_key=key)[0] == 200  # the failed tries accepted nothing
    assert len(api.sent) == 1
    assert [c["status"] for c in api.calls] == [500, 500, 200]


def test_faults_can_be_cleared_and_must_make_sense(api: FakeLineApi):
    api.arm(3, status=429)
    assert api.clear_faults() == [{"status": 429, "remaining": 3}]
    assert push(api, {"to": USER, "messages": [invitation()]})[0] == 200
    for times, status in ((0, 500), (True, 500), (1, 200), (1, 99)):
        with pytest.raises(ValueError):
            api.arm(times, status=status)


# --- webhook bodies ------------------------------------------------------------------------


def test_webhook_events_are_shaped_as_webhook_yml_says(api: FakeLineApi):
    at = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    events = [
        follow_event(USER, "r1", at=at),
        unfollow_event(USER, at=at),
        text_message_event(USER, "123456", "r2", at=at),
        postback_event(USER, "opaque", "r3", at=at),
    ]
    raw = webhook_body(LOCAL_BOT_USER_ID, events)
    payload = json.loads(raw)
    assert payload["destination"] == LOCAL_BOT_USER_ID
    assert [e["type"] for e in payload["events"]] == ["follow", "unfollow", "message", "postback"]
    for event in payload["events"]:
        assert event["source"] == {"type": "user", "userId": USER}
        assert event["timestamp"] == int(at.timestamp() * 1000)
        assert len(event["webhookEventId"]) == 26
        assert line_fake.spec_errors("webhook.yml", "Event", event) == []
    assert payload["events"][2]["message"]["text"] == "123456"
    assert payload["events"][3]["postback"] == {"data": "opaque"}
    assert "replyToken" not in payload["events"][1]


def test_a_webhook_body_the_description_rejects_is_refused():
    with pytest.raises(SpecViolation):
        webhook_body("not-a-bot-id", [])
    with pytest.raises(SpecViolation):
        webhook_body(LOCAL_BOT_USER_ID, [{"type": "follow"}])
    with pytest.raises(SpecViolation):
        webhook_body(LOCAL_BOT_USER_ID, [unfollow_event(USER) | {"mode": "sleeping"}])


def test_events_from_the_fake_carry_reply_tokens_it_accepts(api: FakeLineApi):
    event = api.event("postback", USER, data="d")
    assert reply(api, event["replyToken"], [{"type": "text", "text": "ok"}])[0] == 200
    assert api.event("unfollow", USER).get("replyToken") is None
    for kind, kw in (("message", {}), ("postback", {}), ("join", {})):
        with pytest.raises(ValueError):
            api.event(kind, USER, **kw)


def test_the_signature_is_base64_hmac_sha256_of_the_raw_body():
    body = webhook_body(LOCAL_BOT_USER_ID, [unfollow_event(USER)])
    expected = base64.b64encode(hmac.new(b"secret", body, hashlib.sha256).digest()).decode()
    assert sign(body, "secret") == expected
    assert sign(body, "other") != expected


def test_simulated_user_ids_are_line_shaped_and_stable():
    assert simulated_user_id("+817033334444") == USER
    assert line_fake.USER_ID.fullmatch(USER)
    assert simulated_user_id("+819011112222") != USER
