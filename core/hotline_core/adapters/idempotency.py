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

import contextlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from botocore.exceptions import ClientError

from hotline_core.adapters.retry import Retrier
from hotline_core.ports import Preemption

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from hotline_core.adapters.channels import LineFirst
    from hotline_core.ports import SmsSender

# Longer than anything can arrive again: EventBridge's retries (an hour here), a replay, and
# a dead letter re-driven before its queue drops it (14 days).
RECORD_LIFETIME_SECONDS = 15 * 24 * 3600
# Longer than any consumer's Timeout in template.yaml (a test checks): a claim this old
# belongs to an effect that has ended.
CLAIM_SETTLED_AFTER = timedelta(seconds=30)
PREEMPTED = "preempted"  # the owner of a claim that stands for an effect that must not run
T = TypeVar("T")
Channel = Literal["sms", "line"]


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

    def do(self, key: str, effect: Callable[[], T], *, mark_ended: bool = False) -> Once[T]:
        """Run `effect` unless `key` was claimed before. `mark_ended`: once the effect has
        run, say so on the claim (one more write), so a `preempt` of the key knows at once
        that it ended rather than waiting for the claim to age."""
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
        if mark_ended:
            # The effect is done: if this write fails, the claim's age still tells.
            with contextlib.suppress(Exception):
                self._release_retry(lambda: self._put_claim(key, owner, ended=True))
        return Once(ran=True, value=value)

    def preempt(self, key: str, *, settled_after: timedelta) -> Preemption:
        """Claim `key` for no effect, so its effect never runs; or, when it was claimed
        before, whether the effect that claimed it has ended: every effect ends (done, or
        raised and released) well inside its function's timeout, so a claim older than
        `settled_after` (longer than any consumer's timeout) belongs to an ended effect."""
        found = self._claim_retry(lambda: self._put_claim(key, PREEMPTED))
        if found is None or found.get("owner", {}).get("S") == PREEMPTED:
            return Preemption.PREEMPTED
        if found.get("ended", {}).get("BOOL"):
            return Preemption.SETTLED
        claimed_at = datetime.fromisoformat(found["claimed_at"]["S"])
        if self._clock() - claimed_at >= settled_after:
            return Preemption.SETTLED
        return Preemption.IN_FLIGHT

    def _claim(self, key: str, owner: str) -> bool:
        found = self._put_claim(key, owner)
        # Our own earlier attempt, written but answered too late, is still ours.
        return found is None or found.get("owner", {}).get("S") == owner

    def _put_claim(self, key: str, owner: str, *, ended: bool = False) -> dict[str, Any] | None:
        """Write the claim; None when written, else the claim that was there. `ended`:
        rewrite our own claim as one whose effect has run (PutItem, not UpdateItem: one
        permission for every write a claim needs)."""
        now = self._clock()
        item: dict[str, Any] = {
            "id": {"S": key},
            "owner": {"S": owner},
            "claimed_at": {"S": now.isoformat()},
            "expiration": {"N": str(int(now.timestamp()) + RECORD_LIFETIME_SECONDS)},
        }
        if ended:
            item["ended"] = {"BOOL": True}
        condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(id)"}
        if ended:
            condition = {
                "ConditionExpression": "#owner = :owner",
                "ExpressionAttributeNames": {"#owner": "owner"},
                "ExpressionAttributeValues": {":owner": {"S": owner}},
            }
        try:
            self._db.put_item(
                TableName=self._table,
                Item=item,
                **condition,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                found: dict[str, Any] = exc.response.get("Item") or {}  # type: ignore[assignment]
                return found
            raise
        return None

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


class OnceOnlyMessages:
    """Messages sent at most once per key, each by the person's channel: SMS, or LINE first
    where `line` is given and the phone is linked (`channels.LineFirst`), with SMS under the
    same claim when the push fails."""

    def __init__(
        self,
        sms: SmsSender,
        once: OnceOnly,
        *,
        line: LineFirst | None = None,
        count: Callable[[str], None] = lambda name: None,
    ) -> None:
        self._sms = sms
        self._once = once
        self._line = line
        self._count = count

    def send_once(
        self,
        key: str,
        to: str,
        body: str,
        *,
        line: Sequence[Mapping[str, Any]] | None = None,
        still_right: Callable[[], bool] | None = None,
        mark_ended: bool = False,
    ) -> Channel | None:
        """Send unless a message with this key was already claimed, and unless `still_right`,
        asked once the key is claimed, says no; the channel it went by now (None: not sent).
        `line`: the LINE messages for a linked person (default: `body` as one text).
        `mark_ended`: a text that another may wait for (`preempt`) says on its claim when it
        is done."""

        def send() -> Channel | None:
            if still_right is not None and not still_right():
                return None  # decided: the claim stays, so no later delivery sends it either
            if self._line is not None:
                user = self._line.user_for(to)
                if user is not None:
                    messages = list(line) if line is not None else [_text(body)]
                    if self._line.push(user, messages, once_key=key):
                        return "line"
                    self._count("SmsFallback")  # once: this claim's one text
            self._sms.send(to, body)
            return "sms"

        once = self._once.do(key, send, mark_ended=mark_ended)
        return once.value if once.ran else None

    def preempt(self, key: str) -> Preemption:
        return self._once.preempt(key, settled_after=CLAIM_SETTLED_AFTER)

    def recording(self) -> SentRecord:
        """A sender for one invocation that remembers which keys it really sent."""
        return SentRecord(self)


def _text(body: str) -> dict[str, Any]:
    return {"type": "text", "text": body}


class SentRecord:
    """`OnceOnlySender` for the domain functions, recording what ran: a consumer counts its
    metrics from `sent`, so a skipped duplicate counts nothing; `via` says by which channel."""

    def __init__(self, sender: OnceOnlyMessages) -> None:
        self._sender = sender
        self.sent: list[str] = []
        self.via: dict[str, Channel] = {}

    def send_once(
        self,
        key: str,
        to: str,
        body: str,
        *,
        line: Sequence[Mapping[str, Any]] | None = None,
        still_right: Callable[[], bool] | None = None,
        mark_ended: bool = False,
    ) -> None:
        channel = self._sender.send_once(
            key, to, body, line=line, still_right=still_right, mark_ended=mark_ended
        )
        if channel is not None:
            self.sent.append(key)
            self.via[key] = channel

    def preempt(self, key: str) -> Preemption:
        return self._sender.preempt(key)
