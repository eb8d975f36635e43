"""Whole conversations over real HTTP against a started `hotline local` process: the control
API drives the phones and the clock, the answer link is the real handler behind the
template's HTTP API route.

Every test completes its own conversation (answered or timed out), so advancing the clock in
one test never times out another test's request."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.conftest import MIZUKI, TAKUMI, link_in

from .conftest import Hotline

pytestmark = pytest.mark.e2e

HOTLINE_NUMBER = "+815012340001"
STRANGER = "+819099998888"
# From a call until its answer timer has surely fired: the 120 s window, its end rounded up
# to a whole minute (< 60 s), and Scheduler firing anywhere in that minute (< 60 s).
UNTIL_THE_TIMER = 240


class Mark:
    """What the runtime had recorded before a step, to see only what came after it."""

    def __init__(self, hotline: Hotline) -> None:
        self.hotline = hotline
        self.sms = len(hotline.sms())
        self.events = len(hotline.events())

    def new_sms(self, to: str | None = None) -> list[dict[str, str]]:
        return [m for m in self.hotline.sms()[self.sms :] if to is None or m["to"] == to]

    def new_events(self, request_id: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.hotline.events()[self.events :]
            if request_id is None or e["detail"]["data"]["request_id"] == request_id
        ]


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["detail-type"] for e in events]


def start_call(hotline: Hotline, caller: str, receiver: str) -> tuple[str, str, Mark]:
    """`caller` rings the hotline; returns the request id, the link `receiver` got, and the
    mark from before the call."""
    mark = Mark(hotline)
    result = hotline.call(caller)
    assert result["attributes"]["registered"] == "true"
    invites = mark.new_sms(receiver)
    assert len(invites) == 1, invites
    assert mark.new_sms(caller) == []
    return result["contact_id"], link_in(invites[0]["body"]), mark


def test_health_directory_and_simulator_page(hotline: Hotline) -> None:
    health = hotline.get("/_local/health")
    assert (health.status, health.json()) == (200, {"status": "ok"})
    directory = hotline.get("/_local/directory").json()
    assert {(p["name"], p["phone"]) for p in directory["people"]} == {
        ("タクミ", TAKUMI),
        ("ミズキ", MIZUKI),
    }
    assert directory["lines"]["hotline"] == HOTLINE_NUMBER
    # A plain-array directory is one circle on the default hotline number.
    assert directory["circles"] == [{"number": None, "members": [TAKUMI, MIZUKI]}]
    page = hotline.get("/")
    assert page.status == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "/_local/directory" in page.text


def test_accepted(hotline: Hotline) -> None:
    request_id, link, mark = start_call(hotline, TAKUMI, MIZUKI)
    invite = mark.new_sms(MIZUKI)[0]["body"]
    assert "タクミさんが話したいそうです" in invite
    assert kinds(mark.new_events(request_id)) == ["CallRequested"]

    page = hotline.open_link(link)
    assert page.status == 200
    assert 'name="answer"' in page.text and 'value="yes"' in page.text
    assert 'value="no"' in page.text
    # Looking at the page changes nothing: no event, no SMS.
    assert kinds(mark.new_events(request_id)) == ["CallRequested"]
    assert len(mark.new_sms()) == 1

    done = hotline.answer(link, "yes")
    assert done.status == 200
    told = mark.new_sms(TAKUMI)
    assert len(told) == 1
    assert "070-3333-4444" in told[0]["body"] and "ミズキさんが話せます" in told[0]["body"]
    assert kinds(mark.new_events(request_id)) == ["CallRequested", "Accepted"]

    # The timer was cancelled: the window passing later texts nobody.
    assert hotline.advance(180)["fired"] == 0
    assert len(mark.new_sms()) == 2
    assert kinds(mark.new_events(request_id)) == ["CallRequested", "Accepted"]


def test_declined_tells_the_caller_at_once(hotline: Hotline) -> None:
    request_id, link, mark = start_call(hotline, TAKUMI, MIZUKI)
    assert hotline.answer(link, "no").status == 200
    told = mark.new_sms(TAKUMI)
    assert len(told) == 1
    assert "ミズキさんは今は話せません" in told[0]["body"]
    assert MIZUKI not in told[0]["body"]
    assert kinds(mark.new_events(request_id)) == ["CallRequested", "Declined"]


def test_timed_out(hotline: Hotline) -> None:
    request_id, _link, mark = start_call(hotline, TAKUMI, MIZUKI)
    assert hotline.advance(UNTIL_THE_TIMER)["fired"] >= 1
    told = mark.new_sms(TAKUMI)
    assert len(told) == 1
    assert "話せないようです" in told[0]["body"]
    assert kinds(mark.new_events(request_id)) == ["CallRequested", "TimedOut"]

    # The schedule was deleted after firing: a later advance fires nothing more.
    assert hotline.advance(180)["fired"] == 0
    assert len(mark.new_sms(TAKUMI)) == 1
    assert kinds(mark.new_events(request_id)) == ["CallRequested", "TimedOut"]


def test_late_accept(hotline: Hotline) -> None:
    request_id, link, mark = start_call(hotline, TAKUMI, MIZUKI)
    hotline.advance(UNTIL_THE_TIMER)
    assert kinds(mark.new_events(request_id)) == ["CallRequested", "TimedOut"]

    page = hotline.open_link(link)
    assert page.status == 200
    assert "時間切れ" in page.text and 'value="yes"' in page.text

    done = hotline.answer(link, "yes")
    assert done.status == 200
    assert HOTLINE_NUMBER in done.text
    told = mark.new_sms(TAKUMI)
    assert len(told) == 2  # "can't talk", then "free now"
    assert "今なら" in told[1]["body"] and "070-3333-4444" in told[1]["body"]
    assert kinds(mark.new_events(request_id)) == ["CallRequested", "TimedOut", "Accepted"]
    accepted = mark.new_events(request_id)[-1]
    assert accepted["detail"]["data"]["late"] is True


def test_unknown_caller_hears_not_registered_and_nothing_happens(hotline: Hotline) -> None:
    mark = Mark(hotline)
    result = hotline.call(STRANGER)
    assert result["attributes"]["registered"] == "false"
    assert any("登録されていません" in prompt for prompt in result["prompts"])
    assert mark.new_sms() == []
    assert mark.new_events() == []


def test_both_directions(hotline: Hotline) -> None:
    first_id, link, mark = start_call(hotline, TAKUMI, MIZUKI)
    hotline.answer(link, "yes")
    assert "070-3333-4444" in mark.new_sms(TAKUMI)[0]["body"]

    second_id, back_link, back = start_call(hotline, MIZUKI, TAKUMI)
    assert second_id != first_id
    assert "ミズキさんが話したいそうです" in back.new_sms(TAKUMI)[0]["body"]
    assert hotline.answer(back_link, "yes").status == 200
    told = back.new_sms(MIZUKI)
    assert len(told) == 1
    assert "090-1111-2222" in told[0]["body"] and "タクミさんが話せます" in told[0]["body"]
    assert kinds(back.new_events(second_id)) == ["CallRequested", "Accepted"]
    caller = back.new_events(second_id)[0]["detail"]["data"]["caller"]
    assert caller["phone"] == MIZUKI


def test_replay_shows_the_events_again_and_texts_nobody(hotline: Hotline) -> None:
    request_id, link, mark = start_call(hotline, TAKUMI, MIZUKI)
    hotline.answer(link, "yes")
    original = mark.new_events(request_id)
    assert kinds(original) == ["CallRequested", "Accepted"]
    times = [datetime.fromisoformat(e["time"].replace("Z", "+00:00")) for e in original]
    sent = len(hotline.sms())

    # Event times have whole seconds; the window covers the last one's second entirely.
    result = hotline.replay(min(times).isoformat(), (max(times) + timedelta(seconds=1)).isoformat())
    assert result["replayed"] >= 2
    replayed = [e for e in mark.new_events(request_id) if "replay-name" in e]
    assert kinds(replayed) == ["CallRequested", "Accepted"]
    assert {e["replay-name"] for e in replayed} == {result["replay_name"]}
    assert [e["detail"] for e in replayed] == [e["detail"] for e in original]
    assert len(hotline.sms()) == sent

    # Nor does the replayed CallRequested leave a timer behind that would text later.
    hotline.advance(180)
    assert len(hotline.sms()) == sent


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/_local/calls", b"not json"),
        ("/_local/calls", b"[]"),
        ("/_local/calls", b""),
        ("/_local/calls", b"{}"),
        ("/_local/calls", b'{"from": 819011112222}'),
        ("/_local/calls", b'{"from": "+819011112222", "line": "pizza"}'),
        ("/_local/calls", b'{"from": "+819011112222", "digits": "12a"}'),
        ("/_local/calls", b'{"from": "+819011112222", "to": 5}'),
        ("/_local/clock/advance", b'{"seconds": -1}'),
        ("/_local/clock/advance", b'{"seconds": "60"}'),
        ("/_local/clock/advance", b'{"seconds": true}'),
        ("/_local/clock/advance", b'{"seconds": null}'),
        ("/_local/clock/advance", b"{}"),
        # Python's json reads these; each must be refused, not overflow the clock (a 500).
        ("/_local/clock/advance", b'{"seconds": 1e20}'),
        ("/_local/clock/advance", b'{"seconds": 1e9}'),  # 31 years: past the 10-year bound
        ("/_local/clock/advance", b'{"seconds": 1' + b"0" * 400 + b"}"),  # no float holds it
        ("/_local/clock/advance", b'{"seconds": 1' + b"0" * 5000 + b"}"),  # nor does int()
        ("/_local/clock/advance", b'{"seconds": NaN}'),
        ("/_local/clock/advance", b'{"seconds": Infinity}'),
        ("/_local/clock/advance", b'{"seconds": -Infinity}'),
        ("/_local/replay", b'{"from": "yesterday", "to": "2026-01-01T00:00:00Z"}'),
        ("/_local/replay", b'{"from": "2026-01-01T00:00:00Z"}'),
        ("/_local/replay", b'{"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}'),
    ],
)
def test_bad_body_is_a_400_with_a_json_error(hotline: Hotline, path: str, body: bytes) -> None:
    mark = Mark(hotline)
    response = hotline.post(path, body)
    assert response.status == 400
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    error = response.json()["error"]
    assert isinstance(error, str) and error
    assert mark.new_sms() == [] and mark.new_events() == []


def test_oversized_body_is_refused(hotline: Hotline) -> None:
    response = hotline.post("/_local/calls", b"{" + b" " * (65 * 1024) + b"}")
    assert response.status == 413
    assert "error" in response.json()


def test_unknown_link_is_a_404_page(hotline: Hotline) -> None:
    response = hotline.get("/a/AAAAAAAAAAAAAAAAAAAAAA")
    assert response.status == 404
    assert response.headers["Content-Type"].startswith("text/html")
    assert "このリンクは無効です" in response.text
    assert hotline.get("/nowhere").status == 404


def test_answer_page_headers(hotline: Hotline) -> None:
    _request_id, link, _mark = start_call(hotline, TAKUMI, MIZUKI)
    page = hotline.open_link(link)
    headers = {k.lower(): v for k, v in page.headers.items()}
    assert headers["referrer-policy"] == "no-referrer"
    assert "no-store" in headers["cache-control"]
    assert "default-src 'none'" in headers["content-security-policy"]
    hotline.answer(link, "no")  # finish the conversation: no pending timer for other tests
