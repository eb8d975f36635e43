"""The requests table: one item per request (`REQ#<contact id>`) and one per link
(`LINK#<sha256 of the token>`). Every state change is a single conditional write."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from hotline_core.events import Party
from hotline_core.ports import LinkExpired
from hotline_core.requests import (
    REQUEST_RETENTION,
    CallRequest,
    Link,
    Outcome,
    Reason,
    Status,
    Transition,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Item = dict[str, Any]


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _party_item(party: Party) -> dict[str, Any]:
    return {"M": {"name": _s(party.name), "phone": _s(party.phone), "lang": _s(party.lang)}}


def _party(item: dict[str, Any]) -> Party:
    m = item["M"]
    return Party(name=m["name"]["S"], phone=m["phone"]["S"], lang=m["lang"]["S"])


def _time(item: Item, key: str) -> datetime | None:
    return datetime.fromisoformat(item[key]["S"]) if key in item else None


def request_from_item(item: Item) -> CallRequest:
    requested_at = _time(item, "requested_at")
    answer_by = _time(item, "answer_by")
    assert requested_at is not None and answer_by is not None
    return CallRequest(
        request_id=item["request_id"]["S"],
        caller=_party(item["caller"]),
        receiver=_party(item["receiver"]),
        hotline_number=item["hotline_number"]["S"],
        requested_at=requested_at,
        answer_by=answer_by,
        status=Status(item["status"]["S"]),
        reason=Reason(item["reason"]["S"]) if "reason" in item else None,
        late=item.get("late", {}).get("BOOL", False),
        answered_at=_time(item, "answered_at"),
    )


class DynamoRequestStore:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name

    def create(self, request: CallRequest, link: Link) -> bool:
        key = _s(f"REQ#{request.request_id}")
        item: Item = {
            "pk": key,
            "request_id": _s(request.request_id),
            "caller": _party_item(request.caller),
            "receiver": _party_item(request.receiver),
            "hotline_number": _s(request.hotline_number),
            "requested_at": _s(request.requested_at.isoformat()),
            "answer_by": _s(request.answer_by.isoformat()),
            "status": _s(Status.INQUIRY),
            "expires_at": _n(_epoch(request.requested_at + REQUEST_RETENTION)),
        }
        link_item: Item = {
            "pk": _s(f"LINK#{link.token_hash}"),
            "request_id": _s(request.request_id),
            "link_expires_at": _n(_epoch(link.expires_at)),
            "expires_at": _n(_epoch(link.expires_at)),
        }
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": item,
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": link_item,
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "TransactionCanceledException":
                return False
            raise
        return True

    def discard(self, request: CallRequest, link: Link) -> None:
        self._db.transact_write_items(
            TransactItems=[
                {"Delete": {"TableName": self._table, "Key": {"pk": _s(key)}}}
                for key in (f"REQ#{request.request_id}", f"LINK#{link.token_hash}")
            ]
        )

    def get(self, request_id: str) -> CallRequest | None:
        found = self._db.get_item(
            TableName=self._table, Key={"pk": _s(f"REQ#{request_id}")}, ConsistentRead=True
        ).get("Item")
        return request_from_item(found) if found else None

    def find_by_link(self, token_hash: str, now: datetime) -> CallRequest | None:
        link = self._db.get_item(
            TableName=self._table, Key={"pk": _s(f"LINK#{token_hash}")}, ConsistentRead=True
        ).get("Item")
        if not link:
            return None
        # TTL deletes lazily (up to days later), so expiry is checked here, not trusted to TTL.
        if int(link["link_expires_at"]["N"]) <= _epoch(now):
            raise LinkExpired(token_hash[:8])
        return self.get(link["request_id"]["S"])

    def accept(self, request_id: str, now: datetime) -> Transition:
        first = self._transition(
            request_id,
            update="SET #s = :accepted, late = :false, answered_at = :now REMOVE reason",
            condition="#s = :inquiry",
            values={":accepted": _s(Status.ACCEPTED), ":false": {"BOOL": False}},
            now=now,
        )
        if first.outcome is not Outcome.ALREADY_SETTLED or first.request is None:
            return first
        if first.request.status is Status.REFUSED and first.request.reason is Reason.TIMED_OUT:
            # Too late for the window, not too late to say "free now".
            return self._transition(
                request_id,
                update="SET #s = :accepted, late = :true, answered_at = :now REMOVE reason",
                condition="#s = :refused AND reason = :timed_out",
                values={
                    ":accepted": _s(Status.ACCEPTED),
                    ":true": {"BOOL": True},
                    ":refused": _s(Status.REFUSED),
                    ":timed_out": _s(Reason.TIMED_OUT),
                },
                now=now,
            )
        return first

    def decline(self, request_id: str, now: datetime) -> Transition:
        return self._refuse(request_id, Reason.DECLINED, now)

    def time_out(self, request_id: str, now: datetime) -> Transition:
        return self._refuse(request_id, Reason.TIMED_OUT, now)

    def _refuse(self, request_id: str, reason: Reason, now: datetime) -> Transition:
        return self._transition(
            request_id,
            update="SET #s = :refused, reason = :reason, answered_at = :now",
            condition="#s = :inquiry",
            values={":refused": _s(Status.REFUSED), ":reason": _s(reason)},
            now=now,
        )

    def _transition(
        self,
        request_id: str,
        *,
        update: str,
        condition: str,
        values: dict[str, Any],
        now: datetime,
    ) -> Transition:
        key = {"pk": _s(f"REQ#{request_id}")}
        condition = f"attribute_exists(pk) AND ({condition})"
        every = {
            **values,
            ":now": _s(now.astimezone(UTC).isoformat()),
            ":inquiry": _s(Status.INQUIRY),
        }
        # DynamoDB rejects values the expressions do not use.
        used = {k: v for k, v in every.items() if k in update or k in condition}
        try:
            result = self._db.update_item(
                TableName=self._table,
                Key=key,
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=used,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            old: Item | None = exc.response.get("Item")  # type: ignore[assignment]
            # Without the echoed item (an emulator may not send it), read it once.
            current = self.get(request_id) if old is None else request_from_item(old)
            if current is None:
                return Transition(Outcome.NOT_FOUND, None)
            return Transition(Outcome.ALREADY_SETTLED, current)
        return Transition(Outcome.APPLIED, request_from_item(result["Attributes"]))
