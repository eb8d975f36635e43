"""The requests table. A request lives in one item keyed by its link (`LINK#<sha256 of the
token>`), so the page and the answer each need a single call; `REQ#<contact id>` points at it
(and makes a repeated Connect invocation for the same contact create nothing); one item per
caller → receiver pair (`OPEN#<caller>#<receiver>`) points at the newest request between them.
Every state change is a single conditional write on the request item.

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
    MOVES,
    REQUEST_RETENTION,
    STORED,
    CallRequest,
    CreateOutcome,
    Creation,
    Link,
    Outcome,
    Reason,
    State,
    Status,
    Step,
    Transition,
    state_of,
    time_out_expected_by,
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
        state=state_of(
            Status(item["status"]["S"]),
            Reason(item["reason"]["S"]) if "reason" in item else None,
            late=item.get("late", {}).get("BOOL", False),
            mutual=item.get("mutual", {}).get("BOOL", False),
        ),
        answered_at=_time(item, "answered_at"),
        link_hash=item["pk"]["S"].removeprefix("LINK#"),
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
        check that no receiver → caller request is waiting. The caller's own pair item
        blocks until its time-out is overdue, the other way's while its window is open;
        neither when its request id is in `settled` (the caller read it and found it
        answered, or timed it out)."""
        request_item: Item = {
            "pk": _s(f"LINK#{link.token_hash}"),
            "request_id": _s(request.request_id),
            "caller": _party_item(request.caller),
            "receiver": _party_item(request.receiver),
            "hotline_number": _s(request.hotline_number),
            "requested_at": _s(request.requested_at.isoformat()),
            "answer_by": _s(request.answer_by.isoformat()),
            "status": _s(Status.INQUIRY),
            "link_expires_at": _n(_epoch(link.expires_at)),
            "expires_at": _n(_epoch(request.requested_at + REQUEST_RETENTION)),
        }
        pointer: Item = {
            "pk": _s(f"REQ#{request.request_id}"),
            "request_id": _s(request.request_id),
            "link_hash": _s(link.token_hash),
            "expires_at": _n(_epoch(request.requested_at + REQUEST_RETENTION)),
        }
        pair_item: Item = {
            "pk": _s(pair_key(request.caller.phone, request.receiver.phone)),
            "request_id": _s(request.request_id),
            "link_hash": _s(link.token_hash),
            # Until then its receiver may answer it: their call back is a mutual one.
            "open_until": _n(_epoch(request.answer_by)),
            # Until then it stands for its caller, also after the window while its time-out
            # is on its way: their repeat call creates nothing.
            "stands_until": _n(_epoch(time_out_expected_by(request.answer_by))),
            "expires_at": _n(_epoch(request.answer_by + REQUEST_RETENTION)),
        }
        ids = sorted(set(settled))
        ignore = "".join(f" OR request_id = :settled{i}" for i in range(len(ids)))
        free = f"attribute_not_exists(pk) OR open_until <= :now{ignore}"
        # (Pair items written before `stands_until` existed stand until their window closes.)
        mine_free = (
            "attribute_not_exists(pk) OR stands_until <= :now"
            f" OR (attribute_not_exists(stands_until) AND open_until <= :now){ignore}"
        )
        values: Item = {":now": _n(_epoch(request.requested_at))}
        values.update({f":settled{i}": _s(rid) for i, rid in enumerate(ids)})
        mine_values = {**values, ":me": _s(request.request_id)}
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": pointer,
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": request_item,
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": pair_item,
                            # A retry for the same contact finds its own pair item.
                            "ConditionExpression": f"{mine_free} OR request_id = :me",
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
        pointers = self._batch_get([f"REQ#{rid}" for rid in sorted(set(request_ids))])
        found = self._batch_get([f"LINK#{p['link_hash']['S']}" for p in pointers])
        return {r.request_id: r for r in map(request_from_item, found)}

    def _batch_get(self, keys: list[str]) -> list[Item]:
        if not keys:
            return []
        got = self._db.batch_get_item(
            RequestItems={
                self._table: {"Keys": [{"pk": _s(k)} for k in keys], "ConsistentRead": True}
            }
        )
        return list(got.get("Responses", {}).get(self._table, []))

    def newest_request(self, caller_phone: str, receiver_phone: str) -> CallRequest | None:
        """The newest request from caller to receiver, settled or not; None when none."""
        pair = self._get_item(pair_key(caller_phone, receiver_phone))
        if pair is None:
            return None
        found = self._get_item(f"LINK#{pair['link_hash']['S']}")
        return request_from_item(found) if found else None

    def _get_item(self, key: str) -> Item | None:
        item: Item | None = self._db.get_item(
            TableName=self._table, Key={"pk": _s(key)}, ConsistentRead=True
        ).get("Item")
        return item

    def _link_hash(self, request_id: str) -> str | None:
        pointer = self._get_item(f"REQ#{request_id}")
        return pointer["link_hash"]["S"] if pointer else None

    def get(self, request_id: str) -> CallRequest | None:
        link_hash = self._link_hash(request_id)
        found = self._get_item(f"LINK#{link_hash}") if link_hash else None
        return request_from_item(found) if found else None

    def find_by_link(self, token_hash: str, now: datetime) -> CallRequest | None:
        found = self._get_item(f"LINK#{token_hash}")
        if not found:
            return None
        # TTL deletes lazily (up to days later), so expiry is checked here, not trusted to TTL.
        if int(found["link_expires_at"]["N"]) <= _epoch(now):
            raise LinkExpired(token_hash[:8], request_from_item(found).receiver.lang)
        return request_from_item(found)

    def get_by_link(self, link_hash: str) -> CallRequest | None:
        """The request stored under a link, whatever its lifetime (for the consumers)."""
        found = self._get_item(f"LINK#{link_hash}")
        return request_from_item(found) if found else None

    def step(
        self,
        step: Step,
        now: datetime,
        *,
        request_id: str | None = None,
        link_hash: str | None = None,
        via_link: bool = False,
    ) -> Transition:
        """Apply `step` with one conditional write per move the state machine allows for it
        (`requests.MOVES`), tried in order: a write whose condition fails tells which state
        the request is in, and the move from that state, if there is one, is tried next.
        `via_link`: the answer came through the link, so a link past its lifetime changes
        nothing (`LINK_EXPIRED`); TTL deletes lazily, so the lifetime is in the condition."""
        # The caller usually knows the request's link (the page, the timer); else one read.
        link_hash = link_hash or (self._link_hash(request_id) if request_id else None)
        if link_hash is None:
            return Transition(Outcome.NOT_FOUND, None)
        moves = MOVES[step]
        tried: set[State] = set()
        source, target = moves[0]
        while True:
            tried.add(source)
            transition = self._move(link_hash, source, target, now, via_link=via_link)
            if transition.outcome is not Outcome.ALREADY_SETTLED or transition.request is None:
                return transition
            current = transition.request.state
            following = [(s, t) for s, t in moves if s is current and s not in tried]
            if not following:
                return transition
            source, target = following[0]

    def _move(
        self, link_hash: str, source: State, target: State, now: datetime, *, via_link: bool
    ) -> Transition:
        key = f"LINK#{link_hash}"
        was, becomes = STORED[source], STORED[target]
        condition = "attribute_exists(pk) AND #s = :from"
        values: dict[str, Any] = {
            ":from": _s(was.status),
            ":to": _s(becomes.status),
            ":late": {"BOOL": becomes.late},
            ":mutual": {"BOOL": becomes.mutual},
            ":now": _s(now.astimezone(UTC).isoformat()),
        }
        if was.reason is not None:
            condition += " AND reason = :from_reason"
            values[":from_reason"] = _s(was.reason)
        update = "SET #s = :to, late = :late, mutual = :mutual, answered_at = :now"
        if becomes.reason is not None:
            update += ", reason = :reason"
            values[":reason"] = _s(becomes.reason)
        else:
            update += " REMOVE reason"
        if via_link:
            condition += " AND link_expires_at > :epoch"
            values[":epoch"] = _n(_epoch(now))
        try:
            result = self._db.update_item(
                TableName=self._table,
                Key={"pk": _s(key)},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            # Without the echoed item (an emulator may not send it), read it once.
            echoed: Item | None = exc.response.get("Item")  # type: ignore[assignment]
            old = echoed or self._get_item(key)
            if old is None:
                return Transition(Outcome.NOT_FOUND, None)
            current = request_from_item(old)
            if via_link and int(old["link_expires_at"]["N"]) <= _epoch(now):
                return Transition(Outcome.LINK_EXPIRED, current)
            return Transition(Outcome.ALREADY_SETTLED, current)
        return Transition(Outcome.APPLIED, request_from_item(result["Attributes"]))
