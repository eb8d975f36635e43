"""The hotline end to end in-process: template provisioned in moto, the real handlers, the
contact flow interpreted, events routed by the template's rules, the timer on Scheduler."""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
from datetime import UTC, datetime, timedelta

import pytest

from hotline_core.adapters.store import DynamoRequestStore
from hotline_core.requests import Outcome, Step
from hotline_core.runtime.clients import client as cached_client
from tests.conftest import (
    FORM,
    MIZUKI,
    TAKUMI,
    detail_types,
    link_path,
    load_event,
    request_item,
    schedules,
)

# From a call until its answer timer has surely fired: the 120 s window, its end rounded up
# to a whole minute (< 60 s), and Scheduler firing anywhere in that minute (< 60 s).
UNTIL_THE_TIMER = 240


def start_call(local, caller=TAKUMI):
    answer = local.call(caller)
    invite = [m for m in local.sms() if m["body"].startswith(("タクミ", "ミズキ"))][-1]
    return answer, link_path(invite["body"])


def test_registered_call_creates_inquiry_publishes_once_and_invites(local):
    answer = local.call(TAKUMI)

    assert answer["lambda_invocations"] == 1
    assert answer["attributes"]["registered"] == "true"
    assert answer["prompts"][-1] == "ミズキさんに聞いてみます。電話を切ってお待ちください。"
    item = request_item(local, answer["contact_id"])
    assert item["status"]["S"] == "inquiry"
    events = local.events()
    assert [e["detail-type"] for e in events] == ["CallRequested"]
    data = events[0]["detail"]["data"]
    assert data["request_id"] == answer["contact_id"]
    assert data["caller"]["phone"] == TAKUMI and data["receiver"]["phone"] == MIZUKI
    # The link is a random token, never the contact id.
    assert answer["contact_id"] not in data["link"]
    [invite] = local.sms()
    assert invite["to"] == MIZUKI
    assert invite["body"] == f"タクミさんが話したいそうです。{data['link']}"


def test_answer_timer_is_a_one_shot_rounded_up_and_deleted_after_completion(local):
    answer = local.call(TAKUMI)
    data = local.events()[0]["detail"]["data"]

    [summary] = schedules(local)
    schedule = local.client("scheduler").get_schedule(
        Name=summary["Name"], GroupName=summary["GroupName"]
    )
    assert schedule["Name"] == f"answer-{answer['contact_id']}"
    assert schedule["ActionAfterCompletion"] == "DELETE"
    at = datetime.fromisoformat(schedule["ScheduleExpression"][3:-1]).replace(tzinfo=UTC)
    answer_by = datetime.fromisoformat(data["answer_by"])
    assert at >= answer_by and at - answer_by < timedelta(minutes=1)
    assert at.second == 0
    assert at.timestamp() == math.ceil(answer_by.timestamp() / 60) * 60
    token = data["link"].rsplit("/", 1)[1]
    assert json.loads(schedule["Target"]["Input"]) == {
        "request_id": answer["contact_id"],
        "link_hash": hashlib.sha256(token.encode()).hexdigest(),  # where the request is stored
    }


def test_unknown_number_is_told_and_nothing_is_stored_or_sent(local):
    answer = local.call("+819099998888")

    assert answer["attributes"]["registered"] == "false"
    assert answer["prompts"][-1] == "この電話番号は登録されていません。"
    table = local.stack.output("RequestsTableName")
    assert local.client("dynamodb").scan(TableName=table)["Count"] == 0
    assert local.sms() == [] and local.events() == [] and schedules(local) == []


def test_get_shows_the_page_and_changes_nothing(local):
    answer, path = start_call(local)

    for _ in range(2):  # SMS apps prefetch links: any number of GETs is harmless
        page = local.http("GET", path)
        assert page.status == 200
        html = page.body.decode("utf-8")
        assert "タクミさんが話したいそうです。" in html
        assert 'name="answer" value="yes"' in html and 'name="answer" value="no"' in html

    assert request_item(local, answer["contact_id"])["status"]["S"] == "inquiry"
    assert detail_types(local) == ["CallRequested"]


