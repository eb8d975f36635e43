"""Dead letters end to end: faults make consumers fail three times over three minutes of the
local clock, `hotline dead-letters list --local` shows them without a phone number, and
`redrive` re-invokes each once; the consumers decide again from the request's state, so the
invariants still hold and a second redrive sends nothing."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from hotline_core import messages
from hotline_tools import dead_letters
from hotline_tools.cli import app
from tests.conftest import MIZUKI, TAKUMI

pytestmark = pytest.mark.e2e
runner = CliRunner()


def control(server: Any, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        server.url + path, data=data, method=method, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def texts(server: Any, to: str) -> list[str]:
    return [m["body"] for m in control(server, "GET", f"/_local/sms?to=%2B{to[1:]}")]


@pytest.fixture(autouse=True)
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """Wide enough that no cell of the table is folded."""
    monkeypatch.setattr(dead_letters, "console", Console(width=250))


def test_a_redriven_time_out_tells_the_caller_once_and_a_second_redrive_sends_nothing(server):
    control(server, "POST", "/_local/faults", {"service": "sms", "to": TAKUMI, "times": 99})
    control(server, "POST", "/_local/calls", {"from": TAKUMI})
    # The window, the timer's minute, then Lambda's two retries of the "can't talk".
    control(server, "POST", "/_local/clock/advance", {"seconds": 240 + 60 + 120 + 10})
    assert texts(server, TAKUMI) == []
    cleared = control(server, "DELETE", "/_local/faults")  # the provider works again
    assert [f["to"] for f in cleared] == [TAKUMI]

    listed = runner.invoke(app, ["dead-letters", "list", "--local", server.url])
    assert listed.exit_code == 0, listed.output
    assert "TimedOut" in listed.output and "Throttling" in listed.output
    assert TAKUMI not in listed.output and MIZUKI not in listed.output

    first = runner.invoke(app, ["dead-letters", "redrive", "--all", "--local", server.url])
    assert first.exit_code == 0, first.output
    control(server, "POST", "/_local/clock/advance", {"seconds": 1})
    cant_talk = messages.text("timed_out", "ja", receiver="ミズキ")
    assert texts(server, TAKUMI) == [cant_talk]  # the request ended; its caller told once

    again = runner.invoke(app, ["dead-letters", "redrive", "--all", "--local", server.url])
    assert again.exit_code == 0 and "no dead letters" in again.output
    assert texts(server, TAKUMI) == [cant_talk]


def test_an_invitation_retried_after_the_window_closed_is_not_sent_and_leaves_no_letter(server):
    """Throttled on the first attempt and the retry a minute later; Lambda's last retry, three
    minutes after the call, finds the window closed: it sends nothing, and has nothing left to
    fail, so there is nothing to re-drive. The caller is told the receiver can't talk."""
    control(server, "POST", "/_local/faults", {"service": "sms", "to": MIZUKI, "times": 99})
    control(server, "POST", "/_local/calls", {"from": TAKUMI})
    control(server, "POST", "/_local/clock/advance", {"seconds": 240 + 60 + 120 + 10})

    assert texts(server, MIZUKI) == []
    assert control(server, "GET", "/_local/dead-letters") == []
    assert texts(server, TAKUMI) == [messages.text("timed_out", "ja", receiver="ミズキ")]
    assert len(control(server, "GET", "/_local/faults")) == 1  # not even tried a third time
