"""Fuzzing the HTTP routes of the answer link: random paths, tokens, methods, headers and
bodies, huge and non-UTF-8 input, also against the link of a request that is waiting for its
answer. No 5xx: a clear 4xx, and nothing changes (no table item, no event, no SMS, no
schedule) unless the input is exactly a valid answer, which then does exactly what it should.

Each test prints how many inputs it tried (run pytest with -s): FUZZ_EXAMPLES each
(Hypothesis).
"""

from __future__ import annotations

from collections import Counter
from urllib.parse import parse_qs

from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import FORM_TYPE, TAKUMI
from tests.integration import fuzzing
from tests.integration.fuzzing import FUZZ, FUZZ_EXAMPLES, Live, snapshot

# The shared fixtures (pytest finds a fixture by its name in the module).
hotline = fuzzing.hotline


# --- HTTP ------------------------------------------------------------------------------------
token_chars = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40
)
paths = st.one_of(
    token_chars.map(lambda t: "/a/" + t),
    st.text(
        alphabet="abcdefghijklmnopqrstuvwxyz-_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
        min_size=22,
        max_size=22,
    ).map(lambda t: "/a/" + t),
    st.sampled_from(["/a/", "/a", "/", "/a/x/y", "/A/abc", "/a/%00", "/a/..%2F..%2Fetc"]),
)
methods = st.sampled_from(
    ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "post", "TRACE", "BREW"]
)
near_answers = st.sampled_from(
    [
        b"answer=yes",
        b"answer=no",
        b"answer=YES",
        b"answer=yes ",
        b"answer=maybe",
        b"answer=",
        b"answer",
        b"ANSWER=yes",
        b"answer=yes&answer=yes",
        b"answer=yes&answer=no",
        b"answer=yes&a=1&b=2&c=3&d=4&e=5",  # more fields than a form has
        b"answer=%79es",
        b"answer=yes;x=1",
        b"answer=yes%00",
        b"answer=yes\x00",
        b"\xef\xbb\xbfanswer=yes",
        b"answer=no&pad=" + b"x" * 1100,  # over the form's size limit
        b"answer=" + "はい".encode(),
        b"answer=%FF",
        b'{"answer": "yes"}',
        b"--b\r\nContent-Disposition: form-data; name=answer\r\n\r\nyes\r\n--b--",
    ]
)
bodies = st.one_of(
    st.binary(max_size=300),
    near_answers,
    st.builds(lambda a, b: a + b, near_answers, st.binary(max_size=20)),
    st.sampled_from(
        [
            b"answer=yes" * 200,  # too long
            b"\xff\xfe\xfd",
            b"\xc3\x28answer=yes",  # invalid UTF-8 first
            b"x" * 70_000,
            b"answer=yes&" + b"&" * 70_000,
        ]
    ),
)
header_values = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80),
    st.sampled_from(["", "x" * 10_000, "ümlaut", "\t", "0", "-1", "99999999999999999999"]),
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "content-type": st.one_of(
            st.sampled_from(
                [
                    FORM_TYPE,
                    FORM_TYPE + "; charset=utf-8",
                    FORM_TYPE + "; charset=shift_jis",
                    "application/json",
                    "multipart/form-data; boundary=b",
                    "text/plain",
                    "",
                ]
            ),
            header_values,
        ),
        "content-length": header_values,
        "cookie": header_values,
        "user-agent": header_values,
        "x-forwarded-for": header_values,
        "origin": header_values,
        "referer": header_values,
        "x-http-method-override": st.sampled_from(["POST", "GET", "DELETE"]),
    },
)


def valid_answer(method: str, body: bytes) -> str | None:
    """The one thing that may answer a request: a POST whose body is a form (UTF-8, at most
    1 KiB, at most 5 fields) with exactly one `answer` field, `yes` or `no`."""
    if method != "POST":
        return None
    try:
        text = body.decode("utf-8")
        fields = parse_qs(text, max_num_fields=5)
    except (UnicodeDecodeError, ValueError):
        return None
    values = fields.get("answer", [])
    ok = len(text) <= 1024 and len(values) == 1 and values[0] in ("yes", "no")
    return values[0] if ok else None


def test_random_requests_to_the_link_routes_never_5xx_and_change_nothing(hotline):
    local = hotline
    local.call(TAKUMI)
    before = snapshot(local)
    tried = 0

    @FUZZ
    @given(method=methods, path=paths, body=bodies, headers=headers)
    def probe(method, path, body, headers):
        nonlocal tried
        tried += 1
        response = local.http(method, path, body=body, headers=headers)
        status = 404 if response is None else response.status
        assert 400 <= status < 500, (method, path, status)

    probe()
    assert snapshot(local) == before
    assert tried == FUZZ_EXAMPLES
    print(f"\nHTTP fuzz, random paths: {tried} requests")


def test_junk_posted_to_a_waiting_requests_link_changes_nothing(hotline):
    """The real link of a real request: anything but exactly a valid answer leaves it, and
    everything else, as it was; a valid answer settles it once (then a new request is made)."""
    local = hotline
    live = Live(local)
    tried, answered = 0, Counter()

    @FUZZ
    @given(method=st.one_of(st.just("POST"), methods), body=bodies, headers=headers)
    def probe(method, body, headers):
        nonlocal tried
        tried += 1
        before = snapshot(local)
        response = local.http(method, live.path, body=body, headers=headers)
        assert response is not None
        answer = valid_answer(method, body)
        if answer is not None:
            assert response.status == 200, response
            assert live.state() == ("accepted/" if answer == "yes" else "refused/declined")
            answered[answer] += 1
            live.renew()
            return
        if method == "GET":
            assert response.status == 200  # the page; GET never answers
        elif method == "POST":
            assert response.status == 400, (body, response.status)
        else:
            assert response.status == 405, (method, response.status)
        assert live.state() == "inquiry/"
        assert snapshot(local) == before, (method, body, headers)

    probe()
    assert tried == FUZZ_EXAMPLES and local.handler_errors == ()
    print(f"\nHTTP fuzz, a waiting request's link: {tried} requests, valid answers {answered}")