def test_yes_accepts_tells_the_caller_once_and_cancels_the_timer(local):
    answer, path = start_call(local)

    page = local.http("POST", path, body=b"answer=yes", headers=FORM)

    assert page.status == 200
    assert "タクミさんに伝えました" in page.body.decode("utf-8")
    assert request_item(local, answer["contact_id"])["status"]["S"] == "accepted"
    assert detail_types(local) == ["CallRequested", "Accepted"]
    assert local.events()[-1]["detail"]["data"]["late"] is False
    to_caller = local.sms(TAKUMI)
    assert [m["body"] for m in to_caller] == [
        "ミズキさんが話せます。070-3333-4444 に電話してください"
    ]
    assert schedules(local) == []
    # The window passing later changes nothing.
    assert local.advance(600)["fired"] == 0
    assert len(local.sms(TAKUMI)) == 1


def test_a_repeated_yes_changes_nothing(local):
    _, path = start_call(local)
    local.http("POST", path, body=b"answer=yes", headers=FORM)

    again = local.http("POST", path, body=b"answer=no", headers=FORM)

    assert again.status == 200
    assert "タクミさんに伝えました" in again.body.decode("utf-8")
    assert detail_types(local) == ["CallRequested", "Accepted"]
    assert len(local.sms(TAKUMI)) == 1


def test_no_declines_and_tells_the_caller_at_once(local):
    answer, path = start_call(local)

    page = local.http("POST", path, body=b"answer=no", headers=FORM)

    assert page.status == 200
    item = request_item(local, answer["contact_id"])
    assert (item["status"]["S"], item["reason"]["S"]) == ("refused", "declined")
    assert detail_types(local) == ["CallRequested", "Declined"]
    assert [m["body"] for m in local.sms(TAKUMI)] == ["ミズキさんは今は話せません。"]
    # A yes after a "not now" is not a late yes: the answer stands.
    local.http("POST", path, body=b"answer=yes", headers=FORM)
    assert detail_types(local) == ["CallRequested", "Declined"]


def test_silence_times_out_and_the_caller_is_told(local):
    answer, _ = start_call(local)

    fired = local.advance(UNTIL_THE_TIMER)["fired"]

    assert fired == 1
    item = request_item(local, answer["contact_id"])
    assert (item["status"]["S"], item["reason"]["S"]) == ("refused", "timed_out")
    assert detail_types(local) == ["CallRequested", "TimedOut"]
    assert [m["body"] for m in local.sms(TAKUMI)] == [
        "ミズキさんは今は話せないようです。連絡を待ってください"
    ]
    assert schedules(local) == []  # ActionAfterCompletion: DELETE
    assert local.advance(600)["fired"] == 0


def test_the_timer_never_fires_early(local):
    start_call(local)

    assert local.advance(119)["fired"] == 0
    assert detail_types(local) == ["CallRequested"]


def test_a_late_yes_still_reaches_the_caller_and_the_page_says_so(local):
    answer, path = start_call(local)
    local.advance(UNTIL_THE_TIMER)

    page = local.http("POST", path, body=b"answer=yes", headers=FORM)

    html = page.body.decode("utf-8")
    assert page.status == 200
    assert "忙しいかもしれません" in html and "+815012340001" in html
    assert request_item(local, answer["contact_id"])["late"]["BOOL"] is True
    assert detail_types(local) == ["CallRequested", "TimedOut", "Accepted"]
    assert local.events()[-1]["detail"]["data"]["late"] is True
    assert [m["body"] for m in local.sms(TAKUMI)][-1] == (
        "ミズキさんが今なら話せます。070-3333-4444 に電話してください"
    )


def test_a_timer_after_an_accept_changes_nothing_and_texts_nobody_again(local):
    answer, path = start_call(local)
    local.http("POST", path, body=b"answer=yes", headers=FORM)

    result = local.host.invoke("AnswerTimerFunction", {"request_id": answer["contact_id"]})
    local.pump()

    assert result == {"outcome": "already_settled"}
    assert request_item(local, answer["contact_id"])["status"]["S"] == "accepted"
    # It announces the answer again (in case that publish had failed); nobody is texted twice.
    assert detail_types(local) == ["CallRequested", "Accepted", "Accepted"]
    assert len(local.sms(TAKUMI)) == 1 and len(local.sms(MIZUKI)) == 1


