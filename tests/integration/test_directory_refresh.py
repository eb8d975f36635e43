"""A pushed directory reaches warm functions within a minute: the adapter keeps a copy for a
minute, then asks S3 with the copy's ETag (304 when unchanged); a bad new copy leaves the good
one in use. Locally, `hotline directory push FILE --local` uploads to the runtime's bucket."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from hotline_core.adapters.directory_source import FRESH_FOR, S3Directory
from hotline_core.directory import DirectoryError
from hotline_tools.local.engine import BadRequest
from tests.conftest import EVENTS, HARUTO

WHERE = {"Bucket": "hotline-people", "Key": "phonenumber.json"}
THREE = json.dumps(
    [
        {"name": "タクミ", "phone": "+819011112222"},
        {"name": "ミズキ", "phone": "+817033334444"},
        {"name": "ハルト", "phone": HARUTO},
    ],
    ensure_ascii=False,
).encode()


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 4, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _body(raw: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(raw), len(raw))


def _not_modified(stub: Stubber) -> None:
    stub.add_client_error(
        "get_object",
        service_error_code="304",
        service_message="Not Modified",
        http_status_code=304,
        expected_params={**WHERE, "IfNoneMatch": '"v1"'},
    )


@pytest.fixture
def s3():
    client = boto3.client("s3", region_name="ap-northeast-1")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def test_a_copy_is_used_for_a_minute_then_checked_with_its_etag(s3):
    client, stub = s3
    two = (EVENTS / "phonenumber.json").read_bytes()
    clock = Clock()
    directory = S3Directory(client, "hotline-people", "phonenumber.json", clock=clock)
    stub.add_response("get_object", {"Body": _body(two), "ETag": '"v1"'}, WHERE)
    first = directory.load()
    clock.now += FRESH_FOR - timedelta(seconds=1)
    assert directory.load() is first  # no call: nothing queued for it

    clock.now += timedelta(seconds=1)
    _not_modified(stub)
    assert directory.load() is first  # unchanged: a 304, no parse

    clock.now += FRESH_FOR
    stub.add_response(
        "get_object", {"Body": _body(THREE), "ETag": '"v2"'}, {**WHERE, "IfNoneMatch": '"v1"'}
    )
    pushed = directory.load()
    assert HARUTO in [p.phone for p in pushed.people]


def test_a_bad_new_copy_keeps_the_good_one_and_says_why(s3):
    client, stub = s3
    two = (EVENTS / "phonenumber.json").read_bytes()
    clock = Clock()
    directory = S3Directory(client, "hotline-people", "phonenumber.json", clock=clock)
    stub.add_response("get_object", {"Body": _body(two), "ETag": '"v1"'}, WHERE)
    good = directory.load()

    clock.now += FRESH_FOR
    stub.add_response(
        "get_object",
        {"Body": _body(b"[{}]"), "ETag": '"v2"'},
        {**WHERE, "IfNoneMatch": '"v1"'},
    )
    assert directory.load() is good
    assert directory.problem and "at least two people" in directory.problem


def test_a_bad_first_copy_still_fails_loudly(s3):
    client, stub = s3
    stub.add_response("get_object", {"Body": _body(b"not json"), "ETag": '"v1"'}, WHERE)
    with pytest.raises(DirectoryError, match="not valid JSON"):
        S3Directory(client, "hotline-people", "phonenumber.json").load()


def test_a_person_pushed_to_a_running_local_hotline_is_recognised_within_a_minute(local):
    assert "登録されていません" in local.call(HARUTO)["prompts"][1]  # warms the function

    assert local.push_directory(THREE) == 3
    local.advance(FRESH_FOR.total_seconds())

    prompts = local.call(HARUTO, digits="1")["prompts"]
    assert "登録されていません" not in prompts[1], prompts


def test_a_bad_directory_pushed_locally_is_refused_and_changes_nothing(local):
    with pytest.raises(BadRequest, match="at least two people"):
        local.push_directory(b'[{"name": "A", "phone": "+819011112222"}]')
    local.advance(FRESH_FOR.total_seconds())
    assert "登録されていません" not in local.call("+819011112222")["prompts"][1]


def test_directory_push_local_over_http_then_a_minute_later_the_new_person_calls(server, tmp_path):
    from typer.testing import CliRunner

    from hotline_tools.cli import app
    from tests.integration.test_local_control_api import request

    file = tmp_path / "phonenumber.json"
    file.write_bytes(THREE)

    pushed = CliRunner().invoke(app, ["directory", "push", str(file), "--local", server.url])

    assert pushed.exit_code == 0, pushed.output
    assert HARUTO not in pushed.output  # phones are masked
    assert [p["phone"] for p in server.people()][-1] == HARUTO  # the simulator's phones follow
    server.engine.advance(FRESH_FOR.total_seconds())
    called = request(server, "POST", "/_local/calls", body={"from": HARUTO, "digits": "1"})
    assert "登録されていません" not in json.loads(called.body)["prompts"][1]


def test_a_bad_directory_pushed_over_http_is_a_400_naming_the_problem(server):
    from tests.integration.test_local_control_api import request

    response = request(server, "PUT", "/_local/directory", body={"not": "a list"})

    assert response.status == 400
    assert "array" in json.loads(response.body)["error"]
