"""Which LINE user is which phone: the LINE links table (`LineLinksTable`, key `pk`, TTL
`expires_at`).

Items:
- `code#<6 digits>`: a one-time link code (`phone`, `expires_at` ten minutes on; `used_by`
  once a LINE user sent it). A used code links nobody else, and sent again by the same user
  (LINE redelivering the webhook) links them again rather than counting as a wrong code.
- `phone#<E.164>`: `user_id`, `linked_at`; `user#<LINE user id>`: `phone`. Written as a
  pair; relinking either side replaces the old pairing both ways.
- `tries#<LINE user id>`: wrong codes sent today (`wrong`, `expires_at`), so that codes cannot
  be guessed: after `MAX_WRONG_CODES` a user's codes are not even tried until the day is over.

No log line here: a phone, a user id and a code are all personal or secret.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

CODE_LIFETIME = timedelta(minutes=10)
CODE_DIGITS = 6
MAX_WRONG_CODES = 5
WRONG_CODE_WINDOW = timedelta(days=1)
_NEW_CODE_ATTEMPTS = 5


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def looks_like_code(text: str) -> bool:
    """A message that is a link code: six digits (full-width digits too, as a Japanese
    keyboard may type them), spaces around allowed."""
    digits = text.strip().translate(_FULL_WIDTH)
    return len(digits) == CODE_DIGITS and digits.isascii() and digits.isdigit()


def normal_code(text: str) -> str:
    return text.strip().translate(_FULL_WIDTH)


_FULL_WIDTH = str.maketrans("０１２３４５６７８９", "0123456789")


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response["Error"]["Code"] == "ConditionalCheckFailedException"


class LineLinks:
    def __init__(
        self, client: DynamoDBClient, table_name: str, *, clock: Callable[[], datetime]
    ) -> None:
        self._db = client
        self._table = table_name
        self._clock = clock

    # --- codes ---------------------------------------------------------------------------
    def new_code(self, phone: str) -> str:
        """A fresh one-time code for `phone`, valid `CODE_LIFETIME`."""
        now = self._clock()
        for _ in range(_NEW_CODE_ATTEMPTS):
            code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
            try:
                self._db.put_item(
                    TableName=self._table,
                    Item={
                        "pk": _s(f"code#{code}"),
                        "phone": _s(phone),
                        "expires_at": {"N": str(_epoch(now + CODE_LIFETIME))},
                    },
                    # A code still valid (TTL deletes late) is never handed out twice.
                    ConditionExpression="attribute_not_exists(pk) OR expires_at <= :now",
                    ExpressionAttributeValues={":now": {"N": str(_epoch(now))}},
                )
            except ClientError as exc:
                if _conditional_failed(exc):
                    continue
                raise
            return code
        raise RuntimeError("no free link code found: too many codes in use")

    def link(self, code: str, user_id: str) -> str | None:
        """Link `user_id` to the phone `code` was made for; None (nothing linked) for a
        wrong or expired code, or one another user sent first."""
        now = self._clock()
        try:
            found = self._db.update_item(
                TableName=self._table,
                Key={"pk": _s(f"code#{normal_code(code)}")},
                UpdateExpression="SET used_by = :user",
                ConditionExpression=(
                    "attribute_exists(pk) AND expires_at > :now"
                    " AND (attribute_not_exists(used_by) OR used_by = :user)"
                ),
                ExpressionAttributeValues={
                    ":user": _s(user_id),
                    ":now": {"N": str(_epoch(now))},
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return None
            raise
        phone = found["Attributes"]["phone"]["S"]
        self._pair(phone, user_id, now)
        return phone

    def _pair(self, phone: str, user_id: str, now: datetime) -> None:
        old_user = self.user_for(phone)
        old_phone = self.phone_for(user_id)
        self._db.put_item(
            TableName=self._table,
            Item={
                "pk": _s(f"phone#{phone}"),
                "user_id": _s(user_id),
                "linked_at": _s(now.isoformat()),
            },
        )
        self._db.put_item(
            TableName=self._table, Item={"pk": _s(f"user#{user_id}"), "phone": _s(phone)}
        )
        if old_user is not None and old_user != user_id:
            self._delete_if(f"user#{old_user}", "phone", phone)
        if old_phone is not None and old_phone != phone:
            self._delete_if(f"phone#{old_phone}", "user_id", user_id)

    # --- wrong codes ---------------------------------------------------------------------
    def wrong_codes(self, user_id: str) -> int:
        """How many wrong codes `user_id` sent in the current window."""
        item = self._get(f"tries#{user_id}")
        if item is None or int(item["expires_at"]["N"]) <= _epoch(self._clock()):
            return 0
        return int(item["wrong"]["N"])

    def count_wrong_code(self, user_id: str) -> int:
        """Count one wrong code; the count in the window, this one included."""
        now = self._clock()
        try:
            found = self._db.update_item(
                TableName=self._table,
                Key={"pk": _s(f"tries#{user_id}")},
                UpdateExpression="SET wrong = wrong + :one",
                ConditionExpression="expires_at > :now",
                ExpressionAttributeValues={":one": {"N": "1"}, ":now": {"N": str(_epoch(now))}},
                ReturnValues="UPDATED_NEW",
            )
            return int(found["Attributes"]["wrong"]["N"])
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
        # None yet, or the last window is over (TTL deletes late): a new window.
        self._db.put_item(
            TableName=self._table,
            Item={
                "pk": _s(f"tries#{user_id}"),
                "wrong": {"N": "1"},
                "expires_at": {"N": str(_epoch(now + WRONG_CODE_WINDOW))},
            },
        )
        return 1

    # --- links ---------------------------------------------------------------------------
    def user_for(self, phone: str) -> str | None:
        item = self._get(f"phone#{phone}")
        return item["user_id"]["S"] if item else None

    def phone_for(self, user_id: str) -> str | None:
        item = self._get(f"user#{user_id}")
        return item["phone"]["S"] if item else None

    def unlink_user(self, user_id: str) -> str | None:
        """Unlink `user_id` (they unfollowed); the phone it was linked to, if any."""
        phone = self.phone_for(user_id)
        self._db.delete_item(TableName=self._table, Key={"pk": _s(f"user#{user_id}")})
        if phone is not None:
            self._delete_if(f"phone#{phone}", "user_id", user_id)
        return phone

    def unlink_phone(self, phone: str) -> bool:
        """Unlink `phone`; whether it was linked."""
        user_id = self.user_for(phone)
        if user_id is None:
            return False
        self._db.delete_item(TableName=self._table, Key={"pk": _s(f"phone#{phone}")})
        self._delete_if(f"user#{user_id}", "phone", phone)
        return True

    def links(self) -> list[dict[str, str]]:
        """Every link (for the operator's CLI): `phone`, `user_id`, `linked_at`."""
        found: list[dict[str, str]] = []
        start: dict[str, Any] | None = None
        while True:
            request: dict[str, Any] = {
                "TableName": self._table,
                "FilterExpression": "begins_with(pk, :phone)",
                "ExpressionAttributeValues": {":phone": _s("phone#")},
            }
            if start:
                request["ExclusiveStartKey"] = start
            page = self._db.scan(**request)
            for item in page.get("Items", []):
                found.append(
                    {
                        "phone": item["pk"]["S"].removeprefix("phone#"),
                        "user_id": item["user_id"]["S"],
                        "linked_at": item["linked_at"]["S"],
                    }
                )
            start = page.get("LastEvaluatedKey")
            if not start:
                return sorted(found, key=lambda link: link["linked_at"])

    # --- helpers -------------------------------------------------------------------------
    def _get(self, pk: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self._db.get_item(
            TableName=self._table, Key={"pk": _s(pk)}, ConsistentRead=True
        ).get("Item")
        return item

    def _delete_if(self, pk: str, attribute: str, value: str) -> None:
        """Delete `pk` only while it still points where we think (a concurrent relink wins)."""
        try:
            self._db.delete_item(
                TableName=self._table,
                Key={"pk": _s(pk)},
                ConditionExpression="#a = :v",
                ExpressionAttributeNames={"#a": attribute},
                ExpressionAttributeValues={":v": _s(value)},
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
