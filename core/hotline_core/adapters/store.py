"""The requests table: one item per request (`REQ#<contact id>`), one per link
(`LINK#<sha256 of the token>`) and one per caller → receiver pair (`OPEN#<caller>#<receiver>`,
the newest request between them). Every state change is a single conditional write.

The pair items are written in the request's own create transaction and never touched by an
answer or the timer: a pair item whose request is settled, or whose window is over, simply
does not block. So repeats and mutual calls cost nothing on the common path; only a call that
finds a pair item in its way reads the requests it points at.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from hotline_core.events import Party
from hotline_core.ports import LinkExpired
from hotline_core.requests import (
    REQUEST_RETENTION,
    CallRequest,
    CreateOutcome,
    Creation,
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
        mutual=item.get("mutual", {}).get("BOOL", False),
    )


def pair_key(caller_phone: str, receiver_phone: str) -> str:
    return f"OPEN#{caller_phone}#{receiver_phone}"


def _creation_refused(reasons: list[dict[str, Any]]) -> Creation:
    codes = [r.get("Code", "None") for r in reasons] + ["None"] * 4
    if codes[0] == "ConditionalCheckFailed" or codes[1] == "ConditionalCheckFailed":
        return Creation(CreateOutcome.ALREADY_CREATED)
    blocking = [
        reasons[i]["Item"]["request_id"]["S"]
        if codes[i] == "ConditionalCheckFailed" and "Item" in reasons[i]
        else None
        for i in (2, 3)
    ]
    if codes[2] != "ConditionalCheckFailed" and codes[3] != "ConditionalCheckFailed":
        # Not a condition (a conflicting concurrent transaction): the caller may retry.
        raise RuntimeError(f"request transaction cancelled: {codes[:4]}")
    return Creation(CreateOutcome.PAIR_BLOCKED, mine=blocking[0], theirs=blocking[1])


class DynamoRequestStore:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name

    def create(self, request: CallRequest, link: Link, *, settled: Iterable[str] = ()) -> Creation:
        """One transaction: the request, its link, the caller → receiver pair item, and a
        check that no receiver → caller request is waiting. A pair item blocks while its
        window is open unless its request id is in `settled` (the caller read it and found
        it answered)."""
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
        pair_item: Item = {
            "pk": _s(pair_key(request.caller.phone, request.receiver.phone)),
            "request_id": _s(request.request_id),
            "open_until": _n(_epoch(request.answer_by)),
            "expires_at": _n(_epoch(request.answer_by + REQUEST_RETENTION)),
        }
        ids = sorted(set(settled))
        ignore = "".join(f" OR request_id = :settled{i}" for i in range(len(ids)))
        free = f"attribute_not_exists(pk) OR open_until <= :now{ignore}"
        values: Item = {":now": _n(_epoch(request.requested_at))}
        values.update({f":settled{i}": _s(rid) for i, rid in enumerate(ids)})
        mine_values = {**values, ":me": _s(request.request_id)}
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
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": pair_item,
                            # A retry for the same contact finds its own pair item.
                            "ConditionExpression": f"{free} OR request_id = :me",
                            "ExpressionAttributeValues": mine_values,
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        }
                    },
                    {
                        "ConditionCheck": {
                            "TableName": self._table,
                            "Key": {
                                "pk": _s(pair_key(request.receiver.phone, request.caller.phone))
                            },
                            "ConditionExpression": free,
                            "ExpressionAttributeValues": values,
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        }
                    },
                ]
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons: list[dict[str, Any]] = exc.response.get("CancellationReasons", [])  # type: ignore[assignment]
            return _creation_refused(reasons)
        return Creation(CreateOutcome.CREATED)

    def discard(self, request: CallRequest, link: Link) -> None:
        keys = (
            f"REQ#{request.request_id}",
            f"LINK#{link.token_hash}",
            pair_key(request.caller.phone, request.receiver.phone),
        )
        self._db.transact_write_items(
            TransactItems=[
                {"Delete": {"TableName": self._table, "Key": {"pk": _s(key)}}} for key in keys
            ]
        )

    def get_many(self, request_ids: Iterable[str]) -> dict[str, CallRequest]:
        keys = [{"pk": _s(f"REQ#{rid}")} for rid in sorted(set(request_ids))]
        if not keys:
            return {}
        got = self._db.batch_get_item(
            RequestItems={self._table: {"Keys": keys, "ConsistentRead": True}}
        )
        found = [request_from_item(i) for i in got.get("Responses", {}).get(self._table, [])]
        return {r.request_id: r for r in found}

    def open_request(self, caller_phone: str, receiver_phone: str) -> CallRequest | None:
        """The newest request from caller to receiver, settled or not; None when none."""
        pair = self._db.get_item(
            TableName=self._table,
            Key={"pk": _s(pair_key(caller_phone, receiver_phone))},
            ConsistentRead=True,
        ).get("Item")
        return self.get(pair["request_id"]["S"]) if pair else None

    def accept_mutual(self, request_id: str, now: datetime) -> Transition:
        """`inquiry → accepted` because the receiver called the caller back."""
        return self._transition(
            request_id,
            update="SET #s = :accepted, late = :false, mutual = :true, answered_at = :now",
            condition="#s = :inquiry",
            values={
                ":accepted": _s(Status.ACCEPTED),
                ":false": {"BOOL": False},
                ":true": {"BOOL": True},
            },
            now=now,
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
