"""Publishes domain events to the custom bus. A PutEvents answer with failed entries is a
failure: it is retried here, and raised if it still fails, never ignored."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hotline_core.events import SOURCE, EventData, envelope

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient


class PublishFailed(RuntimeError):
    """EventBridge did not accept the event after retries."""


class EventBridgePublisher:
    def __init__(
        self,
        client: EventBridgeClient,
        bus_name: str,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        attempts: int = 3,
    ) -> None:
        self._events = client
        self._bus = bus_name
        self._clock = clock
        self._attempts = attempts

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
        last_error = ""
        for _ in range(self._attempts):
            result = self._events.put_events(Entries=[entry])  # type: ignore[list-item]
            if result.get("FailedEntryCount", 0) == 0:
                return
            failed = result["Entries"][0]
            last_error = f"{failed.get('ErrorCode')}: {failed.get('ErrorMessage')}"
        raise PublishFailed(f"{data.detail_type} not accepted by {self._bus}: {last_error}")
