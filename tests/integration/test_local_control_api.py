"""The local runtime over real HTTP: the control API's methods, the HTTP API payload format 2.0
event the answer page's handler gets (query parameters, cookies, repeated headers, as API
Gateway builds it), every cookie a handler returns as its own Set-Cookie, and replay names."""

from __future__ import annotations

import copy
import http.client
import json
from typing import Any
from urllib.parse import urlsplit

import pytest

from hotline_tools.local.server import LocalServer
from tests.conftest import TAKUMI, load_event


def request(
    server: LocalServer,
    method: str,
    path: str,
    *,
    body: Any = None,
    headers: list[tuple[str, str]] = (),  # type: ignore[assignment]
) -> http.client.HTTPResponse:
    """One request, each header line as given (a name may repeat); the response read."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.putrequest(method, path)
    data = b"" if body is None else json.dumps(body).encode("utf-8")
    for name, value in headers:
        connection.putheader(name, value)
    connection.putheader("Content-Length", str(len(data)))
    connection.endheaders(data)
    response = connection.getresponse()
    response.body = response.read()  # type: ignore[attr-defined]
    connection.close()
    return response


def answer_path(server: LocalServer) -> str:
    """The path of the link in the SMS of a fresh call."""
    request(server, "POST", "/_local/calls", body={"from": TAKUMI})
    [event] = server.engine.events()
    return urlsplit(event["detail"]["data"]["link"]).path


def events_of(server: LocalServer, logical_id: str, response: Any = None) -> list[Any]:
    """Every event the function is invoked with from now on; with `response`, the handler
    is not run and that is what it returns."""
    seen: list[Any] = []
    invoke = server.engine.host.invoke

    def spy(function: str, event: Any) -> Any:
        if function != logical_id:
            return invoke(function, event)
        seen.append(copy.deepcopy(event))
        return response if response is not None else invoke(function, event)

    server.engine.host.invoke = spy  # type: ignore[method-assign]
    return seen


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_health_answers_only_get(server, method):
    response = request(server, method, "/_local/health", body={})

    assert response.status == 405
    assert response.getheader("Content-Type") == "application/json; charset=utf-8"
    assert json.loads(response.body) == {"error": f"{method} not allowed on /_local/health"}
    assert request(server, "GET", "/_local/health").status == 200


def test_the_answer_page_gets_an_http_api_v2_event_as_api_gateway_builds_it(server):
    path = answer_path(server)
    seen = events_of(server, "AnswerLinkFunction")

    response = request(
        server,
        "GET",
        path + "?lang=ja&lang=en&empty=&q=a%20b",
        headers=[
            ("Accept", "text/html"),
            ("X-Forwarded-For", "203.0.113.10"),
            ("X-Forwarded-For", "198.51.100.7"),
            ("Cookie", "seen=1; theme=dark"),
            ("Cookie", "late=yes"),
        ],
    )

    assert response.status == 200
    [event] = seen
    assert event["rawQueryString"] == "lang=ja&lang=en&empty=&q=a%20b"
    assert event["queryStringParameters"] == {"lang": "ja,en", "empty": "", "q": "a b"}
    assert event["cookies"] == ["seen=1", "theme=dark", "late=yes"]
    assert "cookie" not in event["headers"]
    assert event["headers"]["x-forwarded-for"] == "203.0.113.10,198.51.100.7"
    assert event["headers"]["accept"] == "text/html"
    assert all(name == name.lower() for name in event["headers"])
    assert event["pathParameters"] == {"token": path.rsplit("/", 1)[1]}
    assert event["routeKey"] == event["requestContext"]["routeKey"] == "GET /a/{token}"


def test_a_plain_get_has_exactly_the_keys_of_the_real_payload(server):
    path = answer_path(server)
    seen = events_of(server, "AnswerLinkFunction")

    assert request(server, "GET", path, headers=[("Accept", "text/html")]).status == 200

    [event] = seen
    fixture = load_event("http-api-v2-get-answer-page.json")
    assert set(event) == set(fixture)  # no query, no cookies, no body: no such keys
    assert set(event["requestContext"]) == set(fixture["requestContext"])
    assert set(event["requestContext"]["http"]) == set(fixture["requestContext"]["http"])


def test_every_cookie_a_handler_returns_is_its_own_set_cookie_header(server):
    path = answer_path(server)
    events_of(
        server,
        "AnswerLinkFunction",
        response={
            "statusCode": 200,
            "headers": {"Content-Type": "text/plain; charset=utf-8"},
            "cookies": ["a=1; Path=/", "b=2; HttpOnly"],
            "body": "ok",
        },
    )

    response = request(server, "GET", path)

    assert response.status == 200
    assert response.msg.get_all("Set-Cookie") == ["a=1; Path=/", "b=2; HttpOnly"]
    assert response.body == b"ok"


def test_each_replay_has_a_name_of_its_own_numbered_in_order(server):
    request(server, "POST", "/_local/calls", body={"from": TAKUMI})
    window = {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}

    names = [
        json.loads(request(server, "POST", "/_local/replay", body=window).body)["replay_name"]
        for _ in range(3)
    ]

    assert [name.rsplit("-", 1)[0] for name in names] == [
        "local-replay-1",
        "local-replay-2",
        "local-replay-3",
    ]
    assert len(set(names)) == 3
    replayed = [e["replay-name"] for e in server.engine.events() if "replay-name" in e]
    assert replayed == names