def test_the_other_direction_works_the_same_way(local):
    local.call(MIZUKI)
    [invite] = local.sms(TAKUMI)
    assert invite["body"].startswith("ミズキさんが話したいそうです。")

    local.http("POST", link_path(invite["body"]), body=b"answer=yes", headers=FORM)

    assert local.sms(MIZUKI)[-1]["body"] == "タクミさんが話せます。090-1111-2222 に電話してください"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/a/AAAAAAAAAAAAAAAAAAAAAA", 404),  # well-formed, unknown
        ("/a/forged", 404),  # not even the shape of a token
        ("/a/" + "x" * 500, 404),
        ("/a/%00%ff", 404),
    ],
)
def test_unknown_or_forged_links_get_a_4xx_page_and_change_nothing(local, path, status):
    answer, _ = start_call(local)

    for method, body in (("GET", b""), ("POST", b"answer=yes")):
        page = local.http(method, path, body=body, headers=FORM)
        assert page.status == status
        assert "このリンクは無効です。" in page.body.decode("utf-8")

    assert request_item(local, answer["contact_id"])["status"]["S"] == "inquiry"
    assert detail_types(local) == ["CallRequested"]


def test_an_expired_link_gets_410_and_changes_nothing(local):
    answer, path = start_call(local)
    local.advance(25 * 3600)  # past the link's 24 h lifetime (and the timer)
    before = detail_types(local)

    page = local.http("POST", path, body=b"answer=yes", headers=FORM)

    assert page.status == 410
    assert "期限切れ" in page.body.decode("utf-8")
    assert detail_types(local) == before
    assert request_item(local, answer["contact_id"])["status"]["S"] == "refused"


@pytest.mark.parametrize("body", [b"", b"answer=maybe", b"answer=yes&answer=no", b"\xff\xfe"])
def test_a_bad_answer_gets_400_and_changes_nothing(local, body):
    answer, path = start_call(local)

    page = local.http("POST", path, body=body, headers=FORM)

    assert page.status == 400
    assert request_item(local, answer["contact_id"])["status"]["S"] == "inquiry"
    assert detail_types(local) == ["CallRequested"]


def test_a_bad_directory_fails_the_call_clearly_and_stores_nothing(log_lines):
    from hotline_tools.local.engine import LocalHotline
    from tests.conftest import ROOT

    local = LocalHotline(root=ROOT, directory=b'[{"name": "A", "phone": "090-1111"}]').start()
    try:
        answer = local.call(TAKUMI)
        assert answer["prompts"][-1].startswith("ただいまご利用いただけません")
        assert local.events() == [] and local.sms() == []
    finally:
        local.stop()
    [line] = [entry for entry in log_lines() if entry["message"] == "directory unusable"]
    # Every problem at once, so one fix-and-retry is enough.
    assert line["problem"] == (
        "2 problems: entry 1 (A): phone is not an E.164 number (like +819011112222); "
        "directory needs at least two people, found 1"
    )


def test_a_malformed_event_is_rejected_by_its_model_with_a_clear_log_line(local, log_lines):
    event = load_event("eventbridge-call-requested.json")
    del event["detail"]["data"]["receiver"]

    with pytest.raises(ValueError, match="receiver"):
        local.host.invoke("InviteReceiverFunction", event)

    rejected = [e for e in log_lines() if e.get("message") == "malformed event rejected"]
    assert rejected and any("data.receiver" in p for p in rejected[0]["problems"])
    assert local.sms() == []


