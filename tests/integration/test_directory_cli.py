"""`hotline directory check` and `hotline directory push`: the people shown with masked phones,
every problem of a bad file on its own line (as `hotline local` says it), and a push to the
stack's bucket only when the file is valid.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from hotline_core.phone import mask_phone
from hotline_tools.cli import app
from tests.conftest import MIZUKI, TAKUMI
from tests.integration import operator_stack
from tests.integration.operator_stack import STACK, runner

# Shared fixtures: pytest finds a fixture by its name in the test module.
stack = operator_stack.stack


GOOD = [{"name": "タクミ", "phone": TAKUMI}, {"name": "ミズキ", "phone": MIZUKI, "lang": "en"}]


def write(tmp_path: Path, content: Any) -> Path:
    path = tmp_path / "phonenumber.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content), "utf-8")
    return path


def test_directory_check_shows_the_people_with_masked_phones(tmp_path):
    result = runner.invoke(app, ["directory", "check", str(write(tmp_path, GOOD))])
    assert result.exit_code == 0, result.output
    assert "タクミ" in result.output and "ミズキ" in result.output
    assert mask_phone(TAKUMI) in result.output
    assert TAKUMI not in result.output


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("[{", "not valid JSON"),
        ({"name": "x"}, "JSON array"),
        ([{"name": "タクミ", "phone": "090-1111-2222"}, GOOD[1]], "entry 1"),
        ([GOOD[0], {"name": "ミズキ", "phone": TAKUMI}], "entry 2"),
        ([GOOD[0]], "two"),
    ],
    ids=["not-json", "not-an-array", "not-e164", "duplicate-phone", "one-person"],
)
def test_directory_check_says_what_is_wrong_and_exits_1(tmp_path, content, says):
    result = runner.invoke(app, ["directory", "check", str(write(tmp_path, content))])
    assert result.exit_code == 1
    assert says in result.output


def test_directory_check_lists_every_problem_on_its_own_line(tmp_path):
    content = [{"name": "タクミ", "phone": "090-1111-2222"}, {"name": "", "phone": TAKUMI}]
    result = runner.invoke(app, ["directory", "check", str(write(tmp_path, content))])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[-3].endswith(": 2 problems")
    assert lines[-2:] == [
        "  entry 1 (タクミ): phone is not an E.164 number (like +819011112222)",
        '  entry 2: "name" is missing or empty',
    ]


def test_local_refuses_a_bad_directory_as_directory_check_does(tmp_path):
    content = [{"name": "タクミ", "phone": TAKUMI, "quiet-hours": "22:00-07:00"}, GOOD[1]]
    result = runner.invoke(app, ["local", "--directory", str(write(tmp_path, content))])
    assert result.exit_code == 1  # the input is wrong, not the command line
    assert "unknown key(s) 'quiet-hours' (did you mean 'quiet_hours'?)" in result.output


def test_directory_check_of_a_missing_file_exits_1(tmp_path):
    result = runner.invoke(app, ["directory", "check", str(tmp_path / "nope.json")])
    assert result.exit_code == 1
    assert "cannot read" in result.output


def test_directory_push_uploads_a_valid_directory(stack, tmp_path):
    path = write(tmp_path, GOOD)
    result = runner.invoke(app, ["directory", "push", str(path), "--stack", STACK])
    assert result.exit_code == 0, result.output
    body = (
        boto3.client("s3")
        .get_object(Bucket=stack["DirectoryBucketName"], Key="phonenumber.json")["Body"]
        .read()
    )
    assert body == path.read_bytes()


def test_directory_push_uploads_nothing_when_invalid(stack, tmp_path):
    path = write(tmp_path, [GOOD[0]])
    result = runner.invoke(app, ["directory", "push", str(path), "--stack", STACK])
    assert result.exit_code == 1
    listed = boto3.client("s3").list_objects_v2(Bucket=stack["DirectoryBucketName"])
    assert listed.get("KeyCount", 0) == 0
