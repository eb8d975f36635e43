"""The answer window as an EventBridge Scheduler one-shot schedule, named after the request so
a retried create cannot make two, and deleted by Scheduler after it fires. Both calls are
idempotent, so they are retried (`retry`) also when an answer did not arrive in time."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

if TYPE_CHECKING:
    from mypy_boto3_scheduler import EventBridgeSchedulerClient

T = TypeVar("T")


def _at_once(call: Callable[[], T]) -> T:
    return call()


def schedule_name(request_id: str) -> str:
    # Scheduler names are at most 64 of [0-9a-zA-Z-_.]; a Connect contact id is a 36-char UUID.
    return f"answer-{request_id}"[:64]


class SchedulerAnswerTimer:
    def __init__(
        self,
        client: EventBridgeSchedulerClient,
        *,
        group: str,
        target_arn: str,
        role_arn: str,
        dead_letter_arn: str | None = None,
        retry: Callable[[Callable[[], bool]], bool] = _at_once,
    ) -> None:
        self._scheduler = client
        self._retry = retry
        self._group = group
        self._target_arn = target_arn
        self._role_arn = role_arn
        self._dlq = dead_letter_arn

    def start(self, request_id: str, fire_at: datetime, *, link_hash: str | None = None) -> bool:
        at = fire_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        target: dict[str, object] = {
            "Arn": self._target_arn,
            "RoleArn": self._role_arn,
            "Input": json.dumps(
                {"request_id": request_id, **({"link_hash": link_hash} if link_hash else {})}
            ),
            "RetryPolicy": {"MaximumRetryAttempts": 10, "MaximumEventAgeInSeconds": 3600},
        }
        if self._dlq:
            target["DeadLetterConfig"] = {"Arn": self._dlq}
        unanswered = False

        def create() -> bool:
            nonlocal unanswered
            try:
                self._scheduler.create_schedule(
                    Name=schedule_name(request_id),
                    GroupName=self._group,
                    ScheduleExpression=f"at({at})",
                    ScheduleExpressionTimezone="UTC",
                    FlexibleTimeWindow={"Mode": "OFF"},
                    ActionAfterCompletion="DELETE",
                    Target=target,  # type: ignore[arg-type]
                )
            except ClientError as exc:
                if exc.response["Error"]["Code"] == "ConflictException":
                    # After an unanswered attempt the schedule found is most likely that one.
                    return unanswered
                raise
            except (ReadTimeoutError, ConnectionClosedError):
                unanswered = True
                raise
            return True

        return self._retry(create)

    def cancel(self, request_id: str) -> bool:
        def delete() -> bool:
            try:
                self._scheduler.delete_schedule(
                    Name=schedule_name(request_id), GroupName=self._group
                )
            except ClientError as exc:
                if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                    return False
                raise
            return True

        return self._retry(delete)
