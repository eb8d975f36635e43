"""Whole conversations on both lines, every log line captured: the handlers' Powertools
logger, their EMF metrics on stdout, Python logging, and what the Lambda runtime writes to the
function's log group for an unhandled exception (its type and message). No full phone number,
no link token, no PIN (right or wrong) in any of them.

The conversations: accepted, declined, timed out then a late yes, a mutual call, an unknown
caller, the hotline PIN (wrong then right, and three wrong), the benefits line (wrong PIN,
right PIN, a non-member). The error paths: an SMS provider that throttles until the invite
lands in the dead-letter queue, a malformed event on the bus, a malformed Connect event.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
from moto.sns.exceptions import SNSException
from moto.sns.models import SNSBackend

from hotline_core.phone import shown_phone
from hotline_core.pins import hash_pin

# Imported before any test captures stdout: the Powertools handler keeps the stream it was
# created with, and a per-test capture stream is closed once that test ends.
from hotline_core.runtime import observability  # noqa: F401
from tests import conftest
from tests.conftest import FORM, MIZUKI, TAKUMI

STRANGER = "+819055556666"
HOTLINE_PIN, WRONG_HOTLINE_PIN = "73915", "86420"
BENEFIT_PIN, WRONG_BENEFIT_PIN = "98765432", "13572468"
PINS = (HOTLINE_PIN, WRONG_HOTLINE_PIN, BENEFIT_PIN, WRONG_BENEFIT_PIN)
ANSWER_WINDOW = 600
# From a call until its answer timer has surely fired: the window, its end rounded up to a
# whole minute (< 60 s), and Scheduler firing anywhere in that minute (< 60 s).
UNTIL_THE_TIMER = ANSWER_WINDOW + 120
DIRECTORY = [
    {"name": "タクミ", "phone": TAKUMI, "pin_hash": hash_pin(HOTLINE_PIN)},
    {"name": "ミズキ", "phone": MIZUKI},
]


class Throttled(SNSException):
    code = "Throttling"
    message = "Rate exceeded"


def link_path(local, to: str) -> str:
    """The path of the link in the latest text to `to`."""
    return conftest.link_path(local.sms(to)[-1]["body"])


def find_leaks(logged: str, phones, tokens) -> list[str]:
    leaks = []
    for phone in phones:
        # In full, without the +, without the country code, as a Japanese text shows it.
        forms = (phone, phone[1:], phone[3:], shown_phone(phone, "ja"))
        leaks += [form for form in forms if form in logged]
    leaks += [token for token in tokens if token in logged]
    leaks += [pin for pin in PINS if re.search(rf"(?<![0-9a-f]){pin}(?![0-9a-f])", logged)]
    return leaks


@pytest.fixture
def hotline(capsys, caplog, log_lines):
    from hotline_tools.local.engine import LocalHotline
    from tests.conftest import ROOT

    # INFO, as Lambda runs: botocore logs request bodies only at DEBUG, which nobody enables.
    caplog.set_level(logging.INFO)
    members = json.dumps([{"phone": TAKUMI, "member_id": "M-1"}]).encode()
    benefits = json.dumps([{"pin": BENEFIT_PIN, "campaign_url": "https://example.com/c"}])
    local = LocalHotline(
        root=ROOT,
        directory=json.dumps(DIRECTORY, ensure_ascii=False).encode(),
        members=members,
        benefits=benefits.encode(),
        # Ten minutes: Lambda's last retry of a failed invitation (180 s after the call)
        # still finds the request waiting, so it still tries to text.
        answer_window=ANSWER_WINDOW,
    ).start()
    runtime: list[str] = []  # what the Lambda runtime logs for unhandled exceptions

    def everything_logged() -> str:
        runtime_lines = runtime + [
            f"[ERROR] {kind}: {msg}" for _, kind, msg in local.handler_errors
        ]
        return "\n".join(
            [json.dumps(line, ensure_ascii=False) for line in log_lines()]
            + [capsys.readouterr().out, caplog.text]
            + runtime_lines
        )

    try:
        yield local, runtime, everything_logged
    finally:
        local.stop()


def test_no_phone_number_token_or_pin_in_any_log_line_of_whole_conversations(hotline, log_lines):
    local, _runtime, everything_logged = hotline
    pin = f"{HOTLINE_PIN}#"
    # Accepted (after a wrong PIN), declined, timed out then a late yes.
    for answer, digits in (("yes", f"{WRONG_HOTLINE_PIN}#{pin}"), ("no", pin), (None, pin)):
        called = local.call(TAKUMI, digits=digits)
        assert called["prompts"][-1].startswith("ミズキさんに聞いてみます"), called["prompts"]
        path = link_path(local, MIZUKI)
        local.http("GET", path)
        if answer is None:
            local.advance(UNTIL_THE_TIMER)
            answer = "yes"
        assert (
            local.http("POST", path, body=f"answer={answer}".encode(), headers=FORM).status == 200
        )
    # A mutual call: Takumi asks, Mizuki calls before she answers.
    local.call(TAKUMI, digits=pin)
    mutual = local.call(MIZUKI)
    assert mutual["prompts"][-1].startswith("タクミさんもあなたと話したがっています")
    # Three wrong PINs, an unknown caller.
    wrong = f"{WRONG_HOTLINE_PIN}#"
    assert local.call(TAKUMI, digits=wrong * 3)["attributes"].get("registered") == "true"
    local.call(STRANGER)
    # The benefits line: a wrong PIN, then the right one; a non-member.
    local.call(TAKUMI, line="benefits", digits=f"{WRONG_BENEFIT_PIN}#{BENEFIT_PIN}#")
    local.call(STRANGER, line="benefits", digits=f"{BENEFIT_PIN}#")

    sms = local.sms()
    tokens = [m.group(1) for s in sms if (m := re.search(r"/a/([\w-]{22})", s["body"]))]
    assert len(tokens) == 4  # four invitations: the conversations really ran
    assert any("example.com/c" in s["body"] for s in sms if s["to"] == TAKUMI)
    # mutual: her text, with his number as a Japanese text shows it
    assert sum(shown_phone(TAKUMI, "ja") in s["body"] for s in sms if s["to"] == MIZUKI) == 1
    assert local.handler_errors == () and local.dead_letters == []
    logged = everything_logged()
    assert len(log_lines()) > 20
    assert find_leaks(logged, (TAKUMI, MIZUKI, STRANGER), tokens) == []
    assert "+81********22" in logged  # masked numbers are what the logs carry


def test_no_personal_data_in_the_logs_of_failures(hotline, log_lines, monkeypatch):
    local, runtime, everything_logged = hotline

    # An SMS provider that throttles every text to Mizuki: the invite is retried with
    # backoff, by the consumer and by Lambda, then lands in the dead-letter queue.
    publish = SNSBackend.publish

    def throttled(self, message, *args: Any, phone_number=None, **kwargs: Any):
        if phone_number == MIZUKI:
            raise Throttled()
        return publish(self, message, *args, phone_number=phone_number, **kwargs)

    monkeypatch.setattr(SNSBackend, "publish", throttled)
    local.call(TAKUMI, digits=f"{HOTLINE_PIN}#")
    local.advance(180)  # Lambda's two retries, a minute and then two minutes later
    monkeypatch.undo()
    (dead,) = local.dead_letters
    assert dead["requestContext"]["functionArn"].endswith("InviteReceiverFunction")
    link = dead["requestPayload"]["detail"]["data"]["link"]
    tokens = [link.rsplit("/", 1)[1]]

    # A malformed event on the bus: a CallRequested without its link.
    data = dict(dead["requestPayload"]["detail"]["data"], request_id="malformed-1")
    del data["link"]
    detail = dict(dead["requestPayload"]["detail"], data=data)
    local.client("events").put_events(
        Entries=[
            {
                "EventBusName": local.stack.output("EventBusName"),
                "Source": "hotline",
                "DetailType": "CallRequested",
                "Detail": json.dumps(detail, ensure_ascii=False),
            }
        ]
    )
    local.pump()
    assert any(
        fn == "InviteReceiverFunction" and kind == "ValidationError"
        for fn, kind, _ in local.handler_errors
    )

    # A malformed Connect event: no SystemEndpoint.
    from tests.conftest import load_event

    event = load_event("connect-contact-flow-event.json")
    event["Details"]["ContactData"]["CustomerEndpoint"]["Address"] = STRANGER
    del event["Details"]["ContactData"]["SystemEndpoint"]
    with pytest.raises(ValueError) as raised:
        local.host.invoke("CallRequestFunction", event)
    runtime.append(f"[ERROR] {type(raised.value).__name__}: {raised.value}")

    logged = everything_logged()
    assert "malformed event rejected" in logged and "Throttling" in logged
    assert find_leaks(logged, (TAKUMI, MIZUKI, STRANGER), tokens) == []
