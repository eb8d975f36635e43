"""Every response the link's route gives carries the page's security headers: no referrer
(the URL holds the token), no caching, a strict Content-Security-Policy. Not only the 200 of
a GET: answers, bad answers, unknown and forged links, expired links, and the retry page of a
failed publish or a DynamoDB outage."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from hotline_core.requests import LINK_LIFETIME
from hotline_core.runtime.clients import client as cached_client
from tests import conftest
from tests.conftest import FORM, MIZUKI, TAKUMI, detail_types, status_of


def assert_security_headers(response) -> None:
    headers = {k.lower(): v for k, v in response.headers.items()}
    where = f"{response.status}: {sorted(headers)}"
    assert headers.get("referrer-policy") == "no-referrer", where
    assert headers.get("cache-control") == "no-store", where
    csp = headers.get("content-security-policy", "")
    directives = dict(
        (d.split()[0], d.split()[1:]) for d in (p.strip() for p in csp.split(";")) if d
    )
    # Nothing may load or run (no script at all), the form posts only back here, no framing.
    assert directives.get("default-src") == ["'none'"], where
    assert directives.get("form-action") == ["'self'"], where
    assert directives.get("frame-ancestors") == ["'none'"], where
    assert "script-src" not in directives and "unsafe-eval" not in csp, where


def link_path(local) -> str:
    """The path of the link in Mizuki's latest text."""
    return conftest.link_path(local.sms(MIZUKI)[-1]["body"])


def test_the_page_and_both_answers_carry_the_headers(local):
    answer = local.call(TAKUMI)
    path = link_path(local)

    shown = local.http("GET", path)
    accepted = local.http("POST", path, body=b"answer=yes", headers=FORM)
    repeated = local.http("POST", path, body=b"answer=no", headers=FORM)  # shows how it stands

    assert (shown.status, accepted.status, repeated.status) == (200, 200, 200)
    for response in (shown, accepted, repeated):
        assert_security_headers(response)
    assert status_of(local, answer["contact_id"]) == "accepted"


def test_a_decline_carries_the_headers(local):
    local.call(TAKUMI)

    declined = local.http("POST", link_path(local), body=b"answer=no", headers=FORM)

    assert declined.status == 200
    assert_security_headers(declined)


def test_a_bad_answer_400_carries_the_headers(local):
    answer = local.call(TAKUMI)
    path = link_path(local)

    for body in (b"", b"answer=maybe", b"answer=yes&answer=no", b"\xff\xfe"):
        page = local.http("POST", path, body=body, headers=FORM)
        assert page.status == 400, body
        assert_security_headers(page)

    assert status_of(local, answer["contact_id"]) == "inquiry"


def test_an_unknown_or_forged_link_404_carries_the_headers(local):
    for path in ("/a/AAAAAAAAAAAAAAAAAAAAAA", "/a/forged", "/a/" + "x" * 500, "/a/%00%ff"):
        for method in ("GET", "POST"):
            page = local.http(method, path, body=b"answer=yes", headers=FORM)
            assert page.status == 404, (method, path)
            assert_security_headers(page)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_an_expired_link_410_carries_the_headers(local, method):
    answer = local.call(TAKUMI)
    path = link_path(local)
    assert LINK_LIFETIME.total_seconds() == 24 * 3600  # as the README promises
    local.advance(LINK_LIFETIME.total_seconds() + 60)

    page = local.http(method, path, body=b"answer=yes", headers=FORM)

    assert page.status == 410
    assert_security_headers(page)
    assert status_of(local, answer["contact_id"]) == "refused"  # timed out, not accepted


class _Http200:
    status_code = 200
    headers: dict[str, str] = {}  # noqa: RUF012


def test_the_retry_page_of_a_failed_publish_503_carries_the_headers(local, hook):
    local.call(TAKUMI)

    def fail_accepted(params, **kwargs):
        entry = json.loads(params["body"])["Entries"][0]
        if entry["DetailType"] == "Accepted":
            response = {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure"}]}
            return (_Http200(), response)  # short-circuits the call
        return None

    hook(cached_client("events"), "before-call.events.PutEvents", fail_accepted)

    page = local.http("POST", link_path(local), body=b"answer=yes", headers=FORM)

    assert page.status == 503
    assert_security_headers(page)


def dynamodb_down(**kwargs: Any) -> None:
    raise ClientError(
        {
            "Error": {"Code": "InternalServerError", "Message": "Internal server error"},
            "ResponseMetadata": {"HTTPStatusCode": 500},
        },
        kwargs["model"].name,
    )


@pytest.mark.parametrize(
    ("method", "operation"), [("GET", "GetItem"), ("POST", "UpdateItem"), ("POST", "GetItem")]
)
def test_a_dynamodb_outage_is_a_503_page_with_the_headers_and_changes_nothing(
    local, hook, method, operation
):
    """Not API Gateway's bare 500 (no headers, no words): our retry page. (POST with GetItem
    down: a bad answer reads the request to answer in the receiver's language.)"""
    answer = local.call(TAKUMI)
    path = link_path(local)
    body = b"answer=yes" if operation == "UpdateItem" else b"answer=maybe"
    hook(cached_client("dynamodb"), f"before-call.dynamodb.{operation}", dynamodb_down)

    page = local.http(method, path, body=body if method == "POST" else b"", headers=FORM)

    assert page.status == 503
    assert_security_headers(page)
    assert "もう一度" in page.body.decode("utf-8")
    # Read through the runtime's own client, which the outage hook is not on.
    assert status_of(local, answer["contact_id"]) == "inquiry"
    assert detail_types(local) == ["CallRequested"]
    assert local.sms(TAKUMI) == []


def test_a_method_the_routes_do_not_take_never_reaches_the_function_nor_gets_a_page(local):
    """API Gateway answers a method no route takes by itself (no HTML, so nothing for the
    page headers to protect), and the function never runs: only GET and POST are routed."""
    answer = local.call(TAKUMI)
    path = link_path(local)
    invoked = local.host.invocations.get("AnswerLinkFunction", 0)

    for method in ("PUT", "DELETE", "PATCH"):
        page = local.http(method, path, body=b"answer=yes", headers=FORM)
        assert page.status in (404, 405), method
        assert "text/html" not in page.headers.get("Content-Type", ""), method

    assert local.host.invocations.get("AnswerLinkFunction", 0) == invoked
    assert status_of(local, answer["contact_id"]) == "inquiry"


def test_a_path_the_function_does_not_know_is_its_404_page_with_the_headers(local):
    """A request API Gateway routes to the function but no handler takes (a path with more
    segments, say, if the route ever widens): the resolver's own not-found answer."""
    from types import SimpleNamespace

    from hotline_tools.local.host import http_api_event

    for path in ("/a/x/y", "/", "/b/AAAAAAAAAAAAAAAAAAAAAA"):
        event = http_api_event("GET", path, route_key="$default", path_parameters={})

        result = local.host.invoke("AnswerLinkFunction", event)

        page = SimpleNamespace(status=result["statusCode"], headers=result["headers"])
        assert page.status == 404, path
        assert_security_headers(page)
