"""The second line's tables: members (`phone` → `member_id`), benefits (`pin` →
`campaign_url`) and attempts (`phone` → times of the latest wrong PINs, lockout end, TTL).

Attempts live in their own table so the imported members table stays exactly what was
imported, and so the lockout records' TTL cannot touch a member."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from hotline_core.benefits import Failure

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Item = dict[str, Any]  # one DynamoDB item in the low-level client's shape
_RACES = 5  # concurrent wrong PINs from one phone are a handful at most


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response["Error"]["Code"] == "ConditionalCheckFailedException"


class DynamoMembers:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name

    def member_id(self, phone: str) -> str | None:
        item = self._db.get_item(
            TableName=self._table, Key={"phone": {"S": phone}}, ProjectionExpression="member_id"
        ).get("Item")
        return item["member_id"]["S"] if item and "member_id" in item else None


class DynamoBenefits:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name

    def campaign_url(self, pin: str) -> str | None:
        item = self._db.get_item(
            TableName=self._table, Key={"pin": {"S": pin}}, ProjectionExpression="campaign_url"
        ).get("Item")
        return item["campaign_url"]["S"] if item and "campaign_url" in item else None


class DynamoAttemptGuard:
    """One item per phone: `failed_at`, the epoch seconds of its most recent wrong PINs (at
    most `limit`, none older than the window), `locked_until`, the TTL `expires_at` and a
    random `revision`. Every failure is one UpdateItem conditioned on the revision it was
    computed from: concurrent wrong PINs are all counted (a loser re-reads and counts on top)
    and exactly one of them sets the lockout.

    The item `locked_until` reads is kept for the `record_failure` that follows it on the
    same phone, so a wrong PIN costs one GetItem and one UpdateItem, a lockout included. A
    stale copy is harmless: its revision no longer matches, and the write is retried."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name
        self._last_read: tuple[str, Item | None] | None = None

    def locked_until(self, phone: str, now: datetime) -> datetime | None:
        until = _lock_end(self._read(phone))
        # TTL deletes lazily (up to days later): the end of the lockout is compared here.
        return datetime.fromtimestamp(until, UTC) if until > _epoch(now) else None

    def record_failure(
        self, phone: str, now: datetime, *, window: timedelta, limit: int, lockout: timedelta
    ) -> Failure:
        last = self._last_read
        item = last[1] if last is not None and last[0] == phone else self._read(phone)
        for _ in range(_RACES):
            try:
                return self._write_failure(phone, item, now, window, limit, lockout)
            except ClientError as exc:
                if not _conditional_failed(exc):
                    raise
            item = self._read(phone)  # another failure was written first: count on top of it
        raise RuntimeError("attempt record kept changing under concurrent writes")

    def _read(self, phone: str) -> Item | None:
        item = self._db.get_item(
            TableName=self._table, Key={"phone": {"S": phone}}, ConsistentRead=True
        ).get("Item")
        self._last_read = (phone, item)
        return item

    def _write_failure(
        self,
        phone: str,
        item: Item | None,
        now: datetime,
        window: timedelta,
        limit: int,
        lockout: timedelta,
    ) -> Failure:
        at = _epoch(now)
        span = int(window.total_seconds())
        # Only the latest failures less than a window old can still make a lockout with this
        # one; keeping `limit` of them (this one included) is enough, and bounds the item.
        earlier = [t for t in _failed_at(item) if at - t < span]
        recent = [*earlier[max(0, len(earlier) - (limit - 1)) :], at]
        until = _lock_end(item)
        locked_now = len(recent) >= limit and until <= at
        if locked_now:
            until = _epoch(now + lockout)
        values: dict[str, Any] = {
            ":failed_at": {"L": [_n(t) for t in recent]},
            ":revision": {"S": uuid.uuid4().hex},
            ":expires": _n(max(at + span, until)),
        }
        update = "SET failed_at = :failed_at, revision = :revision, expires_at = :expires"
        if locked_now:
            update += ", locked_until = :until"
            values[":until"] = _n(until)
        if item is not None and "revision" in item:
            condition = "revision = :seen"
            values[":seen"] = item["revision"]
        else:
            condition = "attribute_not_exists(revision)"  # no item yet (or one without a revision)
        written = self._db.update_item(
            TableName=self._table,
            Key={"phone": {"S": phone}},
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
        )
        self._last_read = (phone, written["Attributes"])
        return Failure(failures=len(recent), locked_now=locked_now)


def _failed_at(item: Item | None) -> list[int]:
    if not item or "failed_at" not in item:
        return []
    return sorted(int(value["N"]) for value in item["failed_at"]["L"])


def _lock_end(item: Item | None) -> int:
    return int(item["locked_until"]["N"]) if item and "locked_until" in item else 0
