"""A directory entry's `reading`: the name as spoken (kana, or as it should sound in English).
Prompts say it; texts show the name. `hotline directory check` refuses an empty or non-text one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hotline_core.directory import DirectoryError, parse_directory
from hotline_tools.cli import app

TAKUMI, MIZUKI = "+819011112222", "+817033334444"


def two(**mizuki: object) -> list[dict[str, object]]:
    return [{"name": "拓海", "phone": TAKUMI}, {"name": "瑞希", "phone": MIZUKI, **mizuki}]


def test_a_reading_is_read_and_spoken_in_place_of_the_name():
    directory = parse_directory(json.dumps(two(reading=" みずき ")))

    mizuki = directory.circles[0].find(MIZUKI)
    assert mizuki is not None
    assert (mizuki.name, mizuki.reading, mizuki.spoken_name) == ("瑞希", "みずき", "みずき")
    takumi = directory.circles[0].find(TAKUMI)
    assert takumi is not None and takumi.reading is None and takumi.spoken_name == "拓海"


@pytest.mark.parametrize("reading", ["", "   ", 3, None, ["みずき"], {"ja": "みずき"}])
def test_a_reading_that_is_empty_or_not_text_is_refused(reading):
    with pytest.raises(DirectoryError) as error:
        parse_directory(json.dumps(two(reading=reading)))
    assert 'entry 2 (瑞希): "reading" must be non-empty text' in str(error.value)


def test_a_misspelt_reading_is_refused_with_a_suggestion():
    with pytest.raises(DirectoryError) as error:
        parse_directory(json.dumps(two(readin="みずき")))
    assert "unknown key(s) 'readin' (did you mean 'reading'?)" in str(error.value)


@pytest.mark.parametrize("reading", ["", 3])
def test_directory_check_refuses_an_empty_or_non_text_reading(tmp_path: Path, reading):
    path = tmp_path / "phonenumber.json"
    path.write_text(json.dumps(two(reading=reading), ensure_ascii=False), "utf-8")

    result = CliRunner().invoke(app, ["directory", "check", str(path)])

    assert result.exit_code == 1, result.output
    assert '"reading" must be non-empty text (the name as spoken)' in result.output


def test_directory_check_accepts_a_reading(tmp_path: Path):
    path = tmp_path / "phonenumber.json"
    path.write_text(json.dumps(two(reading="みずき"), ensure_ascii=False), "utf-8")

    result = CliRunner().invoke(app, ["directory", "check", str(path)])

    assert result.exit_code == 0, result.output
