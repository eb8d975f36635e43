"""Publishes domain events to the custom bus. A PutEvents answer with a failed entry is a
failure, never ignored: it is retried (as are throttling, server errors, no connection and a
call that got no answer) under a bounded `Retrier`, and raised as `PublishFailed` if it still
fails. Publishing again is always safe: consumers are idempotent per request.

`PublishFailed.maybe_published` tells the two endings apart: EventBridge said no (the event is
certainly not on the bus; a producer may undo its state write), or the last attempt got no
answer (the event may be on the bus; undoing would orphan the consumers' work)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from hotline_core.adapters.retry import (
    Limits,
    Retrier,
    RetryPolicy,
    transient_or_unanswered,
    unanswered,
)
from hotline_core.events import SOURCE, EventData, envelope
from hotline_core.ports import PublishFailed

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

__all__ = ["EVENTS_CLIENT", "PUBLISH_RETRIES", "EventBridgePublisher", "PublishFailed"]

# A caller (Connect, the answer page) is waiting: each attempt is bounded by the events
# client's timeouts (runtime.clients builds the client with these), with few, short pauses.
EVENTS_CLIENT = Limits(connect=0.5, read=1.0)
PUBLISH_RETRIES = RetryPolicy(
    attempts=3,
    attempt_seconds=EVENTS_CLIENT.attempt_seconds,
    budget_seconds=3.0,
    base_delay=0.05,
    max_delay=0.2,
)
# What PutEvents reports per entry that is worth another try; anything else (a malformed or
# oversized entry, access denied) fails the same way again.
RETRYABLE_ENTRY_ERRORS = {"InternalFailure", "ThrottlingException"}


class EntryRejected(Exception):
    """PutEvents answered, with the entry failed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


def _worth_retrying(error: BaseException) -> bool:
    if isinstance(error, EntryRejected):
        return error.code in RETRYABLE_ENTRY_ERRORS
    return transient_or_unanswered(error)


class EventBridgePublisher:
    def __init__(
        self,
        client: EventBridgeClient,
        bus_name: str,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        reserve: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`reserve`: seconds of the invocation an attempt must leave for what the producer
        does after a failed publish (undo its write, answer the caller)."""
        self._events = client
        self._bus = bus_name
        self._clock = clock
        self._retry = Retrier(
            PUBLISH_RETRIES, retry_if=_worth_retrying, reserve=reserve, sleep=sleep
        )

    def publish(self, data: EventData, *, correlation_id: str) -> None:
        now = self._clock()
        entry: dict[str, Any] = {
            "EventBusName": self._bus,
            "Time": now,
            "Source": SOURCE,
            "DetailType": data.detail_type,
            "Detail": json.dumps(
                envelope(data, correlation_id=correlation_id, now=now),
                ensure_ascii=False,
            ),
        }
        try:
            self._retry(lambda: self._put(entry))
        except EntryRejected as exc:
            raise PublishFailed(
                f"{data.detail_type} not accepted by {self._bus}: {exc}", maybe_published=False
            ) from exc
        except (ClientError, BotoCoreError, TimeoutError) as exc:
            raise PublishFailed(
                f"{data.detail_type} not sent to {self._bus}: {type(exc).__name__}",
                maybe_published=unanswered(exc),
            ) from exc

    def _put(self, entry: dict[str, Any]) -> None:
        result = self._events.put_events(Entries=[entry])  # type: ignore[list-item]
        if result.get("FailedEntryCount", 0):
            failed = result["Entries"][0]
            raise EntryRejected(failed.get("ErrorCode", "?"), failed.get("ErrorMessage", ""))
