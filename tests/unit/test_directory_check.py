"""`hotline directory check` warns of a name that makes an invitation longer than the README's
segment promise (its Benchmarks section: the Japanese invitation is 2 segments with the default
link for a caller name of up to 38 characters, 1 with a short domain for up to 13; BENCHMARKS.md:
an English one is 1), counted with the link the stack would really send; the file stays valid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hotline_core.directory import parse_directory
from hotline_tools.cli import app
from hotline_tools.segments import long_invitations

runner = CliRunner()
TAKUMI, MIZUKI, HARUTO = "+819011112222", "+817033334444", "+818055556666"
SHORT = "https://h.example.jp"


def check(tmp_path: Path, people: list[dict[str, str]], *options: str):
    path = tmp_path / "phonenumber.json"
    path.write_text(json.dumps(people, ensure_ascii=False), "utf-8")
    return runner.invoke(app, ["directory", "check", str(path), *options])


def warnings(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("warning:")]


@pytest.mark.parametrize(
    ("options", "longest"),
    [((), 38), (("--base-url", SHORT), 13)],
    ids=["default link: 2 segments", "short domain: 1 segment"],
)
def test_a_japanese_name_one_character_past_the_promise_is_warned_of(tmp_path, options, longest):
    fits = [{"name": "ア" * longest, "phone": TAKUMI}, {"name": "ミズキ", "phone": MIZUKI}]
    over = [{"name": "ア" * (longest + 1), "phone": TAKUMI}, {"name": "ミズキ", "phone": MIZUKI}]

    quiet = check(tmp_path, fits, *options)
    warned = check(tmp_path, over, *options)

    assert quiet.exit_code == 0 and warnings(quiet.output) == [], quiet.output
    assert warned.exit_code == 0, warned.output  # valid all the same
    [line] = warnings(warned.output)
    promise = 2 if not options else 1
    assert f"{'ア' * (longest + 1)}'s name makes the Japanese invitation {promise + 1} SMS " in line
    assert f"the README promises {promise} with " in line
    assert f"The first {longest} of its characters would fit." in line
    assert warned.output.rstrip().endswith("ok")


def test_a_base_url_is_counted_as_the_link_the_stack_would_send(tmp_path):
    people = [{"name": "ア" * 14, "phone": TAKUMI}, {"name": "ミズキ", "phone": MIZUKI}]

    # The execute-api endpoint keeps the default link's promise; a longer domain fits less.
    api = "https://a1b2c3d4e5.execute-api.ap-northeast-1.amazonaws.com"
    assert warnings(check(tmp_path, people, "--base-url", api).output) == []
    [line] = warnings(check(tmp_path, people, "--base-url", "https://hotline.example.com").output)
    assert "promises 1 with a short domain (https://hotline.example.com)" in line
    assert "The first 6 of its characters would fit." in line  # 7 characters more than SHORT


def test_an_english_receiver_is_warned_of_a_name_that_makes_their_invitation_ucs2(tmp_path):
    people = [
        {"name": "タクミ", "phone": TAKUMI},
        {"name": "Mizuki", "phone": MIZUKI, "lang": "en"},
        {"name": "Haruto", "phone": HARUTO, "lang": "en"},
    ]

    result = check(tmp_path, people)

    assert result.exit_code == 0, result.output
    [line] = warnings(result.output)
    assert "タクミ's name makes the English invitation 2 SMS segments" in line
    assert "the README promises 1 with the default execute-api link" in line
    assert "outside GSM-7 makes the whole text UCS-2" in line


def test_a_name_is_counted_in_the_languages_of_those_it_can_reach_only():
    # Nobody in the first circle reads English: タクミ's and ミズキ's names are never in an
    # English text. In the second, Haruto's name reaches Ren in Japanese, Ren's Haruto in English.
    directory = parse_directory(
        json.dumps(
            {
                "circles": [
                    {
                        "number": "+815012340001",
                        "members": [
                            {"name": "タクミ", "phone": TAKUMI},
                            {"name": "ミズキ", "phone": MIZUKI},
                        ],
                    },
                    {
                        "number": "+815012340002",
                        "members": [
                            {"name": "H" * 60, "phone": HARUTO, "lang": "en"},
                            {"name": "レン", "phone": "+818022223333"},
                        ],
                    },
                ]
            }
        )
    )

    found = long_invitations(directory)

    assert [(long.name, long.lang, long.segments, long.promise) for long in found] == [
        ("H" * 60, "ja", 3, 2),
        ("レン", "en", 2, 1),
    ]


def test_a_base_url_with_a_path_is_a_command_line_error(tmp_path):
    people = [{"name": "タクミ", "phone": TAKUMI}, {"name": "ミズキ", "phone": MIZUKI}]
    result = check(tmp_path, people, "--base-url", "https://h.example.jp/a")
    assert result.exit_code == 2
    assert "no path" in result.output
