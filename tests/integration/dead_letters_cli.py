"""What the tests of `hotline dead-letters` share: the CLI runner, a request id, the console
every test runs with (no long poll, wide enough that no cell is folded), the table's rows as
cells, and the check that no phone number shows."""

from __future__ import annotations

import re

import pytest
from rich.console import Console
from typer.testing import CliRunner

from hotline_tools import dead_letters
from tests.conftest import LINE_A as LINE
from tests.conftest import MIZUKI, TAKUMI

PHONES = (TAKUMI, MIZUKI, LINE)
REQUEST_ID = "b6f2c1c4-3d5e-4f6a-8b7c-9d0e1f2a3b4c"
runner = CliRunner()


@pytest.fixture(autouse=True)
def quick_and_wide(monkeypatch: pytest.MonkeyPatch) -> None:
    # moto waits out a long poll on an empty queue; real SQS keeps WAIT_SECONDS.
    monkeypatch.setattr(dead_letters, "WAIT_SECONDS", 0)
    # Wide enough that no cell is folded: what a phone number would look like is checked
    # on whole cells.
    monkeypatch.setattr(dead_letters, "console", Console(width=250))


def rows(output: str) -> list[list[str]]:
    """The table's body rows, as lists of cells."""
    return [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in output.splitlines()
        if line.strip().startswith("│")
    ]


def assert_no_phone(output: str) -> None:
    for phone in PHONES:
        assert phone not in output
        assert phone[3:] not in output  # nor its national digits
    assert not re.search(r"[0-9]{7,}", re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "", output))
