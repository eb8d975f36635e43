"""Every item the code writes carries the TTL attribute of the table template.yaml declares, as
epoch seconds in the future: the request store's items, the wrong-PIN record, the once-only
claims."""

from __future__ import annotations

import re

from tests.unit.template_doc import RESOURCES


class RecordingDynamoDB:
    """Stands in for the DynamoDB client: records every write, answers as an empty table."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, operation):
        def call(**params):
            self.calls.append((operation, params))
            if operation == "update_item":
                return {"Attributes": {}}
            return {}

        return call


def ttl_attribute(table):
    spec = RESOURCES[table]["Properties"]["TimeToLiveSpecification"]
    assert spec["Enabled"] is True, table
    return spec["AttributeName"]


def set_attributes(update_expression):
    """The attribute names an UpdateExpression's SET clause assigns."""
    clause = re.search(r"\bSET\s+(.*?)(?:\s+\b(?:REMOVE|ADD|DELETE)\b|$)", update_expression)
    assert clause, update_expression
    return {part.split("=")[0].strip() for part in clause.group(1).split(",")}


def assert_epoch_after(value, moment):
    # TTL only deletes an item whose attribute is a Number of epoch seconds.
    assert set(value) == {"N"}, value
    assert int(value["N"]) > int(moment.timestamp()), value


# The TTL attribute names are string literals in the adapters (no constant to import): these
# tests run the adapters' own writes and look for the template's name in them.
def test_every_item_the_request_store_writes_carries_the_tables_ttl_attribute():
    from datetime import UTC, datetime, timedelta

    from hotline_core.adapters.store import DynamoRequestStore
    from hotline_core.events import Party
    from hotline_core.requests import CallRequest, new_link

    now = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
    request = CallRequest(
        request_id="c0ffee00-0000-4000-8000-000000000001",
        caller=Party(name="タクミ", phone="+819011112222"),
        receiver=Party(name="ミズキ", phone="+817033334444"),
        hotline_number="+815012340001",
        requested_at=now,
        answer_by=now + timedelta(minutes=2),
    )
    db = RecordingDynamoDB()

    DynamoRequestStore(db, "requests").create(request, new_link(now))

    [(operation, params)] = db.calls
    assert operation == "transact_write_items"
    written = [i["Put"]["Item"] for i in params["TransactItems"] if "Put" in i]
    assert len(written) == 3  # the pointer, the request, the pair item
    ttl = ttl_attribute("RequestsTable")
    for item in written:
        assert ttl in item, (ttl, sorted(item))
        assert_epoch_after(item[ttl], request.answer_by)


def test_the_wrong_pin_record_carries_the_attempts_tables_ttl_attribute():
    from datetime import UTC, datetime, timedelta

    from hotline_core.adapters.benefits_store import DynamoAttemptGuard

    now = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
    db = RecordingDynamoDB()
    guard = DynamoAttemptGuard(db, "attempts")

    guard.record_failure(
        "+819011112222",
        now,
        window=timedelta(minutes=15),
        limit=3,
        lockout=timedelta(hours=1),
    )

    [params] = [p for op, p in db.calls if op == "update_item"]
    ttl = ttl_attribute("PinAttemptsTable")
    assert ttl in set_attributes(params["UpdateExpression"]), params["UpdateExpression"]
    placeholder = re.search(rf"\b{ttl}\s*=\s*(:\w+)", params["UpdateExpression"]).group(1)
    assert_epoch_after(params["ExpressionAttributeValues"][placeholder], now)


def test_every_once_only_claim_carries_the_idempotency_tables_ttl_attribute():
    from datetime import UTC, datetime

    from hotline_core.adapters.idempotency import OnceOnly

    now = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
    db = RecordingDynamoDB()

    OnceOnly(db, "claims", clock=lambda: now).do("invite#r1", lambda: None)

    [params] = [p for op, p in db.calls if op == "put_item"]
    assert_epoch_after(params["Item"][ttl_attribute("IdempotencyTable")], now)
