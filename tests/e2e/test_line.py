"""LINE first, SMS as the fallback, over real HTTP against a started `hotline local` process
(issue 18). The runtime's fake Messaging API validates every request against LINE's OpenAPI
description; `/_local/line/send` posts signed webhook events as LINE would.

Each test gets its own runtime: linking changes who gets what, and the session's shared one
must keep texting everybody by SMS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hotline_tools.local.line_fake import (
    LOCAL_BOT_USER_ID,
    sign,
    simulated_user_id,
    unfollow_event,
    webhook_body,
)
from tests.conftest import MIZUKI, TAKUMI

from .conftest import Hotline, request, running_hotline

pytestmark = pytest.mark.e2e

TAKUMI_LINE, MIZUKI_LINE = simulated_user_id(TAKUMI), simulated_user_id(MIZUKI)
# Every Messaging API call fails while this many are armed: more than the consumer's attempts
# within one invocation and Lambda's two retries of it.
ALL_ATTEMPTS = 50


@pytest.fixture
def hotline(tmp_path: Path) -> Iterator[Hotline]:
    with running_hotline(tmp_path / "hotline-local.log") as url:
        yield Hotline(url)


def line(hotline: Hotline, to: str | None = None) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = hotline._ok(hotline.get("/_local/line"))
    return [m for m in sent if to is None or m["to"] == to]


def send(hotline: Hotline, **event: Any) -> dict[str, Any]:
    answer: dict[str, Any] = hotline._ok(hotline.post_json("/_local/line/send", event))
    return answer


def link(hotline: Hotline, phone: str, user: str) -> None:
    """The person adds the Official Account as a friend and sends the code `hotline line link`
    gave them; the webhook replies that it worked."""
    send(hotline, **{"from": user, "type": "follow"})
    code = hotline._ok(hotline.post_json("/_local/line/codes", {"phone": phone}))["code"]
    answer = send(hotline, **{"from": user, "type": "message", "text": code})
    assert answer["status"] == 200 and len(answer["replies"]) == 1
    links = hotline._ok(hotline.get("/_local/line/links"))
    assert {(item["phone"], item["user_id"]) for item in links} >= {(phone, user)}


def pushes(hotline: Hotline, to: str) -> list[dict[str, Any]]:
    return [m for m in line(hotline, to) if m["kind"] == "push"]


def postbacks(push: dict[str, Any]) -> dict[str, str]:
    """The push's postback buttons: label → data."""
    (message,) = push["messages"]
    assert message["type"] == "template", message
    actions = message["template"]["actions"]
    assert {action["type"] for action in actions} == {"postback"}
    return {action["label"]: action["data"] for action in actions}


def test_a_linked_receiver_gets_one_line_push_with_buttons_and_the_tap_accepts(hotline):
    link(hotline, MIZUKI, MIZUKI_LINE)
    link(hotline, TAKUMI, TAKUMI_LINE)
    sms_before = len(hotline.sms())

    request_id = hotline.call(TAKUMI)["contact_id"]

    (invitation,) = pushes(hotline, MIZUKI_LINE)
    assert invitation["retry_key"]  # the same key on any retry: LINE drops a duplicate
    text = json.dumps(invitation["messages"], ensure_ascii=False)
    assert "タクミ" in text and "http" not in text  # the caller's name, no link
    buttons = postbacks(invitation)
    assert set(buttons) == {"はい", "今は無理"}
    assert hotline.sms()[sms_before:] == []  # nobody got an SMS

    tapped = send(hotline, **{"from": MIZUKI_LINE, "type": "postback", "data": buttons["はい"]})

    assert tapped["status"] == 200
    assert len(tapped["replies"]) == 1  # a free reply saying what happened
    accepted = [
        e
        for e in hotline.events()
        if e["detail-type"] == "Accepted" and e["detail"]["data"]["request_id"] == request_id
    ]
    assert len(accepted) == 1
    # The linked caller is told by LINE, with Mizuki's number as a Japanese text shows it.
    (outcome,) = pushes(hotline, TAKUMI_LINE)
    assert "070-3333-4444" in json.dumps(outcome["messages"], ensure_ascii=False)
    assert hotline.sms()[sms_before:] == []


