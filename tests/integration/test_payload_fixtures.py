"""The payloads in tests/events/ as AWS delivers them, fed to the real handlers with a real
token or request id put in: API Gateway's HTTP API (v2) GET of the answer page, and the
input EventBridge Scheduler hands the answer timer."""

from __future__ import annotations

import json

from tests.conftest import MIZUKI, TAKUMI, detail_types, load_event, request_item


def with_real_token(event, token):
    """The fixture with its token replaced everywhere it appears (path, raw path, params)."""
    fixture_token = event["pathParameters"]["token"]
    replaced = json.loads(json.dumps(event).replace(fixture_token, token))
    assert json.dumps(replaced).count(token) == json.dumps(event).count(fixture_token) == 3
    return replaced


def page_text(result):
    assert result["isBase64Encoded"] is False
    return result["body"]


def test_the_http_api_v2_get_fixture_shows_the_page_of_a_real_link_and_changes_nothing(local):
    answer = local.call(TAKUMI)
    token = local.events()[0]["detail"]["data"]["link"].rsplit("/", 1)[1]
    event = with_real_token(load_event("http-api-v2-get-answer-page.json"), token)
    assert (event["routeKey"], event["rawPath"]) == ("GET /a/{token}", f"/a/{token}")

    result = local.host.invoke("AnswerLinkFunction", event)
    local.pump()

    assert result["statusCode"] == 200
    headers = result["headers"]
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-store"
    assert headers["Referrer-Policy"] == "no-referrer"
    csp = [d.strip() for d in headers["Content-Security-Policy"].split(";")]
    assert {"default-src 'none'", "form-action 'self'", "frame-ancestors 'none'"} <= set(csp)
    assert not [d for d in csp if d.startswith("script-src")]
    html = page_text(result)
    assert '<html lang="ja">' in html and "タクミさんが話したいそうです。" in html
    assert 'name="answer" value="yes"' in html and 'name="answer" value="no"' in html
    assert request_item(local, answer["contact_id"])["status"]["S"] == "inquiry"
    assert detail_types(local) == ["CallRequested"]
    assert [m["to"] for m in local.sms()] == [MIZUKI]


def test_the_http_api_v2_get_fixture_as_committed_is_an_unknown_link(local):
    # Its token was never issued: proof that the page above came from the real one.
    result = local.host.invoke("AnswerLinkFunction", load_event("http-api-v2-get-answer-page.json"))

    assert result["statusCode"] == 404
    assert "このリンクは無効です。" in page_text(result)


def test_the_scheduler_fixture_has_the_shape_the_timer_adapter_writes(local):
    local.call(TAKUMI)
    [summary] = local.client("scheduler").list_schedules()["Schedules"]
    schedule = local.client("scheduler").get_schedule(
        Name=summary["Name"], GroupName=summary["GroupName"]
    )
    written = json.loads(schedule["Target"]["Input"])

    fixture = load_event("scheduler-answer-timer.json")

    assert set(fixture) <= set(written)
    assert {k: type(v) for k, v in fixture.items()} == {k: type(written[k]) for k in fixture}


def test_the_scheduler_fixture_times_out_a_real_request_once(local):
    answer = local.call(TAKUMI)
    event = load_event("scheduler-answer-timer.json")
    assert event["request_id"] != answer["contact_id"]
    event["request_id"] = answer["contact_id"]

    first = local.host.invoke("AnswerTimerFunction", event)
    local.pump()
    again = local.host.invoke("AnswerTimerFunction", event)  # Scheduler delivers at least once
    local.pump()

    assert (first, again) == ({"outcome": "applied"}, {"outcome": "already_settled"})
    item = request_item(local, answer["contact_id"])
    assert (item["status"]["S"], item["reason"]["S"]) == ("refused", "timed_out")
    assert detail_types(local)[:2] == ["CallRequested", "TimedOut"]
    assert [m["body"] for m in local.sms(TAKUMI)] == [
        "ミズキさんは今は話せないようです。連絡を待ってください"
    ]


def test_the_scheduler_fixture_as_committed_names_no_request_and_changes_nothing(local):
    answer = local.call(TAKUMI)

    result = local.host.invoke("AnswerTimerFunction", load_event("scheduler-answer-timer.json"))
    local.pump()

    assert result == {"outcome": "not_found"}
    assert request_item(local, answer["contact_id"])["status"]["S"] == "inquiry"
    assert detail_types(local) == ["CallRequested"]
