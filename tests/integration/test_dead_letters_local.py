"""`hotline dead-letters list` and `redrive` with --local: a small HTTP server on 127.0.0.1
plays the local runtime's dead-letter contract (GET /_local/dead-letters,
POST /_local/dead-letters/redrive).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from typing import Any

import pytest

from hotline_tools.cli import app
from tests.conftest import MIZUKI, load_event
from tests.integration import dead_letters_cli
from tests.integration.dead_letters_cli import REQUEST_ID, assert_no_phone, rows, runner
from tests.integration.operator_stack import JsonHandler

# The shared autouse fixture: pytest finds a fixture by its name in the test module.
quick_and_wide = dead_letters_cli.quick_and_wide


LOCAL_LETTER = {
    "id": "dl-1",
    "function": "InviteReceiverFunction",
    "event_type": "CallRequested",
    "request_id": REQUEST_ID,
    "error": f"ConnectionError: SMS to {MIZUKI} failed",
    "failed_at": (datetime.now(UTC) - timedelta(hours=3, minutes=12, seconds=5)).isoformat(),
    "requestContext": {"functionArn": "arn:aws:lambda:ap-northeast-1:123456789012:function:x"},
    "requestPayload": load_event("eventbridge-call-requested.json"),
    "responsePayload": {"errorType": "ConnectionError", "errorMessage": f"SMS to {MIZUKI}"},
    "timestamp": "2026-01-01T00:00:00Z",
}


class FakeRuntime(ThreadingHTTPServer):
    """The local runtime's dead-letter routes, nothing else."""

    def __init__(self, letters: list[dict[str, Any]]) -> None:
        super().__init__(("127.0.0.1", 0), _Routes)
        self.letters = letters
        self.redriven: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Routes(JsonHandler):
    server: FakeRuntime

    def do_GET(self) -> None:
        if self.path == "/_local/dead-letters":
            self.answer(200, self.server.letters)
        else:
            self.answer(404, {"error": "no such route"})

    def do_POST(self) -> None:
        if self.path != "/_local/dead-letters/redrive":
            self.answer(404, {"error": "no such route"})
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"] or 0)) or b"{}")
        wanted = [
            letter for letter in self.server.letters if body.get("id") in (None, letter["id"])
        ]
        if "id" in body and not wanted:
            self.answer(404, {"error": f"no dead letter {body['id']}"})
            return
        for letter in wanted:
            self.server.letters.remove(letter)
            self.server.redriven.append(letter["id"])
        self.answer(200, {"redriven": len(wanted)})


@pytest.fixture
def runtime() -> Iterator[FakeRuntime]:
    # dl-2 says no failed_at: its age is the record's own timestamp.
    day_ago = (datetime.now(UTC) - timedelta(hours=26, minutes=1)).isoformat()
    # Its age counted from now, not from when the module was imported (a long run would
    # otherwise show it minutes older than the test expects).
    failed_at = (datetime.now(UTC) - timedelta(hours=3, minutes=12, seconds=5)).isoformat()
    letters = [
        dict(LOCAL_LETTER, failed_at=failed_at),
        dict(LOCAL_LETTER, id="dl-2", failed_at=None, timestamp=day_ago),
    ]
    server = FakeRuntime(letters)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_list_local_prints_only_the_summary_fields(runtime):
    result = runner.invoke(app, ["dead-letters", "list", "--local", runtime.url])

    assert result.exit_code == 0, result.output
    assert rows(result.output) == [  # oldest first
        [
            "dl-2",
            "InviteReceiverFunction",
            "CallRequested",
            REQUEST_ID,
            "ConnectionError: SMS to +81********44 failed",
            "1 d 2 h",
        ],
        [
            "dl-1",
            "InviteReceiverFunction",
            "CallRequested",
            REQUEST_ID,
            "ConnectionError: SMS to +81********44 failed",
            "3 h 12 min",
        ],
    ]
    assert_no_phone(result.output)


def test_redrive_local_one_then_the_same_again_then_all(runtime):
    one = runner.invoke(app, ["dead-letters", "redrive", "dl-1", "--local", runtime.url])
    again = runner.invoke(app, ["dead-letters", "redrive", "dl-1", "--local", runtime.url])
    rest = runner.invoke(app, ["dead-letters", "redrive", "--all", "--local", runtime.url])
    nothing = runner.invoke(app, ["dead-letters", "redrive", "--all", "--local", runtime.url])
    listed = runner.invoke(app, ["dead-letters", "list", "--local", runtime.url])

    assert (one.exit_code, one.output.strip()) == (0, "re-driven: 1 dead letter")
    assert again.exit_code == 1
    assert again.output.strip() == "404: no dead letter dl-1"
    assert (rest.exit_code, rest.output.strip()) == (0, "re-driven: 1 dead letter")
    assert (nothing.exit_code, nothing.output.strip()) == (0, "no dead letters")
    assert runtime.redriven == ["dl-1", "dl-2"]
    assert listed.output.strip() == f"no dead letters in {runtime.url}"


def test_no_local_runtime_is_one_line_and_exit_1():
    result = runner.invoke(app, ["dead-letters", "list", "--local", "http://127.0.0.1:9"])

    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert "no local hotline at http://127.0.0.1:9" in line
