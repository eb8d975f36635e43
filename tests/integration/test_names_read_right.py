"""Names read right, in-process (the real flow, handlers and rules): every prompt that names
a person says their `reading`; every text shows their name."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tests.conftest import HARUTO, MIZUKI, TAKUMI

FORM = {"content-type": "application/x-www-form-urlencoded"}


def person(name, phone, reading, **extra):
    return {"name": name, "phone": phone, "reading": reading, **extra}


FAMILY = [
    person("拓海", TAKUMI, "たくみ"),
    person("瑞希", MIZUKI, "みずき"),
    person("陽翔", HARUTO, "はると"),
]


def answer(local, body: str, yes: bool) -> None:
    link = body.split("。", 1)[1]
    local.http(
        "POST",
        "/" + link.split("/", 3)[3],
        body=b"answer=yes" if yes else b"answer=no",
        headers=FORM,
    )


def test_the_menu_and_the_asking_prompt_say_readings_and_the_texts_show_names(hotline_with):
    local = hotline_with(FAMILY)

    call = local.call(TAKUMI, digits="1")

    # (A greeting may come first: the flow's own words, not the Lambda's.)
    assert "話したい相手の番号を押してください。1: みずき、2: はると。" in call["prompts"]
    assert call["prompts"][-1] == "みずきさんに聞いてみます。電話を切ってお待ちください。"
    [invite] = local.sms(MIZUKI)
    assert invite["body"].startswith("拓海さんが話したいそうです。")
    answer(local, invite["body"], yes=True)
    [told] = local.sms(TAKUMI)
    assert told["body"].startswith("瑞希さんが話せます。")
    assert "みずき" not in told["body"]


def test_waiting_and_mutual_prompts_say_the_reading(hotline_with):
    local = hotline_with(FAMILY[:2])
    local.call(TAKUMI)

    again = local.call(TAKUMI)
    back = local.call(MIZUKI)

    assert (
        again["prompts"][-1] == "みずきさんの返事をまだ待っています。電話を切ってお待ちください。"
    )
    assert (
        back["prompts"][-1] == "たくみさんもあなたと話したがっています。SMSで番号をお送りします。"
    )
    [to_takumi] = local.sms(TAKUMI)
    assert to_takumi["body"].startswith("瑞希さんもあなたと話したいそうです。")
    to_mizuki = [m["body"] for m in local.sms(MIZUKI)]
    assert to_mizuki[-1].startswith("拓海さんもあなたと話したいそうです。拓海さんから電話が来ます")


def test_the_quiet_hours_prompt_says_the_reading_in_english_too(hotline_with):
    now = datetime.now(ZoneInfo("Asia/Tokyo"))
    span = f"{now - timedelta(hours=1):%H:%M}-{now + timedelta(hours=2):%H:%M}"
    local = hotline_with(
        [
            {"name": "Takumi", "phone": TAKUMI, "lang": "en"},
            person("瑞希", MIZUKI, "Mizuki", quiet_hours=span),
        ]
    )

    call = local.call(TAKUMI)

    prompt = call["prompts"][-1]
    assert prompt.startswith("Mizuki is in quiet hours until ") and "瑞希" not in prompt
    assert local.sms() == []
