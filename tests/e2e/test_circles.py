"""Circles, several hotline numbers, mutual calls, repeats and quiet hours over real HTTP,
against a `hotline local --directory FILE` process started with a directory of four circles."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import AOI, HARUTO, MIZUKI, TAKUMI, link_in

from .conftest import Hotline, running_hotline

pytestmark = pytest.mark.e2e

REN, SORA = "+818022223333", "+819044445555"
FAMILY_LINE, WORK_LINE = "+815012340001", "+815012340009"
QUIET_LINE, NINE_LINE = "+815012340008", "+815012340007"
# The largest circle: nine people, so a caller hears eight others and digits 1-8.
NINE_NAMES = [
    *("イチロウ", "ジロウ", "サブロウ", "シロウ", "ゴロウ"),
    *("ロクロウ", "ナナミ", "ハナ", "クミ"),
]
NINE = [
    {"name": name, "phone": f"+8190200000{i:02d}"} for i, name in enumerate(NINE_NAMES, start=1)
]
GOODBYE = "お電話ありがとうございました。失礼いたします。"
# Every hotline call opens with this, before the Lambda is invoked.
GREETING = "お電話ありがとうございます。"


def directory(now: datetime) -> dict[str, Any]:
    """Sora's quiet hours run from an hour before `now` to two hours after it, so they cover
    the runtime's clock (real time: nothing in this module moves it) whenever the test runs."""
    quiet = f"{now - timedelta(hours=1):%H:%M}-{now + timedelta(hours=2):%H:%M}"
    return {
        "circles": [
            {
                "number": FAMILY_LINE,
                "members": [
                    {"name": "タクミ", "phone": TAKUMI},
                    {"name": "ミズキ", "phone": MIZUKI},
                    {"name": "ハルト", "phone": HARUTO},
                    {"name": "Aoi", "phone": AOI, "lang": "en"},
                ],
            },
            {
                "number": WORK_LINE,
                "members": [{"name": "タクミ", "phone": TAKUMI}, {"name": "レン", "phone": REN}],
            },
            {
                "number": QUIET_LINE,
                "members": [
                    {"name": "タクミ", "phone": TAKUMI},
                    {"name": "ソラ", "phone": SORA, "quiet_hours": quiet},  # Asia/Tokyo
                ],
            },
            {"number": NINE_LINE, "members": NINE},
        ]
    }


@pytest.fixture(scope="module")
def now() -> datetime:
    """Read once: the directory's quiet hours and the end the caller hears both come from it."""
    return datetime.now(ZoneInfo("Asia/Tokyo"))


@pytest.fixture(scope="module")
def circles(tmp_path_factory: pytest.TempPathFactory, now: datetime) -> Iterator[Hotline]:
    folder = tmp_path_factory.mktemp("hotline-circles")
    path = folder / "circles.json"
    path.write_text(json.dumps(directory(now), ensure_ascii=False), encoding="utf-8")
    with running_hotline(folder / "hotline-local.log", "--directory", str(path)) as url:
        yield Hotline(url)


def new_sms(hotline: Hotline, before: int, to: str) -> list[dict[str, str]]:
    return [m for m in hotline.sms()[before:] if m["to"] == to]


def test_the_directory_lists_each_circle_with_its_number(circles: Hotline) -> None:
    assert circles.get("/_local/directory").json()["circles"] == [
        {"number": FAMILY_LINE, "members": [TAKUMI, MIZUKI, HARUTO, AOI]},
        {"number": WORK_LINE, "members": [TAKUMI, REN]},
        {"number": QUIET_LINE, "members": [TAKUMI, SORA]},
        {"number": NINE_LINE, "members": [p["phone"] for p in NINE]},
    ]


def test_a_circle_member_picks_who_to_ask_with_one_digit(circles: Hotline) -> None:
    before = len(circles.sms())

    answer = circles.call(TAKUMI, to=FAMILY_LINE, digits="2")

    assert answer["prompts"][1] == (
        "話したい相手の番号を押してください。1: ミズキ、2: ハルト、3: Aoi。"
    )
    assert answer["prompts"][-1] == "ハルトさんに聞いてみます。電話を切ってお待ちください。"
    [invite] = new_sms(circles, before, HARUTO)
    assert circles.answer(link_in(invite["body"]), "yes").status == 200
    [told] = new_sms(circles, before, TAKUMI)
    assert "080-5555-6666" in told["body"]  # as a Japanese text shows it