def test_accept_and_timer_racing_have_exactly_one_winner(local):
    """Interleave them at the only point that matters: the accept is held just before its
    conditional write while the timer runs to completion, then released."""
    answer, _ = start_call(local)
    store = DynamoRequestStore(cached_client("dynamodb"), local.stack.output("RequestsTableName"))
    request_id = answer["contact_id"]
    now = datetime.now(UTC)
    accept_reached_write, timer_done = threading.Event(), threading.Event()
    results = {}

    def hold_accept(**kwargs):
        if threading.current_thread().name == "accept" and not accept_reached_write.is_set():
            accept_reached_write.set()
            timer_done.wait(5)

    events = cached_client("dynamodb").meta.events
    events.register("before-call.dynamodb.UpdateItem", hold_accept)
    try:
        accept = threading.Thread(
            name="accept",
            target=lambda: results.update(
                accept=store.step(Step.ACCEPT, now, request_id=request_id)
            ),
        )
        accept.start()
        assert accept_reached_write.wait(5)
        results["timer"] = store.step(Step.TIME_OUT, now, request_id=request_id)
        timer_done.set()
        accept.join(5)
    finally:
        events.unregister("before-call.dynamodb.UpdateItem", hold_accept)

    # The timer wrote first, so it won the window; the held accept then became a late yes.
    assert results["timer"].outcome is Outcome.APPLIED
    assert results["accept"].outcome is Outcome.APPLIED
    assert results["accept"].request.late is True
    # And the other order: an accept first leaves the timer nothing to do.
    answer2, _ = start_call(local)
    assert store.step(Step.ACCEPT, now, request_id=answer2["contact_id"]).request.late is False
    assert (
        store.step(Step.TIME_OUT, now, request_id=answer2["contact_id"]).outcome
        is Outcome.ALREADY_SETTLED
    )


def test_an_expired_link_shows_410_on_get_too_and_changes_nothing(local):
    answer, path = start_call(local)
    local.advance(25 * 3600)  # past the link's 24 h lifetime (and the timer)
    before = (local.events(), local.sms(), request_item(local, answer["contact_id"]))

    for _ in range(2):  # a prefetch and a tap
        page = local.http("GET", path)
        html = page.body.decode("utf-8")
        assert page.status == 410
        assert "このリンクは期限切れです。" in html and "This link has expired." in html
        assert 'name="answer"' not in html  # nothing left to press

    assert (local.events(), local.sms(), request_item(local, answer["contact_id"])) == before


# --- Stored only as a hash ---------------------------------------------------------------
def every_dynamodb_item(local):
    """Every item of every table in the emulated account, by table."""
    db = local.client("dynamodb")
    tables = [t for page in db.get_paginator("list_tables").paginate() for t in page["TableNames"]]
    scan = db.get_paginator("scan")
    return {
        table: [item for page in scan.paginate(TableName=table) for item in page["Items"]]
        for table in tables
    }


def test_the_link_token_is_stored_nowhere_only_its_hash_and_the_link_is_not_the_contact_id(local):
    answer, path = start_call(local)
    local.http("GET", path)
    local.http("POST", path, body=b"answer=yes", headers=FORM)  # invite, accept, tell, cancel
    link = local.events()[0]["detail"]["data"]["link"]
    token = link.rsplit("/", 1)[1]
    assert path == f"/a/{token}" and len(token) == 22
    assert answer["contact_id"] not in link

    tables = every_dynamodb_item(local)

    requests = local.stack.output("RequestsTableName")
    written = {table for table, items in tables.items() if items}
    # The request and its link, and the consumers' once-only claims: the scans saw them.
    assert requests in written and any("Idempotency" in table for table in written)
    dump = json.dumps(tables, default=repr)  # repr: binary attributes are searched too
    assert token not in dump
    keys = {item["pk"]["S"] for item in tables[requests]}
    assert f"LINK#{hashlib.sha256(token.encode()).hexdigest()}" in keys


# --- A missing directory ------------------------------------------------------------------
def test_a_missing_directory_file_fails_the_call_clearly_and_stores_nothing(local, log_lines):
    bucket = local.stack.output("DirectoryBucketName")
    local.client("s3").delete_object(Bucket=bucket, Key="phonenumber.json")

    answer = local.call(TAKUMI)

    assert answer["prompts"][-1].startswith("ただいまご利用いただけません")
    assert local.events() == [] and local.sms() == []
    assert all(not items for items in every_dynamodb_item(local).values())
    [line] = [entry for entry in log_lines() if entry["message"] == "directory unusable"]
    assert f"s3://{bucket}/phonenumber.json does not exist (NoSuchKey)" in line["problem"]
    assert TAKUMI not in json.dumps(line)


