"""The second line's tables: members (`phone` → `member_id`), benefits (`pin` →
`campaign_url`) and attempts (`phone` → wrong-PIN count, window start, lockout end, TTL).

Attempts live in their own table so the imported members table stays exactly what was
imported, and so the lockout records' TTL cannot touch a member."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from hotline_core.benefits import Failure

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


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
    """One item per phone. Every write is a single conditional UpdateItem, so concurrent wrong
    PINs (two calls at once) are all counted and exactly one of them sets the lockout."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name

    def locked_until(self, phone: str, now: datetime) -> datetime | None:
        item = self._db.get_item(
            TableName=self._table, Key={"phone": {"S": phone}}, ConsistentRead=True
        ).get("Item")
        # TTL deletes lazily (up to days later): the end of the lockout is compared here.
        if not item or "locked_until" not in item:
            return None
        until = int(item["locked_until"]["N"])
        return datetime.fromtimestamp(until, UTC) if until > _epoch(now) else None

    def record_failure(
        self, phone: str, now: datetime, *, window: timedelta, limit: int, lockout: timedelta
    ) -> Failure:
        failures = self._count(phone, now, window)
        locked_now = failures >= limit and self._lock(phone, now, limit, lockout)
        return Failure(failures=failures, locked_now=locked_now)

    def _count(self, phone: str, now: datetime, window: timedelta) -> int:
        key = {"phone": {"S": phone}}
        opened_after = _n(_epoch(now - window))
        for _ in range(3):  # a lost race against a concurrent window reset is retried
            try:
                # First failure or one more in the open window: one atomic write either way.
                result = self._db.update_item(
                    TableName=self._table,
                    Key=key,
                    UpdateExpression=(
                        "ADD failures :one "
                        "SET window_start = if_not_exists(window_start, :now), "
                        "expires_at = if_not_exists(expires_at, :expires)"
                    ),
                    ConditionExpression=(
                        "attribute_not_exists(phone) OR window_start > :opened_after"
                    ),
                    ExpressionAttributeValues={
                        ":one": _n(1),
                        ":now": _n(_epoch(now)),
                        ":expires": _n(_epoch(now + window)),
                        ":opened_after": opened_after,
                    },
                    ReturnValues="UPDATED_NEW",
                )
                return int(result["Attributes"]["failures"]["N"])
            except ClientError as exc:
                if not _conditional_failed(exc):
                    raise
            try:
                # The window is over: this failure opens a new one (and ends an old lockout).
                self._db.update_item(
                    TableName=self._table,
                    Key=key,
                    UpdateExpression=(
                        "SET failures = :one, window_start = :now, expires_at = :expires "
                        "REMOVE locked_until"
                    ),
                    ConditionExpression="window_start <= :opened_after",
                    ExpressionAttributeValues={
                        ":one": _n(1),
                        ":now": _n(_epoch(now)),
                        ":expires": _n(_epoch(now + window)),
                        ":opened_after": opened_after,
                    },
                )
                return 1
            except ClientError as exc:
                if not _conditional_failed(exc):
                    raise
        raise RuntimeError("attempt counter kept changing under concurrent writes")

    def _lock(self, phone: str, now: datetime, limit: int, lockout: timedelta) -> bool:
        until = _epoch(now + lockout)
        try:
            self._db.update_item(
                TableName=self._table,
                Key={"phone": {"S": phone}},
                UpdateExpression="SET locked_until = :until, expires_at = :until",
                ConditionExpression=(
                    "failures >= :limit AND "
                    "(attribute_not_exists(locked_until) OR locked_until <= :now)"
                ),
                ExpressionAttributeValues={
                    ":until": _n(until),
                    ":limit": _n(limit),
                    ":now": _n(_epoch(now)),
                },
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False  # a concurrent failure locked it first
            raise
        return True
