"""The answer window as an EventBridge Scheduler one-shot schedule, named after the request so
a retried create cannot make two, and deleted by Scheduler after it fires."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_scheduler import EventBridgeSchedulerClient


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
    ) -> None:
        self._scheduler = client
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
                return False
            raise
        return True

    def cancel(self, request_id: str) -> bool:
        try:
            self._scheduler.delete_schedule(Name=schedule_name(request_id), GroupName=self._group)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                return False
            raise
        return True
