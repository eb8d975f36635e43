"""Circles, several hotline numbers, mutual calls and repeats over real HTTP, against a
`hotline local --directory FILE` process started with a directory of two circles."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from .conftest import MIZUKI, TAKUMI, Hotline, link_in, running_hotline

pytestmark = pytest.mark.e2e

HARUTO, AOI, REN = "+818055556666", "+819077778888", "+818022223333"
FAMILY_LINE, WORK_LINE = "+815012340001", "+815012340009"
DIRECTORY = {
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
    ]
}


@pytest.fixture(scope="module")
def circles(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hotline]:
    folder = tmp_path_factory.mktemp("hotline-circles")
    directory = folder / "circles.json"
    directory.write_text(json.dumps(DIRECTORY, ensure_ascii=False), encoding="utf-8")
    with running_hotline(folder / "hotline-local.log", "--directory", str(directory)) as url:
        yield Hotline(url)


def new_sms(hotline: Hotline, before: int, to: str) -> list[dict[str, str]]:
    return [m for m in hotline.sms()[before:] if m["to"] == to]


def test_the_directory_lists_each_circle_with_its_number(circles: Hotline) -> None:
    assert circles.get("/_local/directory").json()["circles"] == [
        {"number": FAMILY_LINE, "members": [TAKUMI, MIZUKI, HARUTO, AOI]},
        {"number": WORK_LINE, "members": [TAKUMI, REN]},
    ]


def test_a_circle_member_picks_who_to_ask_with_one_digit(circles: Hotline) -> None:
    before = len(circles.sms())

    answer = circles.call(TAKUMI, to=FAMILY_LINE, digits="2")

    assert answer["prompts"][0] == (
        "話したい相手の番号を押してください。1: ミズキ、2: ハルト、3: Aoi。"
    )
    assert answer["prompts"][-1] == "ハルトさんに聞いてみます。電話を切ってお待ちください。"
    [invite] = new_sms(circles, before, HARUTO)
    assert circles.answer(link_in(invite["body"]), "yes").status == 200
    [told] = new_sms(circles, before, TAKUMI)
    assert HARUTO in told["body"]


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
    assert to_mizuki["body"] == f"Aoiさんもあなたと話したいそうです。{AOI} に電話してください"


def test_the_dialled_number_picks_the_circle_and_a_repeat_only_hears_still_waiting(
    circles: Hotline,
) -> None:
    before = len(circles.sms())

    first = circles.call(TAKUMI, to=WORK_LINE)
    again = circles.call(TAKUMI, to=WORK_LINE)

    assert first["prompts"] == ["レンさんに聞いてみます。電話を切ってお待ちください。"]
    assert first["lambda_invocations"] == 1
    assert again["prompts"] == ["レンさんの返事をまだ待っています。電話を切ってお待ちください。"]
    [invite] = new_sms(circles, before, REN)
    assert circles.answer(link_in(invite["body"]), "no").status == 200
