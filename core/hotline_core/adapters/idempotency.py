"""Does a side effect at most once per purpose (`invite#<request>`, `outcome#<request>`,
`timer#<request>`, …): one conditional PutItem claims the purpose, then the effect runs.

The guarantee, precisely:

- A duplicate delivery, also a concurrent one, finds the claim and does nothing (`ran` False).
- An effect that raises deletes its claim and re-raises, so Lambda's retry runs it again. Every
  call an effect makes is bounded (short client timeouts, retries within a time budget and
  never started too close to the invocation's deadline: see `retry`), so an effect ends, done
  or raised, with time left to release its claim before the function's timeout. A hung SMS or
  Scheduler call therefore becomes a retry, not a silently lost text or timer.
- A claim whose own PutItem failed ambiguously (written, but the answer timed out) is deleted
  before raising, and a retried PutItem that finds the claim it wrote itself (same owner token)
  goes on: a claim is never mistaken for a duplicate by the invocation that made it.
- Left: an effect whose call was sent but not answered (a read timeout) is treated as failed
  and may run twice; a Lambda that dies by other means (out of memory, a crashed sandbox)
  between the claim and the effect, or a release that itself fails, leaves the effect undone.

One write per effect, not two as with a claim-then-complete record (the Powertools
idempotency utility). The record holds only the purpose key and a random owner token: no
phone number, no text.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from botocore.exceptions import ClientError

from hotline_core.adapters.retry import Retrier

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from hotline_core.ports import SmsSender

# Long enough to outlive every EventBridge retry (24 h), a replay soon after, and a DLQ redrive.
RECORD_LIFETIME_SECONDS = 3 * 24 * 3600
T = TypeVar("T")


def _at_once(call: Callable[[], T]) -> T:
    return call()


@dataclass(frozen=True)
class Once(Generic[T]):
    """What `OnceOnly.do` did: `ran` is whether the effect ran in this call (False: claimed
    before, by a duplicate or an earlier delivery); `value` is what the effect returned."""

    ran: bool
    value: T | None = None


class OnceOnly:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        clock: Callable[[], datetime],
        *,
        claim_retry: Retrier | None = None,
        release_retry: Retrier | None = None,
        owner: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._db = client
        self._table = table_name
        self._clock = clock
        self._claim_retry = claim_retry or _at_once
        self._release_retry = release_retry or _at_once
        self._owner = owner

    def do(self, key: str, effect: Callable[[], T]) -> Once[T]:
        """Run `effect` unless `key` was claimed before."""
        owner = self._owner()
        sent = False

        def claim() -> bool:
            nonlocal sent
            sent = True
            return self._claim(key, owner)

        try:
            mine = self._claim_retry(claim)
        except BaseException as exc:
            if sent:  # the PutItem may have been written before it failed
                self._release_after(exc, key, owner)
            raise
        if not mine:
            return Once(ran=False)
        try:
            value = effect()
        except BaseException as exc:
            self._release_after(exc, key, owner)
            raise
        return Once(ran=True, value=value)

    def _claim(self, key: str, owner: str) -> bool:
        now = self._clock()
        try:
            self._db.put_item(
                TableName=self._table,
                Item={
                    "id": {"S": key},
                    "owner": {"S": owner},
                    "claimed_at": {"S": now.isoformat()},
                    "expiration": {"N": str(int(now.timestamp()) + RECORD_LIFETIME_SECONDS)},
                },
                ConditionExpression="attribute_not_exists(id)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                # Our own earlier attempt, written but answered too late, is still ours.
                found: Any = exc.response.get("Item") or {}
                return bool(found.get("owner", {}).get("S") == owner)
            raise
        return True

    def _release(self, key: str, owner: str) -> None:
        try:
            self._db.delete_item(
                TableName=self._table,
                Key={"id": {"S": key}},
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise  # otherwise: not there, or not ours; nothing to release

    def _release_after(self, failure: BaseException, key: str, owner: str) -> None:
        try:
            self._release_retry(lambda: self._release(key, owner))
        except Exception as exc:  # noqa: BLE001 - the effect's failure is the one to raise
            failure.add_note(f"claim {key} not released ({exc!r}): a retry will skip it")


class OnceOnlySms:
    def __init__(self, sms: SmsSender, once: OnceOnly) -> None:
        self._sms = sms
        self._once = once

    def send_once(self, key: str, to: str, body: str) -> bool:
        """Send unless a message with this key was already sent; whether it was sent now."""
        return self._once.do(key, lambda: self._sms.send(to, body)).ran

    def recording(self) -> SentRecord:
        """A sender for one invocation that remembers which keys it really sent."""
        return SentRecord(self)


class SentRecord:
    """`OnceOnlySender` for the domain functions, recording what ran: a consumer counts its
    metrics from `sent`, so a skipped duplicate counts nothing."""

    def __init__(self, sender: OnceOnlySms) -> None:
        self._sender = sender
        self.sent: list[str] = []

    def send_once(self, key: str, to: str, body: str) -> None:
        if self._sender.send_once(key, to, body):
            self.sent.append(key)
