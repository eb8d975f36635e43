"""Whole conversations on both lines, every log line captured (the handlers' Powertools logger,
their EMF metrics on stdout, and Python logging): no full phone number, no link token, no PIN."""

from __future__ import annotations

import json
import logging
import re

TAKUMI, MIZUKI = "+819011112222", "+817033334444"
STRANGER = "+819055556666"
PIN = "98765432"
FORM = {"content-type": "application/x-www-form-urlencoded"}


def test_no_phone_number_token_or_pin_in_any_log_line(capsys, caplog, log_lines):
    from hotline_tools.local.engine import LocalHotline
    from tests.conftest import ROOT

    # INFO, as Lambda runs: botocore logs request bodies only at DEBUG, which nobody enables.
    caplog.set_level(logging.INFO)
    members = json.dumps([{"phone": TAKUMI, "member_id": "M-1"}]).encode()
    benefits = json.dumps([{"pin": PIN, "campaign_url": "https://example.com/c"}]).encode()
    local = LocalHotline(root=ROOT, members=members, benefits=benefits).start()
    try:
        # Accepted, declined, timed out then a late yes, an unknown caller.
        for answer in ("yes", "no", None):
            local.call(TAKUMI)
            path = (
                "/"
                + re.search(r"https?://\S+", local.sms(MIZUKI)[-1]["body"])
                .group(0)
                .split("/", 3)[3]
            )
            local.http("GET", path)
            if answer:
                local.http("POST", path, body=f"answer={answer}".encode(), headers=FORM)
            else:
                local.advance(180)
                local.http("POST", path, body=b"answer=yes", headers=FORM)
        local.call(STRANGER)
        # The benefits line: a wrong PIN, then the right one.
        local.call(TAKUMI, line="benefits", digits=f"1111#{PIN}#")
        local.call(STRANGER, line="benefits", digits=f"{PIN}#")
        tokens = [re.search(r"/a/([\w-]{22})", m["body"]).group(1) for m in local.sms(MIZUKI)]
    finally:
        local.stop()

    logged = "\n".join(
        [json.dumps(line, ensure_ascii=False) for line in log_lines()]
        + [capsys.readouterr().out, caplog.text]
    )
    assert len(log_lines()) > 10  # the conversations really logged
    assert len(tokens) == 3
    for phone in (TAKUMI, MIZUKI, STRANGER):
        assert phone not in logged and phone[1:] not in logged and phone[3:] not in logged
    for token in tokens:
        assert token not in logged
    assert not re.search(rf"(?<![0-9a-f]){PIN}(?![0-9a-f])", logged)
    assert "+81********22" in logged  # masked numbers are what the logs carry
