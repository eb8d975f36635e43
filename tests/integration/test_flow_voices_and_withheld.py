"""Both lines in-process (and once over HTTP): every prompt is spoken by a voice of its
language, a withheld number hears that it must call again with it shown and nothing is stored
or sent, and a PIN prompt that got no input says so and costs a try, not a lockout count."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from typing import Any

import pytest

from hotline_core import messages
from hotline_core.pins import hash_pin
from hotline_tools.local.engine import LocalHotline
from hotline_tools.local.flow import POLLY_VOICES
from tests.conftest import HARUTO, MIZUKI, ROOT, TAKUMI

PIN = "2468"
MEMBER, STRANGER = "+819011112222", "+819055556666"
BENEFIT_PIN, URL = "246810", "https://example.jp/campaign/spring"
MEMBERS = json.dumps([{"phone": MEMBER, "member_id": "M001"}]).encode()
BENEFITS = f"pin,campaign_url\n{BENEFIT_PIN},{URL}\n".encode()

HOTLINE_GREETING = "お電話ありがとうございます。"
BENEFITS_GREETING = "お電話ありがとうございます。会員特典のご案内です。"
NO_INPUT = {"ja": "入力が確認できませんでした。", "en": "We could not detect any input."}
BENEFITS_ASK_PIN = "暗証番号を入力し、最後にシャープを押してください。"
BENEFITS_GOODBYE = "お電話ありがとうございました。失礼いたします。"
WITHHELD = messages.text("prompt_withheld", "ja")
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")  # kana and kanji


def person(name: str, phone: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "phone": phone, **extra}


# Names in Latin letters: an English voice does not play Japanese script ("If you enter text
# that isn't supported for the Amazon Polly voice you are using, it won't be played": Amazon
# Connect admin guide, voice-for-audio-prompts), so an English caller's menu needs them so.
DIRECTORY = [
    person("Takumi", TAKUMI, lang="en", pin_hash=hash_pin(PIN)),
    person("Mizuki", MIZUKI, pin_hash=hash_pin(PIN)),
    person("Haruto", HARUTO),
]


@pytest.fixture
def local():
    hotline = LocalHotline(
        root=ROOT, directory=json.dumps(DIRECTORY).encode(), members=MEMBERS, benefits=BENEFITS
    ).start()
    try:
        yield hotline
    finally:
        hotline.stop()


def language_of_text(text: str) -> str:
    return "ja" if JAPANESE.search(text) else "en"


def language_of_voice(voice: str) -> str:
    return POLLY_VOICES[voice][0].split("-")[0]


def stored_nothing(local: LocalHotline) -> bool:
    table = local.stack.output("RequestsTableName")
    items = local.client("dynamodb").scan(TableName=table)["Items"]
    return items == [] and local.events() == [] and local.sms() == []


def attempts(local: LocalHotline, key: str) -> dict[str, Any] | None:
    table = local.stack.output("PinAttemptsTableName")
    item: dict[str, Any] | None = (
        local.client("dynamodb").get_item(TableName=table, Key={"phone": {"S": key}}).get("Item")
    )
    return item


# --- the right voice ------------------------------------------------------------------------

CALLS = [
    pytest.param("hotline", TAKUMI, f"{PIN}#2", id="en-caller-pin-menu"),
    pytest.param("hotline", TAKUMI, "1111#", id="en-caller-wrong-pin-then-silence"),
    pytest.param("hotline", MIZUKI, f"{PIN}#1", id="ja-caller-pin-menu"),
    pytest.param("hotline", MIZUKI, "", id="ja-caller-silence"),
    pytest.param("hotline", STRANGER, "", id="stranger"),
    pytest.param("hotline", None, "", id="no-caller-id"),
    pytest.param("hotline", "anonymous", "", id="anonymous"),
    pytest.param("benefits", MEMBER, f"{BENEFIT_PIN}#", id="member"),
    pytest.param("benefits", MEMBER, "1#", id="member-wrong-then-silence"),
    pytest.param("benefits", STRANGER, "", id="benefits-stranger"),
    pytest.param("benefits", None, "", id="benefits-no-caller-id"),
]


@pytest.mark.parametrize(("line", "caller", "digits"), CALLS)
def test_every_prompt_is_spoken_by_a_voice_of_its_language(local, line, caller, digits):
    answer = local.call(caller, line=line, digits=digits)

    assert [said["text"] for said in answer["spoken"]] == answer["prompts"]
    mismatched = [
        said
        for said in answer["spoken"]
        if language_of_text(said["text"]) != language_of_voice(said["voice"])
    ]
    assert mismatched == []


def test_an_english_caller_hears_english_from_a_neural_english_voice(local):
    answer = local.call(TAKUMI, digits=f"{PIN}#2")

    assert answer["spoken"][0] == {"text": HOTLINE_GREETING, "voice": "Takumi"}
    assert {said["voice"] for said in answer["spoken"][1:]} == {"Joanna"}
    assert answer["prompts"][-1] == messages.text("prompt_asking", "en", receiver="Haruto")


# --- withheld numbers -----------------------------------------------------------------------


@pytest.mark.parametrize("caller", [None, "anonymous"], ids=["no-caller-id", "anonymous"])
def test_a_withheld_hotline_caller_is_told_to_show_the_number_and_nothing_happens(local, caller):
    answer = local.call(caller, digits=f"{PIN}#1")

    assert answer["prompts"] == [HOTLINE_GREETING, WITHHELD]
    assert answer["attributes"]["registered"] == "false"
    assert stored_nothing(local)


@pytest.mark.parametrize("caller", [None, "anonymous"], ids=["no-caller-id", "anonymous"])
def test_a_withheld_benefits_caller_is_told_to_show_the_number_and_nothing_happens(local, caller):
    answer = local.call(caller, line="benefits", digits=f"{BENEFIT_PIN}#")

    assert answer["prompts"] == [BENEFITS_GREETING, WITHHELD]
    assert answer["attributes"]["memberId"] == "-1"  # the original contract's answer
    assert answer["lambda_invocations"] == 1
    assert stored_nothing(local)


def test_over_http_from_null_is_a_withheld_call_with_spoken_voices(server):
    def post(body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{server.url}/_local/calls",
            data=json.dumps(body).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer: dict[str, Any] = json.loads(response.read())
        return answer

    hotline = post({"from": None})
    benefits = post({"from": "anonymous", "line": "benefits"})

    assert hotline["prompts"][-1] == WITHHELD
    assert benefits["prompts"][-1] == WITHHELD
    assert [s["text"] for s in hotline["spoken"]] == hotline["prompts"]
    assert all(s["voice"] == "Takumi" for s in hotline["spoken"] + benefits["spoken"])


def test_over_http_a_from_that_is_neither_a_number_null_nor_anonymous_is_a_400(server):
    request = urllib.request.Request(
        f"{server.url}/_local/calls",
        data=json.dumps({"from": 42}).encode(),
        headers={"content-type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 400


# --- a PIN prompt with no input -------------------------------------------------------------


@pytest.mark.parametrize("caller, lang", [(MIZUKI, "ja"), (TAKUMI, "en")], ids=["ja", "en"])
def test_hotline_silence_at_the_pin_prompt_is_said_and_costs_a_try_not_a_lockout_count(
    local, caller, lang
):
    answer = local.call(caller, digits="")

    ask = messages.text("prompt_pin", lang)
    assert answer["prompts"] == [
        HOTLINE_GREETING,
        ask,
        NO_INPUT[lang],
        ask,
        NO_INPUT[lang],
        ask,
        NO_INPUT[lang],
        messages.text("prompt_goodbye", lang),  # three tries, all spent on silence
    ]
    assert attempts(local, f"hotline#{caller}") is None  # nothing toward the lockout
    assert stored_nothing(local)


def test_hotline_silence_after_a_wrong_pin_counts_only_the_wrong_pin(local):
    answer = local.call(MIZUKI, digits="1111#")

    assert answer["prompts"][2] == messages.text("prompt_pin_again", "ja")
    assert answer["prompts"][3:5] == [NO_INPUT["ja"], messages.text("prompt_pin", "ja")]
    item = attempts(local, f"hotline#{MIZUKI}")
    assert item is not None
    assert len(item["failed_at"]["L"]) == 1  # the wrong PIN is recorded; the silences are not


def test_benefits_silence_at_the_pin_prompt_is_said_and_costs_a_try_not_a_lockout_count(local):
    answer = local.call(MEMBER, line="benefits", digits="")

    assert answer["prompts"] == (
        [BENEFITS_GREETING] + [BENEFITS_ASK_PIN, NO_INPUT["ja"]] * 3 + [BENEFITS_GOODBYE]
    )
    assert attempts(local, MEMBER) is None
    assert local.sms() == [] and local.events() == []
