"""The second line end to end in-process: template provisioned in moto with members and
benefits seeded, contact_flow/benefits.json interpreted, the real BenefitRequest and
TextMember handlers, and the movable clock for the lockout."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from hotline_core.adapters.benefits_store import DynamoAttemptGuard
from hotline_tools.local.engine import BadRequest, LocalHotline
from hotline_tools.local.flow import Contact, load_flow, run_flow
from tests.conftest import ROOT

MEMBER, STRANGER = "+819011112222", "+819055556666"
PIN, URL = "246810", "https://example.jp/campaign/spring?ref=sms"
MEMBERS = json.dumps([{"phone": MEMBER, "member_id": "M001"}]).encode()
BENEFITS = f"pin,campaign_url\n{PIN},{URL}\n13579,https://example.jp/other\n".encode()

GREETING = "お電話ありがとうございます。会員特典のご案内です。"
ASK_PIN = "暗証番号を入力し、最後にシャープを押してください。"
WRONG_PIN = "暗証番号が違います"
SMS_SENT = "SMSをご確認ください"
GOODBYE = "お電話ありがとうございました。失礼いたします。"
NOT_REGISTERED = "この電話番号は登録されていません"
UNAVAILABLE = "ただいまご利用いただけません。しばらくしてからおかけ直しください。"


@pytest.fixture
def line():
    hotline = LocalHotline(root=ROOT, members=MEMBERS, benefits=BENEFITS).start()
    try:
        yield hotline
    finally:
        hotline.stop()


def call(line, digits, phone=MEMBER):
    return line.call(phone, line="benefits", digits=digits)


def benefit_events(line):
    return [e for e in line.events() if e["detail-type"] == "BenefitRequested"]


def test_member_with_the_right_pin_gets_the_url_by_sms(line):
    answer = call(line, f"{PIN}#")

    assert answer["prompts"] == [GREETING, ASK_PIN, SMS_SENT, GOODBYE]
    assert answer["attributes"]["memberId"] == "M001"
    [sms] = line.sms()
    assert sms["to"] == MEMBER
    assert sms["body"] == f"キャンペーンページ: {URL}"  # plain text, no markup
    [event] = benefit_events(line)
    assert event["source"] == "hotline"
    assert event["detail"]["data"] == {
        "member_id": "M001",
        "phone": MEMBER,
        "campaign_url": URL,
        "requested_at": event["detail"]["data"]["requested_at"],
    }
    assert event["detail"]["metadata"]["correlation_id"] == answer["contact_id"]
    assert line.dead_letters == []


def test_a_wrong_pin_is_told_three_times_then_goodbye(line):
    answer = call(line, "1111#2222#3333#")

    assert answer["prompts"] == [GREETING] + [ASK_PIN, WRONG_PIN] * 3 + [GOODBYE]
    assert line.sms() == []
    assert benefit_events(line) == []


def test_retry_then_the_right_pin(line):
    answer = call(line, f"1111#{PIN}#")

    assert answer["prompts"] == [GREETING, ASK_PIN, WRONG_PIN, ASK_PIN, SMS_SENT, GOODBYE]
    assert [m["body"] for m in line.sms()] == [f"キャンペーンページ: {URL}"]
    assert len(benefit_events(line)) == 1


def test_a_stranger_hears_not_registered_and_nothing_is_sent(line):
    answer = call(line, f"{PIN}#", phone=STRANGER)

    assert answer["prompts"] == [GREETING, NOT_REGISTERED]
    assert answer["attributes"]["memberId"] == "-1"
    assert answer["lambda_invocations"] == 1
    assert line.sms() == []
    assert line.events() == []


def test_five_wrong_pins_lock_the_phone_for_an_hour(line):
    call(line, "1111#2222#3333#")
    second = call(line, f"4444#5555#{PIN}#")

    # the 5th wrong PIN locks; the right one on the 3rd try is then refused without a lookup
    assert second["prompts"] == [GREETING] + [ASK_PIN, WRONG_PIN] * 3 + [GOODBYE]
    assert line.sms() == []
    attempts = line.client("dynamodb").get_item(
        TableName=line.stack.output("PinAttemptsTableName"), Key={"phone": {"S": MEMBER}}
    )["Item"]
    assert attempts["failures"]["N"] == "5"
    assert int(attempts["expires_at"]["N"]) == int(attempts["locked_until"]["N"])  # the TTL

    line.advance(1800)
    assert call(line, f"{PIN}#")["prompts"][2] == WRONG_PIN
    line.advance(1801)
    assert call(line, f"{PIN}#")["prompts"][2] == SMS_SENT
    assert [m["body"] for m in line.sms()] == [f"キャンペーンページ: {URL}"]


def test_a_malformed_pin_fails_like_a_wrong_one(line):
    answer = call(line, "12#123456789#")

    assert answer["prompts"][:5] == [GREETING, ASK_PIN, WRONG_PIN, ASK_PIN, WRONG_PIN]
    assert line.sms() == []


def test_the_lambda_answers_the_original_contract_exactly(line):
    def invoke(**parameters):
        event = json.loads((ROOT / "tests/events/connect-contact-flow-event.json").read_text())
        event["Details"]["ContactData"]["CustomerEndpoint"]["Address"] = MEMBER
        event["Details"]["Parameters"] = parameters
        return line.host.invoke("BenefitRequestFunction", event)

    assert invoke(cmd="getMemberId") == {"memberId": "M001"}
    assert invoke(cmd="sendSms", pinCode="0000") == {"result": "Fail"}
    assert invoke(cmd="sendSms", pinCode=PIN) == {"result": "Success"}
    with pytest.raises(ValueError, match="unknown cmd 'getBenefit'"):
        invoke(cmd="getBenefit")


def test_an_unknown_cmd_takes_the_flows_error_branch(line):
    flow = json.loads((ROOT / "contact_flow/benefits.json").read_text(encoding="utf-8"))
    for action in flow["Actions"]:
        if action["Identifier"] == "invoke-get-member-id":
            action["Parameters"]["LambdaInvocationAttributes"] = {"cmd": "getMember"}
    path = line.root / "tests" / ".benefits-unknown-cmd.json"
    contact = Contact(
        contact_id="c-unknown",
        customer_number=MEMBER,
        system_number="+815012340002",
        digits=f"{PIN}#",
    )
    try:
        path.write_text(json.dumps(flow, ensure_ascii=False), encoding="utf-8")
        result = run_flow(load_flow(path), contact, line._invoke_from_flow)
    finally:
        path.unlink(missing_ok=True)

    assert result.prompts == [GREETING, UNAVAILABLE]
    assert line.sms() == []


def test_load_rows_validates_everything_before_writing(line):
    with pytest.raises(BadRequest, match="row 2"):
        line.load_rows(
            "members",
            [{"phone": "+819077778888", "member_id": "M9"}, {"phone": "090", "member_id": "X"}],
        )
    assert call(line, f"{PIN}#", phone="+819077778888")["attributes"]["memberId"] == "-1"

    assert line.load_rows("members", [{"phone": "+819077778888", "member_id": "M9"}]) == 1
    assert call(line, f"{PIN}#", phone="+819077778888")["prompts"][2] == SMS_SENT


class RecordingClient:
    def __init__(self, client):
        self.client, self.calls = client, []

    def __getattr__(self, name):
        def call(**kwargs):
            self.calls.append((name, kwargs))
            return getattr(self.client, name)(**kwargs)

        return call


def test_the_attempt_counter_is_atomic_and_locks_exactly_once(line):
    """moto does not make conditional writes atomic across threads, so concurrency is shown
    by construction: every count is one ADD in one conditional UpdateItem (no read, then
    write), and the lock is a conditional write only one failure can win."""
    db = RecordingClient(line.client("dynamodb"))
    guard = DynamoAttemptGuard(db, line.stack.output("PinAttemptsTableName"))
    now = datetime.now(UTC)
    rules = {"window": timedelta(hours=1), "limit": 5, "lockout": timedelta(hours=1)}

    results = [guard.record_failure(MEMBER, now, **rules) for _ in range(7)]

    assert [r.failures for r in results] == [1, 2, 3, 4, 5, 6, 7]
    assert [r.locked_now for r in results] == [False] * 4 + [True, False, False]
    assert {name for name, _ in db.calls} == {"update_item"}
    counts = [kw for _, kw in db.calls if "ADD failures" in kw["UpdateExpression"]]
    assert len(counts) == 7
    assert all("ConditionExpression" in kw for _, kw in db.calls)
    assert guard.locked_until(MEMBER, now) is not None
    later = now + timedelta(hours=1, seconds=1)
    assert guard.locked_until(MEMBER, later) is None
    assert guard.record_failure(MEMBER, later, **rules).failures == 1  # a new window
    assert guard.locked_until(MEMBER, later) is None
