"""Domain rules with no AWS at all: directory, tokens, timer rounding, texts and segments.
(The directory's S3 reader runs against botocore's Stubber: nothing leaves the process.)"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.response import StreamingBody
from botocore.stub import Stubber
from hypothesis import given
from hypothesis import strategies as st

from hotline_core.adapters.directory_source import S3Directory
from hotline_core.directory import DirectoryError, parse_directory
from hotline_core.messages import text
from hotline_core.phone import mask_phone
from hotline_core.requests import hash_token, looks_like_token, new_link, timer_fire_at
from hotline_tools.segments import sms_segments
from tests.conftest import EVENTS


def test_the_original_directory_file_is_accepted_as_is():
    directory = parse_directory((EVENTS / "phonenumber.json").read_bytes())
    assert [(p.name, p.phone, p.lang) for p in directory.people] == [
        ("タクミ", "+819011112222", "ja"),
        ("ミズキ", "+817033334444", "ja"),
    ]


def test_optional_lang_is_read():
    raw = json.dumps(
        [
            {"name": "Ann", "phone": "+447700900123", "lang": "en"},
            {"name": "B", "phone": "+819011112222"},
        ]
    )
    assert parse_directory(raw).people[0].lang == "en"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("not json", "not valid JSON"),
        ('{"name": "A"}', "must be a JSON array"),
        ('[{"name": "A", "phone": "+819011112222"}]', "at least two people, found 1"),
        ("[]", "at least two people, found 0"),
        (
            '[{"name": "A", "phone": "09011112222"}, {"name": "B", "phone": "+817033334444"}]',
            "entry 1 (A): phone is not an E.164 number",
        ),
        (
            # Digits of another script: a \d pattern takes them, no phone can dial them.
            '[{"name": "A", "phone": "+81٩٠١١١١٢٢٢٢"}, {"name": "B", "phone": "+817033334444"}]',
            "entry 1 (A): phone is not an E.164 number",
        ),
        (
            '[{"name": "A", "phone": "+819011112222"}, {"name": "B", "phone": "+819011112222"}]',
            "entry 2 (B): phone is also used by entry 1",
        ),
        (
            '[{"name": "", "phone": "+819011112222"}, {"name": "B", "phone": "+817033334444"}]',
            'entry 1: "name" is missing or empty',
        ),
        (
            '[{"name": "A", "phone": "+819011112222", "lang": "fr"},'
            ' {"name": "B", "phone": "+817033334444"}]',
            "lang 'fr' is not one of ja, en",
        ),
        ('["+819011112222", "+817033334444"]', "entry 1: must be an object"),
    ],
)
def test_a_bad_directory_is_a_clear_error_naming_the_problem(raw, problem):
    with pytest.raises(DirectoryError) as error:
        parse_directory(raw)
    assert problem in str(error.value)


@pytest.fixture
def s3():
    client = boto3.client("s3", region_name="ap-northeast-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


WHERE = {"Bucket": "hotline-people", "Key": "phonenumber.json"}


@pytest.mark.parametrize(
    ("code", "status", "problem"),
    [
        ("NoSuchKey", 404, "does not exist"),
        ("NoSuchBucket", 404, "names a bucket that does not exist"),
        # Without s3:ListBucket, S3 answers a missing key with 403 AccessDenied.
        ("AccessDenied", 403, "it is missing, or this function may not read it"),
    ],
)
def test_a_missing_directory_file_is_a_directory_error_naming_bucket_and_key(
    s3, code, status, problem
):
    client, stubber = s3
    stubber.add_client_error("get_object", code, http_status_code=status, expected_params=WHERE)

    with pytest.raises(DirectoryError) as error:
        S3Directory(client, **{k.lower(): v for k, v in WHERE.items()}).load()

    message = str(error.value)
    assert "s3://hotline-people/phonenumber.json" in message
    assert problem in message and f"({code})" in message
    assert isinstance(error.value.__cause__, ClientError)  # the S3 error is kept as the cause


def test_a_passing_s3_failure_is_raised_as_is_so_the_call_can_be_retried(s3):
    client, stubber = s3
    stubber.add_client_error("get_object", "SlowDown", http_status_code=503)

    with pytest.raises(ClientError) as error:
        S3Directory(client, bucket="hotline-people", key="phonenumber.json").load()

    assert not isinstance(error.value, DirectoryError)


def test_the_directory_is_read_once_and_kept(s3):
    client, stubber = s3
    body = (EVENTS / "phonenumber.json").read_bytes()
    stubber.add_response("get_object", {"Body": _streaming(body)}, expected_params=WHERE)
    directory = S3Directory(client, bucket="hotline-people", key="phonenumber.json")

    first, second = directory.load(), directory.load()  # one response queued: one read

    assert first is second and len(first.people) == 2


def _streaming(body: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(body), len(body))


def test_tokens_are_128_bit_short_and_stored_only_as_a_hash():
    now = datetime(2026, 11, 22, tzinfo=UTC)
    links = [new_link(now) for _ in range(200)]
    assert len({link.token for link in links}) == 200
    for link in links:
        assert len(link.token) == 22 and looks_like_token(link.token)  # 16 random bytes
        assert link.token_hash == hash_token(link.token) and link.token not in link.token_hash
        assert link.expires_at == now + timedelta(hours=24)


@given(
    st.datetimes(
        timezones=st.just(UTC), min_value=datetime(2020, 1, 1), max_value=datetime(2100, 1, 1)
    )
)
def test_the_timer_fires_on_a_whole_minute_never_early_and_less_than_a_minute_late(answer_by):
    fire_at = timer_fire_at(answer_by)
    assert fire_at >= answer_by.replace(microsecond=answer_by.microsecond)
    assert fire_at - answer_by < timedelta(minutes=1)
    assert fire_at.second == 0 and fire_at.microsecond == 0


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("[" * 80, 1),  # extended GSM-7 characters cost two septets
        ("[" * 81, 2),
        ("あ" * 70, 1),
        ("あ" * 71, 2),
        ("あ" * 134, 2),
        ("あ" * 135, 3),
        ("a" * 69 + "あ", 1),  # one Japanese character turns the whole message UCS-2
        ("😀" * 35, 1),  # outside the BMP: two UTF-16 units each
        ("😀" * 36, 2),
    ],
)
def test_sms_segments_follow_gsm7_and_ucs2_rules(body, segments):
    assert sms_segments(body) == segments


def test_japanese_invitation_fits_two_segments_with_the_default_link_and_one_with_a_short_domain():
    token = "hgTxPk_xhPAsPPlzOc0sYQ"
    default = f"https://abcdefghij.execute-api.ap-northeast-1.amazonaws.com/a/{token}"
    custom = f"https://h.example.jp/a/{token}"
    assert sms_segments(text("invite", "ja", caller="タクミ", link=default)) == 2
    assert sms_segments(text("invite", "ja", caller="タクミ", link=custom)) == 1


@pytest.mark.parametrize("key", ["accepted", "accepted_late", "declined", "timed_out"])
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_every_message_to_the_caller_is_one_segment(key, lang):
    body = text(key, lang, receiver="ミズキ" if lang == "ja" else "Mizuki", phone="+817033334444")
    assert sms_segments(body) == 1


def test_masked_phone_keeps_too_little_to_call():
    assert mask_phone("+819011112222") == "+81********22"
    assert "9011112222" not in mask_phone("+819011112222")