def test_tapping_again_answers_nothing_new(hotline):
    link(hotline, MIZUKI, MIZUKI_LINE)
    hotline.call(TAKUMI)
    (invitation,) = pushes(hotline, MIZUKI_LINE)
    buttons = postbacks(invitation)
    send(hotline, **{"from": MIZUKI_LINE, "type": "postback", "data": buttons["はい"]})
    told = hotline.sms(TAKUMI)
    assert len(told) == 1  # Takumi is not linked: the outcome by SMS, as today

    again = send(hotline, **{"from": MIZUKI_LINE, "type": "postback", "data": buttons["今は無理"]})

    assert again["status"] == 200 and len(again["replies"]) == 1
    assert hotline.sms(TAKUMI) == told
    kinds = [e["detail-type"] for e in hotline.events()]
    assert kinds.count("Accepted") == 1 and "Declined" not in kinds


def test_a_line_fault_makes_the_invitation_fall_back_to_exactly_one_sms(hotline):
    link(hotline, MIZUKI, MIZUKI_LINE)
    hotline._ok(hotline.post_json("/_local/faults", {"service": "line", "times": ALL_ATTEMPTS}))

    hotline.call(TAKUMI)
    hotline.advance(200)  # Lambda's retries of the consumer, had it failed, are over

    invitations = hotline.sms(MIZUKI)
    assert len(invitations) == 1, invitations
    assert "タクミ" in invitations[0]["body"]
    assert pushes(hotline, MIZUKI_LINE) == []
    (fault,) = hotline._ok(hotline.get("/_local/faults"))
    assert fault["service"] == "line" and fault["times"] < ALL_ATTEMPTS  # LINE was tried first
    # LINE works again: nothing is sent twice, by either channel.
    hotline._ok(request(hotline.url, "DELETE", "/_local/faults"))
    hotline.advance(200)
    assert len(hotline.sms(MIZUKI)) == 1
    assert pushes(hotline, MIZUKI_LINE) == []


def test_a_wrong_code_links_nothing(hotline):
    send(hotline, **{"from": MIZUKI_LINE, "type": "follow"})
    code = hotline._ok(hotline.post_json("/_local/line/codes", {"phone": MIZUKI}))["code"]
    wrong = "000000" if code != "000000" else "111111"

    answer = send(hotline, **{"from": MIZUKI_LINE, "type": "message", "text": wrong})

    assert answer["status"] == 200 and len(answer["replies"]) == 1
    assert hotline._ok(hotline.get("/_local/line/links")) == []
    hotline.call(TAKUMI)
    assert len(hotline.sms(MIZUKI)) == 1  # still texted
    assert pushes(hotline, MIZUKI_LINE) == []


def test_a_webhook_signed_with_another_secret_is_refused_and_changes_nothing(tmp_path):
    """`--line-channel-secret` is the secret the runtime signs with and the webhook checks: a
    body signed with any other (the default one here) is a 401 that unlinks nobody."""
    log = tmp_path / "hotline-local.log"
    with running_hotline(log, "--line-channel-secret", "0123456789abcdef0123456789abcdef") as url:
        hotline = Hotline(url)
        link(hotline, MIZUKI, MIZUKI_LINE)  # signed by the runtime: accepted
        body = webhook_body(LOCAL_BOT_USER_ID, [unfollow_event(MIZUKI_LINE)])

        forged = request(
            url,
            "POST",
            "/line/webhook",
            body,
            {
                "Content-Type": "application/json",
                "x-line-signature": sign(body, "local-channel-secret"),
            },
        )

        assert forged.status == 401
        links = hotline._ok(hotline.get("/_local/line/links"))
        assert [item["phone"] for item in links] == [MIZUKI]