# --- In English -----------------------------------------------------------------------------
ENGLISH = json.dumps(
    [
        {"name": "Takumi", "phone": TAKUMI, "lang": "en"},
        {"name": "Mizuki", "phone": MIZUKI, "lang": "en"},
    ]
).encode()
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


@pytest.fixture
def english():
    from hotline_tools.local.engine import LocalHotline
    from tests.conftest import ROOT

    hotline = LocalHotline(root=ROOT, directory=ENGLISH).start()
    try:
        yield hotline
    finally:
        hotline.stop()


def english_call(local):
    answer = local.call(TAKUMI)
    [invite] = local.sms(MIZUKI)
    link = local.events()[0]["detail"]["data"]["link"]
    assert answer["prompts"][-1] == "OK, I'll ask Mizuki. Please hang up and wait."
    assert invite["body"] == f"Takumi wants to talk. If you can, tap: {link}"
    return answer, link_path(invite["body"])


def english_page(local, method, path, **kwargs):
    page = local.http(method, path, **kwargs)
    html = page.body.decode("utf-8")
    assert page.status == 200
    assert html.startswith('<!doctype html><html lang="en">')
    assert not JAPANESE.search(html), "an English page has no Japanese in it"
    return html


def test_an_english_receiver_gets_the_english_page_and_the_caller_an_english_yes(english):
    answer, path = english_call(english)

    html = english_page(english, "GET", path)

    assert "<p>Takumi wants to talk.</p>" in html
    assert '<button class="yes" type="submit">Yes, call me</button>' in html
    assert '<button class="no" type="submit">Not now</button>' in html
    assert request_item(english, answer["contact_id"])["status"]["S"] == "inquiry"

    html = english_page(english, "POST", path, body=b"answer=yes", headers=FORM)

    assert "<p>Takumi has been told. Expect a call.</p>" in html
    assert [m["body"] for m in english.sms(TAKUMI)] == ["Mizuki can talk. Call +817033334444"]


def test_an_english_caller_hears_of_the_time_out_and_the_late_yes_in_english(english):
    _, path = english_call(english)

    assert english.advance(UNTIL_THE_TIMER)["fired"] == 1

    assert [m["body"] for m in english.sms(TAKUMI)] == [
        "Mizuki can't talk right now; wait for their call"
    ]
    html = english_page(english, "GET", path)
    assert "Takumi's request timed out, but you can still say you are free now." in html
    assert "Yes, call me" in html and "Not now" not in html

    html = english_page(english, "POST", path, body=b"answer=yes", headers=FORM)

    assert (
        "<p>Takumi has been told, but may be busy by now. "
        "To start over, call the hotline at +815012340001.</p>"
    ) in html
    assert [m["body"] for m in english.sms(TAKUMI)] == [
        "Mizuki can't talk right now; wait for their call",
        "Mizuki is free now. Call +817033334444",
    ]


def test_an_english_no_tells_the_caller_in_english(english):
    _, path = english_call(english)

    html = english_page(english, "POST", path, body=b"answer=no", headers=FORM)

    assert "<p>Takumi has been told you can't talk now.</p>" in html
    assert [m["body"] for m in english.sms(TAKUMI)] == ["Mizuki can't talk right now."]


def test_an_expired_link_says_so_in_the_receivers_language_first(english):
    _, path = english_call(english)
    english.advance(25 * 3600)
    for method, kwargs in (("GET", {}), ("POST", {"body": b"answer=yes", "headers": FORM})):
        page = english.http(method, path, **kwargs)
        html = page.body.decode("utf-8")
        assert page.status == 410
        assert html.startswith('<!doctype html><html lang="en">'), method
        assert html.index("This link has expired.") < html.index("このリンクは期限切れです。")
