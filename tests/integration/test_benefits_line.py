"""The second line end to end in-process: template provisioned in moto with members and
benefits seeded, contact_flow/benefits.json interpreted, the real BenefitRequest and
TextMember handlers, and the movable clock for the lockout."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hotline_core.adapters.benefits_store import DynamoAttemptGuard, DynamoBenefits
from hotline_core.benefits import Failure
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
    assert len(attempts["failed_at"]["L"]) == 5
    assert int(attempts["expires_at"]["N"]) == int(attempts["locked_until"]["N"])  # the TTL

    line.advance(1800)
    assert call(line, f"{PIN}#")["prompts"][2] == WRONG_PIN
    line.advance(1801)
    assert call(line, f"{PIN}#")["prompts"][2] == SMS_SENT
    assert [m["body"] for m in line.sms()] == [f"キャンペーンページ: {URL}"]


def attempts_item(line, phone=MEMBER):
    return (
        line.client("dynamodb")
        .get_item(TableName=line.stack.output("PinAttemptsTableName"), Key={"phone": {"S": phone}})
        .get("Item")
    )


def test_a_malformed_pin_fails_without_a_lookup_and_is_not_counted(line, monkeypatch):
    looked_up = []
    lookup = DynamoBenefits.campaign_url
    monkeypatch.setattr(
        DynamoBenefits, "campaign_url", lambda self, pin: looked_up.append(pin) or lookup(self, pin)
    )

    answers = [call(line, "123#45#1#") for _ in range(2)]  # 3, 2, 1 digits: six in all

    for answer in answers:
        assert answer["prompts"] == [GREETING] + [ASK_PIN, WRONG_PIN] * 3 + [GOODBYE]
        assert answer["lambda_invocations"] == 1 + 3  # getMemberId, then sendSms per entry
    assert looked_up == []  # never reached the benefits table
    assert attempts_item(line) is None  # nothing counted toward the lockout
    assert line.sms() == [] and benefit_events(line) == []
    # Six malformed entries, more than the five wrong PINs that lock: the phone is not locked.
    assert call(line, f"{PIN}#")["prompts"][2] == SMS_SENT
    assert looked_up == [PIN]


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


def test_the_pin_loop_ends_after_three_tries_however_many_pins_are_typed(line):
    answer = call(line, "1111#2222#3333#4444#5555#")

    assert answer["prompts"] == [GREETING] + [ASK_PIN, WRONG_PIN] * 3 + [GOODBYE]
    assert answer["lambda_invocations"] == 1 + 3  # the Lambda's count ended the loop
    assert len(attempts_item(line)["failed_at"]["L"]) == 3


def test_the_lambda_hands_back_the_count_the_flow_passes(line):
    def invoke(**parameters):
        event = json.loads((ROOT / "tests/events/connect-contact-flow-event.json").read_text())
        event["Details"]["ContactData"]["CustomerEndpoint"]["Address"] = MEMBER
        event["Details"]["Parameters"] = parameters
        return line.host.invoke("BenefitRequestFunction", event)

    assert invoke(cmd="getMemberId", pinTries="0") == {"memberId": "M001", "pinTries": "0"}
    assert invoke(cmd="sendSms", pinCode="Timeout", pinTries="0") == {
        "result": "Fail",
        "pinTries": "1",
        "askAgain": "true",
    }
    assert invoke(cmd="sendSms", pinCode=PIN, pinTries="2") == {
        "result": "Success",
        "pinTries": "2",
        "askAgain": "false",
    }


def test_an_unknown_cmd_takes_the_flows_error_branch(line, tmp_path):
    flow = json.loads((ROOT / "contact_flow/benefits.json").read_text(encoding="utf-8"))
    for action in flow["Actions"]:
        if action["Identifier"] == "invoke-get-member-id":
            action["Parameters"]["LambdaInvocationAttributes"] = {"cmd": "getMember"}
    path = tmp_path / "benefits-unknown-cmd.json"
    path.write_text(json.dumps(flow, ensure_ascii=False), encoding="utf-8")
    contact = Contact(
        contact_id="c-unknown",
        customer_number=MEMBER,
        system_number="+815012340002",
        digits=f"{PIN}#",
    )

    result = run_flow(
        load_flow(path), contact, line._invoke_from_flow, invoke_async=line._queue_from_flow
    )

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


RULES = {"window": timedelta(hours=1), "limit": 5, "lockout": timedelta(hours=1)}


def attempts_guard(line, client=None):
    return DynamoAttemptGuard(
        client or line.client("dynamodb"), line.stack.output("PinAttemptsTableName")
    )


def test_seven_wrong_pins_within_eleven_minutes_lock_however_the_first_hour_went(line):
    """Wrong PINs at minutes 0, 50, 50, 50, then four at 61: a window opened by the first
    failure would restart at 61 and never lock; the sliding one locks at the 2nd of 61."""
    assert call(line, "1111#")["prompts"][2] == WRONG_PIN  # minute 0 (then two silences)
    line.advance(50 * 60)
    call(line, "2222#3333#4444#")  # minute 50: three more
    line.advance(11 * 60)

    at_61 = call(line, f"5555#6666#{PIN}#")  # minute 61: 5555 is the 5th within an hour
    again = call(line, f"7777#{PIN}#")

    assert at_61["prompts"] == [GREETING] + [ASK_PIN, WRONG_PIN] * 3 + [GOODBYE]
    assert again["prompts"][2:5] == [WRONG_PIN, ASK_PIN, WRONG_PIN]
    assert line.sms() == [] and benefit_events(line) == []
    item = line.client("dynamodb").get_item(
        TableName=line.stack.output("PinAttemptsTableName"), Key={"phone": {"S": MEMBER}}
    )["Item"]
    # Locked an hour from the 5th failure, a moment ago (the local clock runs in real time).
    locked_at = int(item["locked_until"]["N"]) - 3600
    assert 0 <= line.clock.now().timestamp() - locked_at < 30
    assert item["expires_at"] == item["locked_until"]  # the TTL


@pytest.mark.parametrize(("fifth_after", "locks"), [(3599, True), (3601, False)])
def test_the_fifth_wrong_pin_locks_only_less_than_an_hour_after_the_first(line, fifth_after, locks):
    guard = attempts_guard(line)
    t0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
    for offset in (0, 1000, 2000, 3000):
        assert not guard.record_failure(MEMBER, t0 + timedelta(seconds=offset), **RULES).locked_now

    fifth = t0 + timedelta(seconds=fifth_after)
    failure = guard.record_failure(MEMBER, fifth, **RULES)

    assert failure.locked_now is locks
    assert failure.failures == (5 if locks else 4)
    assert (guard.locked_until(MEMBER, fifth) is not None) is locks


def test_a_wrong_pin_costs_one_read_and_one_conditional_write_lockout_included(line):
    db = RecordingClient(line.client("dynamodb"))
    guard = attempts_guard(line, db)
    now = datetime.now(UTC)

    for _ in range(5):
        assert guard.locked_until(MEMBER, now) is None
        guard.record_failure(MEMBER, now, **RULES)

    assert [name for name, _ in db.calls] == ["get_item", "update_item"] * 5
    writes = [kw for name, kw in db.calls if name == "update_item"]
    assert writes[0]["ConditionExpression"] == "attribute_not_exists(revision)"
    assert all(kw["ConditionExpression"] == "revision = :seen" for kw in writes[1:])
    assert "locked_until" in writes[-1]["UpdateExpression"]
    assert guard.locked_until(MEMBER, now) is not None


def test_concurrent_wrong_pins_are_all_counted_and_exactly_one_locks(line):
    """Two Lambdas read the same record, then both write: the second write's revision is
    stale, so it re-reads and counts on top of the first (moto is not concurrent, so the
    interleaving is made by hand)."""
    now = datetime.now(UTC)
    first, second = attempts_guard(line), attempts_guard(line)
    for _ in range(3):
        first.locked_until(MEMBER, now)
        first.record_failure(MEMBER, now, **RULES)

    assert first.locked_until(MEMBER, now) is None  # both see 3 failures, not locked
    assert second.locked_until(MEMBER, now) is None
    fourth = first.record_failure(MEMBER, now, **RULES)
    fifth = second.record_failure(MEMBER, now, **RULES)  # stale: retried on the fresh record
    assert (fourth.failures, fourth.locked_now) == (4, False)
    assert (fifth.failures, fifth.locked_now) == (5, True)

    assert first.locked_until(MEMBER, now) is not None  # a racing 6th: counted, no 2nd lock
    assert second.locked_until(MEMBER, now) is not None
    late = [first.record_failure(MEMBER, now, **RULES), second.record_failure(MEMBER, now, **RULES)]
    assert [f.locked_now for f in late] == [False, False]


def test_the_record_stays_small_and_the_lock_ends_after_an_hour(line):
    guard = attempts_guard(line)
    now = datetime.now(UTC)

    results = [guard.record_failure(MEMBER, now, **RULES) for _ in range(7)]

    assert [r.failures for r in results] == [1, 2, 3, 4, 5, 5, 5]  # only the latest 5 kept
    assert [r.locked_now for r in results] == [False] * 4 + [True, False, False]
    later = now + timedelta(hours=1, seconds=1)
    assert guard.locked_until(MEMBER, later) is None
    assert guard.record_failure(MEMBER, later, **RULES) == Failure(failures=1, locked_now=False)
    assert guard.locked_until(MEMBER, later) is None


def _reference_locks(offsets):
    """The rule written out by brute force: the failure at t locks when the phone is not
    locked at t and at least 5 recorded failures (this one included) are less than an hour
    before t; a lock lasts an hour."""
    locks, until = [], None
    for i, t in enumerate(offsets):
        in_window = [u for u in offsets[: i + 1] if t - u < 3600]
        locked_now = (until is None or until <= t) and len(in_window) >= 5
        if locked_now:
            until = t + 3600
        locks.append(locked_now)
    return locks


# Each example uses a fresh phone, so sharing the function's table between examples is safe.
@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(gaps=st.lists(st.sampled_from([0, 1, 600, 1799, 3599, 3600, 3601, 7200]), max_size=14))
@example(gaps=[0, 50 * 60, 0, 0, 11 * 60, 0, 0, 0])  # minutes 0, 50, 50, 50, 61, 61, 61, 61
def test_the_table_locks_exactly_when_the_rule_says(line, gaps):
    guard = attempts_guard(line)
    phone = f"+8190{uuid.uuid4().int % 10**8:08d}"  # a fresh record per example
    t0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
    offsets = [sum(gaps[: i + 1]) for i in range(len(gaps))]

    locks = [
        guard.record_failure(phone, t0 + timedelta(seconds=t), **RULES).locked_now for t in offsets
    ]

    assert locks == _reference_locks(offsets)


# --- `hotline benefits import` against the template's table in moto -------------------------
def scan(line, output):
    db = line.client("dynamodb")
    items = db.scan(TableName=line.stack.output(output), ConsistentRead=True)["Items"]
    return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))


@pytest.fixture
def import_cli(line, monkeypatch):
    """The real command, its DynamoDB client the line's moto one, its table the template's."""
    from typer.testing import CliRunner

    from hotline_tools import importer
    from hotline_tools.cli import app
    from hotline_tools.rows import SPECS

    db = line.client("dynamodb")
    # Only the importer's boto3: the handlers the calls run keep their own clients.
    monkeypatch.setattr(importer.operate, "aws", lambda service: db)
    monkeypatch.setattr(
        importer, "table_name", lambda stack, kind: line.stack.output(SPECS[kind].table_output)
    )
    # The stack's PIN key: the line's own secret, as `stack_pin_key` reads it on AWS.
    monkeypatch.setattr(importer, "stack_pin_key", lambda stack: line._pin_key())
    monkeypatch.setattr(importer.time, "sleep", lambda _s: None)

    def run(*args):
        result = CliRunner().invoke(app, list(args))
        return result.exit_code, " ".join(result.output.split())

    return run


def refuse_transaction(client, number):
    """Make the `number`-th TransactWriteItems of this client fail, as a throttle would."""
    from botocore.exceptions import ClientError

    seen = []

    def before_call(**_kwargs):
        seen.append(1)
        if len(seen) == number:
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}},
                "TransactWriteItems",
            )

    client.meta.events.register("before-call.dynamodb.TransactWriteItems", before_call)
    return seen


def big_benefits_file(tmp_path, count=250):
    rows = [
        {"pin": f"{7000 + i}", "campaign_url": f"https://example.jp/c/{i}"} for i in range(count)
    ]
    rows[0]["pin"] = PIN  # replaces a seeded benefit
    file = tmp_path / "benefits.json"
    file.write_text(json.dumps(rows))
    return file


def test_a_big_import_that_fails_part_way_leaves_the_table_exactly_as_it_was(
    line, import_cli, tmp_path
):
    before = scan(line, "BenefitsTableName")
    seen = refuse_transaction(line.client("dynamodb"), 2)  # the 1st hundred is in by then

    code, said = import_cli("benefits", "import", str(big_benefits_file(tmp_path)))

    assert code == 1
    assert "the table was restored to what it was before the import" in said
    assert len(seen) == 2 + 3  # two writes, then the restore of all 250 keys
    assert scan(line, "BenefitsTableName") == before
    assert call(line, f"{PIN}#")["prompts"][2] == SMS_SENT  # the old URL still works
    assert [m["body"] for m in line.sms()] == [f"キャンペーンページ: {URL}"]
    assert call(line, "7001#")["prompts"][2] == WRONG_PIN  # a new PIN did not stay


def test_a_big_import_writes_every_row(line, import_cli, tmp_path):
    code, said = import_cli("benefits", "import", str(big_benefits_file(tmp_path)))

    assert code == 0, said
    assert "250 benefits imported" in said
    assert len(scan(line, "BenefitsTableName")) == 250 + 1  # 13579 was not in the file
    assert call(line, "7249#")["prompts"][2] == SMS_SENT
    assert line.sms()[-1]["body"] == "キャンペーンページ: https://example.jp/c/249"


def test_a_refused_small_import_writes_nothing(line, import_cli, tmp_path):
    before = scan(line, "MembersTableName")
    refuse_transaction(line.client("dynamodb"), 1)
    file = tmp_path / "members.csv"
    file.write_text("phone,member_id\n+819077778888,M9\n+819011112222,CHANGED\n")

    code, said = import_cli("members", "import", str(file))

    assert code == 1
    assert "nothing was written" in said
    assert scan(line, "MembersTableName") == before
