"""The second line over real HTTP: a `hotline local --members F --benefits F` process, calls
through `POST /_local/calls` with `"line": "benefits"`, the SMS it sends, the lockout on its
clock, and `hotline members|benefits import --local URL` into that running process.

The runtime keeps state for the module, so every test calls from its own member's phone and
looks only at the SMS sent to that phone."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hotline_tools.local.process import hotline_command
from tests.conftest import ROOT

from .conftest import Hotline, running_hotline

pytestmark = pytest.mark.e2e

HAPPY, WRONG, RETRY, LOCKED, IMPORTED = (
    "+819011110001",
    "+819011110002",
    "+819011110003",
    "+819011110004",
    "+819011110005",
)
STRANGER = "+819099990000"
PIN, URL = "246810", "https://example.jp/campaign/spring?ref=sms&lang=ja"
NEW_PIN, NEW_URL = "86420", "https://example.jp/campaign/imported"

GREETING = "お電話ありがとうございます。会員特典のご案内です。"
ASK_PIN = "暗証番号を入力し、最後にシャープを押してください。"
WRONG_PIN = "暗証番号が違います"
SMS_SENT = "SMSをご確認ください"
GOODBYE = "お電話ありがとうございました。失礼いたします。"
NOT_REGISTERED = "この電話番号は登録されていません"


@pytest.fixture(scope="module")
def line(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hotline]:
    folder = tmp_path_factory.mktemp("hotline-benefits")
    members = folder / "members.json"
    members.write_text(
        json.dumps(
            [
                {"phone": phone, "member_id": f"M{n}"}
                for n, phone in enumerate((HAPPY, WRONG, RETRY, LOCKED), start=1)
            ]
        )
    )
    benefits = folder / "benefits.csv"
    benefits.write_text(f"pin,campaign_url\n{PIN},{URL}\n13579,https://example.jp/other\n")
    log = folder / "hotline-local.log"
    with running_hotline(log, "--members", str(members), "--benefits", str(benefits)) as url:
        yield Hotline(url)


def call(line: Hotline, phone: str, digits: str) -> dict[str, Any]:
    return line.call(phone, line="benefits", digits=digits)


def benefit_events(line: Hotline, phone: str) -> list[dict[str, Any]]:
    return [
        e
        for e in line.events()
        if e["detail-type"] == "BenefitRequested" and e["detail"]["data"]["phone"] == phone
    ]


def test_a_member_with_the_right_pin_gets_the_campaign_url_as_plain_text(line: Hotline) -> None:
    answer = call(line, HAPPY, f"{PIN}#")

    assert answer["prompts"] == [GREETING, ASK_PIN, SMS_SENT, GOODBYE]
    assert answer["attributes"]["memberId"] == "M1"
    [sms] = line.sms(HAPPY)
    assert sms["body"] == f"キャンペーンページ: {URL}"  # the URL as is: no markup, no escaping
    [event] = benefit_events(line, HAPPY)
    assert event["detail"]["data"]["campaign_url"] == URL
    assert event["detail"]["metadata"]["correlation_id"] == answer["contact_id"]


def test_a_wrong_pin_is_told_and_asked_again_up_to_three_times(line: Hotline) -> None:
    answer = call(line, WRONG, "1111#2222#3333#")

    assert answer["prompts"] == [GREETING] + [ASK_PIN, WRONG_PIN] * 3 + [GOODBYE]
    assert line.sms(WRONG) == []
    assert benefit_events(line, WRONG) == []


def test_a_wrong_pin_then_the_right_one(line: Hotline) -> None:
    answer = call(line, RETRY, f"1111#{PIN}#")

    assert answer["prompts"] == [GREETING, ASK_PIN, WRONG_PIN, ASK_PIN, SMS_SENT, GOODBYE]
    assert [m["body"] for m in line.sms(RETRY)] == [f"キャンペーンページ: {URL}"]
    assert len(benefit_events(line, RETRY)) == 1


def test_a_stranger_is_told_the_phone_is_not_registered_and_nothing_is_sent(
    line: Hotline,
) -> None:
    answer = call(line, STRANGER, f"{PIN}#")

    assert answer["prompts"] == [GREETING, NOT_REGISTERED]  # disconnected, no PIN asked
    assert answer["attributes"]["memberId"] == "-1"
    assert answer["lambda_invocations"] == 1
    assert line.sms(STRANGER) == []
    assert benefit_events(line, STRANGER) == []


def test_five_wrong_pins_within_an_hour_lock_the_phone_even_for_the_right_pin(
    line: Hotline,
) -> None:
    call(line, LOCKED, "1111#2222#3333#")
    line.advance(30 * 60)
    locking = call(line, LOCKED, f"4444#5555#{PIN}#")  # 5555 is the 5th wrong PIN in 30 min
    later = call(line, LOCKED, f"{PIN}#")

    assert locking["prompts"] == [GREETING] + [ASK_PIN, WRONG_PIN] * 3 + [GOODBYE]
    assert later["prompts"][:3] == [GREETING, ASK_PIN, WRONG_PIN]
    assert line.sms(LOCKED) == []
    assert benefit_events(line, LOCKED) == []

    line.advance(3600 + 1)  # the lock lasts an hour from the 5th wrong PIN
    assert call(line, LOCKED, f"{PIN}#")["prompts"][2] == SMS_SENT
    assert [m["body"] for m in line.sms(LOCKED)] == [f"キャンペーンページ: {URL}"]


def hotline_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*hotline_command(), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=dict(os.environ, COLUMNS="120"),  # one line per message
    )


def test_members_and_benefits_imported_with_local_reach_the_running_line(
    line: Hotline, tmp_path: Path
) -> None:
    members = tmp_path / "members.csv"
    members.write_text(f"phone,member_id\n{IMPORTED},M-imported\n")
    benefits = tmp_path / "benefits.json"
    benefits.write_text(json.dumps([{"pin": NEW_PIN, "campaign_url": NEW_URL}]))
    assert call(line, IMPORTED, f"{NEW_PIN}#")["prompts"] == [GREETING, NOT_REGISTERED]

    imported = [
        hotline_cli(kind, "import", str(file), "--local", line.url)
        for kind, file in (("members", members), ("benefits", benefits))
    ]

    for result, kind in zip(imported, ("members", "benefits"), strict=True):
        assert result.returncode == 0, result.stderr
        assert f"1 {kind} imported into {line.url}" in result.stdout
    answer = call(line, IMPORTED, f"{NEW_PIN}#")
    assert answer["prompts"] == [GREETING, ASK_PIN, SMS_SENT, GOODBYE]
    assert answer["attributes"]["memberId"] == "M-imported"
    assert [m["body"] for m in line.sms(IMPORTED)] == [f"キャンペーンページ: {NEW_URL}"]


def test_a_bad_file_imported_with_local_changes_nothing(line: Hotline, tmp_path: Path) -> None:
    benefits = tmp_path / "benefits.json"
    benefits.write_text(
        json.dumps(
            [
                {"pin": "97531", "campaign_url": "https://example.jp/never"},
                {"pin": "12", "campaign_url": "https://example.jp/short-pin"},
            ]
        )
    )

    result = hotline_cli("benefits", "import", str(benefits), "--local", line.url)

    assert result.returncode == 1
    assert "row 2" in result.stderr and "nothing was written" in result.stderr
    assert call(line, HAPPY, "97531#")["prompts"][2] == WRONG_PIN
