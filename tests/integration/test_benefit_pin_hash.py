"""The benefits table never holds a PIN: each campaign is keyed by the PIN's keyed hash under
the stack's own generated secret, one GetItem per attempt, written the same way by the
import; without the key a copy of the table gives no PIN back."""

from __future__ import annotations

import json

from hotline_core.pins import keyed_pin_hash
from hotline_core.runtime.clients import client as cached_client
from tests.integration.test_benefits_line import PIN, SMS_SENT, URL, call, line  # noqa: F401


def _benefit_items(line):  # noqa: F811
    table = line.stack.output("BenefitsTableName")
    return line.client("dynamodb").scan(TableName=table)["Items"]


def test_the_table_holds_the_keyed_hash_never_the_pin(line):  # noqa: F811
    items = _benefit_items(line)

    assert {frozenset(item) for item in items} == {frozenset({"pin_hash", "campaign_url"})}
    by_hash = {item["pin_hash"]["S"]: item["campaign_url"]["S"] for item in items}
    assert by_hash[keyed_pin_hash(line._pin_key(), PIN)] == URL
    assert PIN not in json.dumps(items) and "13579" not in json.dumps(items)
    # The stack's key is a generated secret of its own, not something derivable.
    assert len(line._pin_key()) == 48


def test_a_pin_attempt_reads_the_benefit_once_by_its_keyed_hash(line):  # noqa: F811
    call(line, f"{PIN}#")  # warm: the key is read once per container
    keys = []

    def record(params, **_kwargs):
        if params.get("TableName") == line.stack.output("BenefitsTableName"):
            keys.append(params["Key"])

    events = cached_client("dynamodb").meta.events
    events.register("provide-client-params.dynamodb.GetItem", record)
    try:
        answer = call(line, f"{PIN}#")
    finally:
        events.unregister("provide-client-params.dynamodb.GetItem", record)

    assert answer["prompts"][2] == SMS_SENT
    assert keys == [{"pin_hash": {"S": keyed_pin_hash(line._pin_key(), PIN)}}]
    assert line.sms()[-1]["body"].endswith(URL)


def test_a_wrong_key_finds_nothing(line):  # noqa: F811
    table = line.stack.output("BenefitsTableName")
    other = keyed_pin_hash(b"another stack's key, 32 bytes..", PIN)
    found = line.client("dynamodb").get_item(TableName=table, Key={"pin_hash": {"S": other}})
    assert "Item" not in found
