"""A real `hotline local` process on a free port, and small HTTP helpers to talk to it.

The runtime keeps state for its whole life, so each test looks only at what happened after
its own call: `Hotline.sms_count` / `Hotline.events_count` before, `since` after."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pytest

from hotline_tools.local.process import NotHealthy, local_process
from tests.conftest import FORM_TYPE

STARTUP_LIMIT = 60.0  # generous: a loaded CI machine; never asserted as a timing


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.body)


@contextmanager
def running_hotline(log: Path, *args: str) -> Iterator[str]:
    """Start `hotline local --port P [args]`, wait until /_local/health is 200, yield its URL,
    then stop it with SIGTERM (Ctrl-C's clean path)."""
    try:
        with local_process(*args, log=log, limit=STARTUP_LIMIT) as running:
            yield running.url
    except NotHealthy as exc:
        pytest.fail(f"{exc}:\n{_tail(log)}")


def _tail(log: Path) -> str:
    return "\n".join(log.read_text("utf-8", "replace").splitlines()[-40:])


def request(
    base: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    req = urllib.request.Request(base + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return Response(resp.status, dict(resp.headers.items()), resp.read())
    except urllib.error.HTTPError as exc:
        return Response(exc.code, dict(exc.headers.items()), exc.read())


class Hotline:
    """The control API and the answer link, over real HTTP."""

    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, path: str) -> Response:
        return request(self.url, "GET", path)

    def post(self, path: str, body: bytes, content_type: str = "application/json") -> Response:
        return request(self.url, "POST", path, body, {"Content-Type": content_type})

    def post_json(self, path: str, data: Any) -> Response:
        return self.post(path, json.dumps(data).encode("utf-8"))

    def _ok(self, response: Response) -> Any:
        assert response.status == 200, (response.status, response.text)
        assert response.headers["Content-Type"] == "application/json; charset=utf-8"
        return response.json()

    def call(self, caller: str, **fields: str) -> dict[str, Any]:
        return self._ok(self.post_json("/_local/calls", {"from": caller, **fields}))

    def sms(self, to: str | None = None) -> list[dict[str, str]]:
        return self._ok(self.get("/_local/sms" + (f"?to={quote(to)}" if to else "")))

    def events(self) -> list[dict[str, Any]]:
        return self._ok(self.get("/_local/events"))

    def advance(self, seconds: float) -> dict[str, Any]:
        return self._ok(self.post_json("/_local/clock/advance", {"seconds": seconds}))

    def replay(self, start: str, end: str) -> dict[str, Any]:
        return self._ok(self.post_json("/_local/replay", {"from": start, "to": end}))

    def path_of(self, link: str) -> str:
        assert link.startswith(self.url + "/"), f"link {link} does not point at {self.url}"
        return urlsplit(link).path

    def open_link(self, link: str) -> Response:
        return self.get(self.path_of(link))

    def answer(self, link: str, answer: str) -> Response:
        return self.post(
            self.path_of(link),
            urlencode({"answer": answer}).encode("ascii"),
            FORM_TYPE,
        )


@pytest.fixture(scope="session")
def hotline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hotline]:
    log = tmp_path_factory.mktemp("hotline-local") / "hotline-local.log"
    with running_hotline(log) as url:
        yield Hotline(url)
