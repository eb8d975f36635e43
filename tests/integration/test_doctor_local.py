"""`hotline doctor --local URL`: against the local runtime and a fake of its control API."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from hotline_tools.cli import app
from tests.integration import doctor_stack
from tests.integration.doctor_stack import (
    BENEFITS_LINE,
    LINE1,
    MIZUKI,
    REN,
    TAKUMI,
    assert_no_phone,
    lines,
    runner,
)
from tests.integration.operator_stack import JsonHandler

# The shared fixtures: pytest finds a fixture by its name in the test module.
wide = doctor_stack.wide


# --- a local runtime -------------------------------------------------------------------------
def test_local_against_the_local_runtime_passes_and_says_what_it_cannot_check(server) -> None:
    result = runner.invoke(app, ["doctor", "--local", server.url])

    assert result.exit_code == 0, result.output
    found = lines(result.output)
    assert [name for name, (symbol, _, _) in found.items() if symbol == "✓"] == [
        "health",
        "directory",
        "dead letters",
        "faults",
    ]
    assert found["AWS checks"][0] == "!"
    assert "SMS account (sandbox, spend limit, origination identity)" in found["AWS checks"][1]
    assert found["AWS checks"][2] == "run hotline doctor --stack NAME against the deployment"
    assert "hotline +81********01" in found["directory"][1]


class FakeRuntime(JsonHandler):
    """The local runtime's control routes the doctor reads, answering `routes`."""

    routes: ClassVar[dict[str, tuple[int, Any]]] = {}

    def do_GET(self) -> None:
        self.answer(*self.routes.get(self.path, (404, {"error": "no route"})))


@pytest.fixture
def fake_runtime() -> Iterator[tuple[str, dict[str, tuple[int, Any]]]]:
    routes: dict[str, tuple[int, Any]] = {
        "/_local/health": (200, {"status": "ok"}),
        "/_local/directory": (
            200,
            {
                "people": [
                    {"name": "タクミ", "phone": TAKUMI, "lang": "ja"},
                    {"name": "ミズキ", "phone": MIZUKI, "lang": "ja"},
                    {"name": "レン", "phone": REN, "lang": "ja"},
                ],
                "lines": {"hotline": LINE1, "benefits": BENEFITS_LINE},
                "circles": [
                    {"number": LINE1, "members": [TAKUMI, MIZUKI]},
                    {"number": BENEFITS_LINE, "members": [TAKUMI, REN]},
                ],
            },
        ),
        "/_local/dead-letters": (200, [{"id": "a"}, {"id": "b"}]),
        "/_local/faults": (200, [{"service": "sms", "to": None, "times": 2, "error": None}]),
    }
    handler = type("Handler", (FakeRuntime,), {"routes": routes})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", routes
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_local_dead_letters_a_circle_on_another_line_and_armed_faults(fake_runtime) -> None:
    url, _ = fake_runtime

    result = runner.invoke(app, ["doctor", "--local", url])

    assert result.exit_code == 1
    found = lines(result.output)
    assert found["dead letters"] == (
        "✗",
        "2 dead letters",
        f"look at them: hotline dead-letters list --local {url}; fix the cause; then "
        f"hotline dead-letters redrive --all --local {url}",
    )
    assert found["circle 2 number"][:2] == (
        "✗",
        "+81********02 is the benefits line's number: on AWS a number runs one flow, so its "
        "calls would reach that line",
    )
    assert found["faults"] == (
        "!",
        "1 fault(s) armed (sms): the next calls to them fail on purpose",
        f"disarm them: curl -X DELETE {url}/_local/faults",
    )
    assert_no_phone(result.output)


def test_local_a_runtime_still_starting_is_a_warning_and_an_error_route_fails_one_line(
    fake_runtime,
) -> None:
    url, routes = fake_runtime
    routes["/_local/health"] = (503, {"status": "starting"})

    starting = runner.invoke(app, ["doctor", "--local", url])

    assert starting.exit_code == 0
    assert lines(starting.output)["health"][0] == "!"

    routes["/_local/health"] = (200, {"status": "ok"})
    routes["/_local/dead-letters"] = (500, {"error": "KeyError: 'x'"})

    broken = runner.invoke(app, ["doctor", "--local", url])

    assert broken.exit_code == 1
    assert lines(broken.output)["dead letters"][:2] == ("✗", "500: KeyError: 'x'")
    assert "Traceback" not in broken.output


def test_local_nobody_there_fails_and_a_bad_url_is_a_command_line_error() -> None:
    nobody = runner.invoke(app, ["doctor", "--local", "http://127.0.0.1:9"])
    bad = runner.invoke(app, ["doctor", "--local", "127.0.0.1:3000"])

    assert nobody.exit_code == 1
    assert lines(nobody.output)["health"] == (
        "✗",
        "no local hotline at http://127.0.0.1:9",
        "start one: make run (port 3000), or hotline local --port PORT",
    )
    assert bad.exit_code == 2