def test_a_mutual_call_texts_both_and_invites_nobody_new(circles: Hotline) -> None:
    before = len(circles.sms())
    events_before = len(circles.events())
    circles.call(MIZUKI, to=FAMILY_LINE, digits="3")  # Mizuki asks for Aoi

    back = circles.call(AOI, to=FAMILY_LINE, digits="2")  # Aoi asks for Mizuki

    assert back["prompts"][-1] == "ミズキ wants to talk to you too. I'll text you both."
    kinds = [e["detail-type"] for e in circles.events()[events_before:]]
    assert kinds == ["CallRequested", "MutualCallMatched"]
    to_aoi = new_sms(circles, before, AOI)
    assert [m["body"] for m in to_aoi][1:] == [
        f"ミズキ wants to talk to you too and will call you ({MIZUKI})"
    ]
    [to_mizuki] = new_sms(circles, before, MIZUKI)
    assert (
        to_mizuki["body"] == "Aoiさんもあなたと話したいそうです。090-7777-8888 に電話してください"
    )


def test_the_dialled_number_picks_the_circle_and_a_repeat_only_hears_still_waiting(
    circles: Hotline,
) -> None:
    before = len(circles.sms())

    first = circles.call(TAKUMI, to=WORK_LINE)
    again = circles.call(TAKUMI, to=WORK_LINE)

    assert first["prompts"] == [GREETING, "レンさんに聞いてみます。電話を切ってお待ちください。"]
    assert first["lambda_invocations"] == 1
    assert again["prompts"] == [
        GREETING,
        "レンさんの返事をまだ待っています。電話を切ってお待ちください。",
    ]
    [invite] = new_sms(circles, before, REN)
    assert circles.answer(link_in(invite["body"]), "no").status == 200


def test_a_wrong_menu_digit_is_asked_again_once_then_goodbye_and_nothing_is_created(
    circles: Hotline,
) -> None:
    before, events_before = len(circles.sms()), len(circles.events())

    answer = circles.call(TAKUMI, to=FAMILY_LINE, digits="99")

    menu = "1: ミズキ、2: ハルト、3: Aoi"
    assert answer["prompts"] == [
        GREETING,
        f"話したい相手の番号を押してください。{menu}。",
        f"番号が正しくありません。話したい相手の番号を押してください。{menu}。",
        GOODBYE,
    ]
    assert circles.sms()[before:] == []
    assert circles.events()[events_before:] == []
    # No request was left open either: asking Mizuki now is a new request, not a repeat.
    fresh = circles.call(TAKUMI, to=FAMILY_LINE, digits="1")
    assert fresh["prompts"][-1] == "ミズキさんに聞いてみます。電話を切ってお待ちください。"
    [invite] = new_sms(circles, before, MIZUKI)
    assert circles.answer(link_in(invite["body"]), "no").status == 200


def test_in_a_circle_of_nine_digit_8_picks_the_last_other_person(circles: Hotline) -> None:
    caller = NINE[4]  # from the middle: the menu skips the caller and keeps the order
    others = [p for p in NINE if p is not caller]
    last = NINE[-1]
    before, events_before = len(circles.sms()), len(circles.events())

    answer = circles.call(caller["phone"], to=NINE_LINE, digits="8")

    menu = "、".join(f"{i}: {p['name']}" for i, p in enumerate(others, start=1))
    assert menu.endswith(f"8: {last['name']}")
    assert answer["prompts"][1] == f"話したい相手の番号を押してください。{menu}。"
    asking = f"{last['name']}さんに聞いてみます。電話を切ってお待ちください。"
    assert answer["prompts"][-1] == asking
    [invite] = circles.sms()[before:]
    assert invite["to"] == last["phone"]
    assert f"{caller['name']}さんが話したいそうです" in invite["body"]
    [requested] = circles.events()[events_before:]
    assert requested["detail"]["data"]["receiver"]["phone"] == last["phone"]
    assert circles.answer(link_in(invite["body"]), "no").status == 200


def test_during_quiet_hours_the_caller_hears_until_when_and_nobody_is_texted(
    circles: Hotline, now: datetime
) -> None:
    before, events_before = len(circles.sms()), len(circles.events())

    answer = circles.call(TAKUMI, to=QUIET_LINE)

    end = now + timedelta(hours=2)  # the quiet hours' end, to the minute
    until = f"{end.hour}時" + (f"{end.minute}分" if end.minute else "")
    assert answer["prompts"] == [
        GREETING,
        f"ソラさんは{until}までおやすみ時間です。そのあとでおかけ直しください。",
    ]
    assert circles.sms()[before:] == []
    assert circles.events()[events_before:] == []
