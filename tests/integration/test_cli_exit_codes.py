"""One meaning per exit code across `hotline` (see EXIT_CODES in hotline_tools/cli.py): 1 when
the input or the target is wrong, 2 when the command line is, whichever command reads it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hotline_tools.cli import EXIT_CODES, app

runner = CliRunner()
BAD_MEMBERS = json.dumps(
    [{"phone": "+819011112222", "member_id": "M1"}, {"phone": "090", "member_id": "[b]x"}]
)


@pytest.fixture(autouse=True)
def never_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    """`hotline local` must stop at a bad file: a server started here is a failure."""
    from hotline_tools.local import server

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("hotline local started although its input was bad")

    monkeypatch.setattr(server, "LocalServer", refuse)


def problems(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if line.strip().startswith("row ")]


def test_the_help_says_what_each_exit_code_means() -> None:
    said = " ".join(runner.invoke(app, ["--help"]).output.replace("│", " ").split())
    assert " ".join(EXIT_CODES.split()) in said


def test_a_bad_members_file_exits_1_and_says_the_same_from_import_and_from_local(
    tmp_path: Path,
) -> None:
    file = tmp_path / "members.json"
    file.write_text(BAD_MEMBERS)

    imported = runner.invoke(app, ["members", "import", str(file), "--local", "http://x:1"])
    served = runner.invoke(app, ["local", "--members", str(file), "--port", "0"])

    assert (imported.exit_code, served.exit_code) == (1, 1)
    assert (
        problems(imported.output)
        == problems(served.output)
        == [
            "row 2: phone *** is not an E.164 number (+ and 7-15 digits)",
            "row 2: member_id must be 1-64 letters, digits or . _ : -",
        ]
    )


def test_a_missing_file_exits_1_from_every_command(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.json")

    results = {
        "members import": runner.invoke(app, ["members", "import", missing]),
        "benefits import": runner.invoke(app, ["benefits", "import", missing]),
        "local --benefits": runner.invoke(app, ["local", "--benefits", missing, "--port", "0"]),
        "directory check": runner.invoke(app, ["directory", "check", missing]),
    }

    assert {name: r.exit_code for name, r in results.items()} == dict.fromkeys(results, 1)
    for result in results.values():
        assert f"cannot read {missing}" in " ".join(result.output.split())


@pytest.mark.parametrize(
    "args",
    [
        ["members", "import"],  # FILE missing
        ["benefits", "import", "f.json", "--nope"],
        ["replay", "--from", "yesterday"],
        ["replay", "--from", "0s", "--to", "1h"],
        ["replay", "--from", "1h", "--event-type", "Nope"],
        ["events", "tail", "--since", "soon"],
        ["call", "+819011112222", "--url", "ftp://127.0.0.1:3000"],
    ],
    ids=lambda args: " ".join(args[:2]) if isinstance(args, list) else str(args),
)
def test_a_wrong_command_line_exits_2(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
