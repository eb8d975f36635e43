"""Publishes domain events to the custom bus. A PutEvents answer with failed entries is a
failure: it is retried here after a short jittered pause, and raised if it still fails, never
ignored. A failed PutEvents call (ClientError, BotoCoreError: botocore has retried what it
retries) is raised as PublishFailed too, so every caller handles one error."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from hotline_core.events import SOURCE, EventData, envelope

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient


class PublishFailed(RuntimeError):
    """EventBridge did not accept the event after retries, or could not be reached."""


class EventBridgePublisher:
    def __init__(
        self,
        client: EventBridgeClient,
        bus_name: str,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        attempts: int = 3,
        base_delay: float = 0.05,
        max_delay: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._events = client
        self._bus = bus_name
        self._clock = clock
        self._attempts = attempts
        self._base = base_delay
        self._max = max_delay
        self._sleep = sleep

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
        for attempt in range(1, self._attempts + 1):
            if attempt > 1:
                # Full jitter, short: a caller (Connect, the answer page) is waiting. Failed
                # entries are mostly throttling or an internal failure; at once is too soon.
                ceiling = min(self._max, self._base * 2 ** (attempt - 2))
                self._sleep(random.uniform(0, ceiling))  # noqa: S311 - jitter, not security
            try:
                result = self._events.put_events(Entries=[entry])  # type: ignore[list-item]
            except (ClientError, BotoCoreError) as exc:
                raise PublishFailed(
                    f"{data.detail_type} not sent to {self._bus}: {type(exc).__name__}"
                ) from exc
            if result.get("FailedEntryCount", 0) == 0:
                return
            failed = result["Entries"][0]
            last_error = f"{failed.get('ErrorCode')}: {failed.get('ErrorMessage')}"
        raise PublishFailed(f"{data.detail_type} not accepted by {self._bus}: {last_error}")
