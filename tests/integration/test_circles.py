"""Beyond two people, in-process: circles with a menu, several hotline numbers, mutual
calls, repeats, quiet hours and the hotline PIN, through the real flow, handlers and rules."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from hotline_core import messages
from hotline_core.pins import hash_pin
from hotline_core.quiet import spoken_time
from tests.conftest import AOI, HARUTO, LINE_A, LINE_B, MIZUKI, TAKUMI

# Every hotline call opens with this, before the Lambda is invoked (no silence on the line).
GREETING = "お電話ありがとうございます。"
PIN = "2468"
PIN_HASH = hash_pin(PIN)


def person(name, phone, **extra):
    return {"name": name, "phone": phone, **extra}


FAMILY = [person("タクミ", TAKUMI), person("ミズキ", MIZUKI), person("ハルト", HARUTO)]


def requests_in(local):
    table = local.stack.output("RequestsTableName")
    items = local.client("dynamodb").scan(TableName=table)["Items"]
    # The request items (keyed by their link); REQ#<contact id> items only point at them.
    return [i for i in items if i["pk"]["S"].startswith("LINK#")]


def invites(local, to=None):
    return [m for m in local.sms(to) if "さんが話したいそうです。http" in m["body"]]


def tokyo_now() -> datetime:
    """Read once per test: the span and what the caller hears must come from the same now,
    or a minute boundary between two readings changes the expected "until"."""
    return datetime.now(ZoneInfo("Asia/Tokyo"))


def quiet_span(now: datetime, offset_start: timedelta, offset_end: timedelta) -> str:
    return f"{(now + offset_start):%H:%M}-{(now + offset_end):%H:%M}"


# --- circles --------------------------------------------------------------------------------


def test_a_circle_of_three_names_the_others_and_asks_whoever_was_picked(hotline_with):
    local = hotline_with(FAMILY)

    answer = local.call(TAKUMI, digits="2")

    assert answer["prompts"][1] == "話したい相手の番号を押してください。1: ミズキ、2: ハルト。"
    assert answer["prompts"][-1] == "ハルトさんに聞いてみます。電話を切ってお待ちください。"
    assert answer["lambda_invocations"] == 2
    [invite] = invites(local)
    assert invite["to"] == HARUTO
    assert [e["detail-type"] for e in local.events()] == ["CallRequested"]


def test_a_wrong_digit_is_asked_again_once(hotline_with):
    local = hotline_with(FAMILY)

    answer = local.call(TAKUMI, digits="71")

    assert answer["prompts"][2].startswith("番号が正しくありません。")
    assert answer["prompts"][-1] == "ミズキさんに聞いてみます。電話を切ってお待ちください。"
    assert [m["to"] for m in invites(local)] == [MIZUKI]


@pytest.mark.parametrize("digits", ["99", "", "0"])
def test_a_wrong_or_missing_digit_twice_is_goodbye_and_nothing_happens(hotline_with, digits):
    local = hotline_with(FAMILY)

    answer = local.call(TAKUMI, digits=digits)

    assert answer["prompts"][-1] == "お電話ありがとうございました。失礼いたします。"
    assert requests_in(local) == [] and local.sms() == [] and local.events() == []


def test_two_people_hear_no_menu_and_cost_one_invocation(hotline_with):
    local = hotline_with(FAMILY[:2])

    answer = local.call(TAKUMI)

    assert answer["lambda_invocations"] == 1
    assert answer["prompts"][0] == GREETING and len(answer["prompts"]) == 2


# --- several hotlines -----------------------------------------------------------------------


def test_the_dialled_number_selects_the_circle(hotline_with):
    local = hotline_with(
        {
            "circles": [
                {"number": LINE_A, "members": FAMILY[:2]},
                {"number": LINE_B, "members": [person("タクミ", TAKUMI), person("アオイ", AOI)]},
            ]
        }
    )

    first = local.call(TAKUMI, to=LINE_A)
    second = local.call(TAKUMI, to=LINE_B)
    stranger = local.call(AOI, to=LINE_A)
    unknown_line = local.call(TAKUMI, to="+815099990000")

    assert first["prompts"] == [GREETING, "ミズキさんに聞いてみます。電話を切ってお待ちください。"]
    assert second["prompts"] == [GREETING, "アオイさんに聞いてみます。電話を切ってお待ちください。"]
    assert stranger["prompts"] == [GREETING, "この電話番号は登録されていません。"]
    assert unknown_line["prompts"] == [GREETING, "この番号は現在使われていません。"]
    assert sorted(m["to"] for m in invites(local)) == sorted([MIZUKI, AOI])
    data = [e["detail"]["data"] for e in local.events()]
    assert [d["hotline_number"] for d in data] == [LINE_A, LINE_B]


# --- mutual calls and repeats ---------------------------------------------------------------


def test_a_mutual_call_texts_both_the_others_number_and_sends_no_new_invitation(hotline_with):
    local = hotline_with(FAMILY[:2])
    first = local.call(TAKUMI)

    back = local.call(MIZUKI)

    assert back["prompts"] == [
        GREETING,
        "タクミさんもあなたと話したがっています。SMSで番号をお送りします。",
    ]
    assert [m["to"] for m in invites(local)] == [MIZUKI]  # only Takumi's original one
    assert [e["detail-type"] for e in local.events()] == ["CallRequested", "MutualCallMatched"]
    [to_takumi] = local.sms(TAKUMI)
    assert (
        "070-3333-4444" in to_takumi["body"] and "ミズキさんもあなたと話したい" in to_takumi["body"]
    )
    [to_mizuki] = [m for m in local.sms(MIZUKI) if m not in invites(local)]
    assert (
        "090-1111-2222" in to_mizuki["body"] and "タクミさんもあなたと話したい" in to_mizuki["body"]
    )
    [request] = requests_in(local)
    assert request["request_id"]["S"] == first["contact_id"]
    assert request["status"]["S"] == "accepted" and request["mutual"]["BOOL"] is True
    # The timer was cancelled: nothing more arrives when the window ends.
    local.advance(300)
    assert len(local.sms()) == 3
    # Mizuki's invitation now says Takumi will call her, and a tap on it changes nothing.
    path = "/" + invites(local)[0]["body"].split("。", 1)[1].split("/", 3)[3]
    page = local.http("GET", path)
    assert "タクミさんもあなたに電話しました。タクミさんから電話が来ます。" in page.body.decode()
    assert "<form" not in page.body.decode()
    local.http(
        "POST",
        path,
        body=b"answer=no",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert len(local.sms()) == 3 and [e["detail-type"] for e in local.events()] == [
        "CallRequested",
        "MutualCallMatched",
    ]


def test_a_repeat_call_hears_still_waiting_and_sends_no_second_invitation(hotline_with):
    local = hotline_with(FAMILY[:2])
    local.call(TAKUMI)

    again = local.call(TAKUMI)

    assert again["prompts"] == [
        GREETING,
        "ミズキさんの返事をまだ待っています。電話を切ってお待ちください。",
    ]
    assert len(invites(local)) == 1 and len(requests_in(local)) == 1
    assert [e["detail-type"] for e in local.events()] == ["CallRequested"]


def test_after_the_answer_the_same_pair_can_ask_again(hotline_with):
    local = hotline_with(FAMILY[:2])
    local.call(TAKUMI)
    link = invites(local)[0]["body"].split("。", 1)[1]
    local.http(
        "POST",
        "/" + link.split("/", 3)[3],
        body=b"answer=no",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )

    again = local.call(TAKUMI)

    assert again["prompts"] == [GREETING, "ミズキさんに聞いてみます。電話を切ってお待ちください。"]
    assert len(invites(local)) == 2


# --- quiet hours ----------------------------------------------------------------------------


def test_during_quiet_hours_the_caller_is_told_until_when_and_nobody_is_texted(hotline_with):
    now = tokyo_now()
    span = quiet_span(now, -timedelta(hours=1), timedelta(hours=2))
    local = hotline_with([person("タクミ", TAKUMI), person("ミズキ", MIZUKI, quiet_hours=span)])

    answer = local.call(TAKUMI)

    end = now + timedelta(hours=2)  # the span's end, to the minute
    until = f"{end.hour}時" + (f"{end.minute}分" if end.minute else "")
    assert answer["prompts"] == [
        GREETING,
        f"ミズキさんは{until}までおやすみ時間です。そのあとでおかけ直しください。",
    ]
    assert local.sms() == [] and local.events() == [] and requests_in(local) == []


def test_outside_quiet_hours_the_call_goes_through(hotline_with):
    span = quiet_span(tokyo_now(), timedelta(hours=2), timedelta(hours=3))
    local = hotline_with([person("タクミ", TAKUMI), person("ミズキ", MIZUKI, quiet_hours=span)])

    local.call(TAKUMI)

    assert [m["to"] for m in invites(local)] == [MIZUKI]


def test_a_repeat_after_the_quiet_hours_began_still_hears_the_request_is_waiting(hotline_with):
    now = tokyo_now()
    starts = (now + timedelta(minutes=1)).replace(second=0, microsecond=0)  # within a minute
    span = f"{starts:%H:%M}-{starts + timedelta(hours=2):%H:%M}"
    local = hotline_with([person("タクミ", TAKUMI), person("ミズキ", MIZUKI, quiet_hours=span)])
    local.call(TAKUMI)  # before the quiet hours: Mizuki is asked
    local.advance((starts - now).total_seconds() + 1)  # inside them, inside the answer window

    again = local.call(TAKUMI)

    assert again["prompts"] == [GREETING, messages.text("prompt_waiting", "ja", receiver="ミズキ")]
    assert len(invites(local)) == 1


def test_the_caller_hears_when_quiet_hours_end_in_their_own_time_zone(hotline_with):
    now = tokyo_now()
    span = quiet_span(now, -timedelta(hours=1), timedelta(hours=2))
    local = hotline_with(
        [
            person("Takumi", TAKUMI, lang="en", timezone="Europe/London"),
            person("Mizuki", MIZUKI, quiet_hours=span),  # in Tokyo
        ]
    )

    answer = local.call(TAKUMI)

    end = (now + timedelta(hours=2)).replace(second=0, microsecond=0)
    until = spoken_time(end.astimezone(ZoneInfo("Europe/London")), "en")
    assert answer["prompts"] == [
        GREETING,
        messages.text("prompt_quiet", "en", receiver="Mizuki", until=until),
    ]
    assert until != spoken_time(end, "en")  # London is not Tokyo: the zone really mattered


def test_quiet_hours_do_not_stop_a_mutual_call(hotline_with):
    span = quiet_span(tokyo_now(), -timedelta(hours=1), timedelta(hours=2))
    local = hotline_with([person("タクミ", TAKUMI, quiet_hours=span), person("ミズキ", MIZUKI)])
    local.call(TAKUMI)  # Takumi is awake whatever his hours say

    back = local.call(MIZUKI)

    assert back["prompts"][1].startswith("タクミさんもあなたと話したがっています")


# --- the hotline PIN ------------------------------------------------------------------------


def pin_family():
    return [person("タクミ", TAKUMI, pin_hash=PIN_HASH), *FAMILY[1:]]


def test_the_right_pin_lets_the_caller_choose_and_ask(hotline_with, log_lines):
    local = hotline_with(pin_family())

    answer = local.call(TAKUMI, digits=f"{PIN}#1")

    assert answer["prompts"][1] == "暗証番号を入力し、最後にシャープを押してください。"
    assert answer["prompts"][2].startswith("話したい相手の番号を押してください。")
    assert answer["prompts"][-1] == "ミズキさんに聞いてみます。電話を切ってお待ちください。"
    assert [m["to"] for m in invites(local)] == [MIZUKI]
    assert not any(PIN in json.dumps(line) for line in log_lines())


def test_nothing_is_texted_before_the_pin(hotline_with):
    local = hotline_with(pin_family())

    answer = local.call(TAKUMI)  # hangs up at the PIN prompt (no input three times)

    assert answer["prompts"][-1] == "お電話ありがとうございました。失礼いたします。"
    assert local.sms() == [] and local.events() == [] and requests_in(local) == []


def test_a_wrong_pin_is_asked_again(hotline_with):
    local = hotline_with([person("タクミ", TAKUMI, pin_hash=PIN_HASH), FAMILY[1]])

    answer = local.call(TAKUMI, digits=f"1111#{PIN}#")

    assert (
        answer["prompts"][2]
        == "暗証番号が違います。もう一度入力し、最後にシャープを押してください。"
    )
    assert answer["prompts"][-1] == "ミズキさんに聞いてみます。電話を切ってお待ちください。"
    assert len(invites(local)) == 1


def test_five_wrong_pins_lock_the_phone_even_with_the_right_pin_after(hotline_with):
    local = hotline_with([person("タクミ", TAKUMI, pin_hash=PIN_HASH), FAMILY[1]])

    first = local.call(TAKUMI, digits="1111#2222#3333#")
    second = local.call(TAKUMI, digits="4444#5555#")
    locked = local.call(TAKUMI, digits=f"{PIN}#")

    assert first["prompts"][-1] == "お電話ありがとうございました。失礼いたします。"
    assert second["prompts"][-1] == "暗証番号の誤りが続いたため、しばらくご利用いただけません。"
    assert locked["prompts"][-1] == "暗証番号の誤りが続いたため、しばらくご利用いただけません。"
    assert local.sms() == [] and requests_in(local) == []
    local.advance(3601)
    assert local.call(TAKUMI, digits=f"{PIN}#")["prompts"][-1].startswith("ミズキさんに聞いて")
