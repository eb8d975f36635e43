"""Does a side effect at most once per purpose (`invite#<request>`, `outcome#<request>`,
`timer#<request>`, …): one conditional PutItem claims the purpose, then the effect runs.

EventBridge delivers at least once and Lambda retries: a duplicate, also a concurrent one,
finds the claim and does nothing. A failed effect deletes the claim and raises, so the retry
runs it. One write per effect, not two as with a claim-then-complete record (the Powertools
idempotency utility): the price is that a crash between the claim and the effect (a Lambda
killed in that instant) leaves the effect undone rather than done twice. The record holds
only the purpose key: no phone number, no text.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from hotline_core.ports import SmsSender

# Long enough to outlive every EventBridge retry (24 h), a replay soon after, and a DLQ redrive.
RECORD_LIFETIME_SECONDS = 3 * 24 * 3600
T = TypeVar("T")


class OnceOnly:
    def __init__(
        self, client: DynamoDBClient, table_name: str, clock: Callable[[], datetime]
    ) -> None:
        self._db = client
        self._table = table_name
        self._clock = clock

    def do(self, key: str, effect: Callable[[], T]) -> T | None:
        """Run `effect` unless `key` was claimed before; None when it was."""
        now = self._clock()
        try:
            self._db.put_item(
                TableName=self._table,
                Item={
                    "id": {"S": key},
                    "claimed_at": {"S": now.isoformat()},
                    "expiration": {"N": str(int(now.timestamp()) + RECORD_LIFETIME_SECONDS)},
                },
                ConditionExpression="attribute_not_exists(id)",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        try:
            return effect()
        except BaseException:
            self._db.delete_item(TableName=self._table, Key={"id": {"S": key}})
            raise


class OnceOnlySms:
    def __init__(self, sms: SmsSender, once: OnceOnly) -> None:
        self._sms = sms
        self._once = once

    def send_once(self, key: str, to: str, body: str) -> None:
        self._once.do(key, lambda: self._sms.send(to, body))
