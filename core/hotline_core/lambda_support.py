"""What every Lambda entry point shares: Powertools logger and metrics, AWS clients and
adapters built once per cold start, and the consumer wrapper (parse, replay guard, log)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from hotline_core import clock
from hotline_core.adapters.bus import EventBridgePublisher
from hotline_core.adapters.directory_source import S3Directory
from hotline_core.adapters.idempotency import OnceOnly, OnceOnlySms
from hotline_core.adapters.retry import RetryingSms
from hotline_core.adapters.sms import EndUserMessagingSms, MeteredSms, SnsSms
from hotline_core.adapters.store import DynamoRequestStore
from hotline_core.adapters.timer import SchedulerAnswerTimer
from hotline_core.eventbridge import EventBridgeEvent
from hotline_core.events import BY_DETAIL_TYPE, Envelope, EventData
from hotline_core.requests import Transition
from hotline_core.settings import Settings

if TYPE_CHECKING:
    from hotline_core.ports import SmsSender

logger = Logger(service="hotline")
metrics = Metrics(namespace="Hotline", service="hotline")

DataT = TypeVar("DataT", bound=EventData)


def now() -> datetime:
    return clock.now()


@functools.cache
def client(service: str) -> Any:
    return boto3.client(service)  # type: ignore[call-overload]


def count(name: str) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


class MeasuredRequestStore(DynamoRequestStore):
    """The request store, also recording how long each answer took (AnswerTimeSeconds: from
    the call to the tap), measured where the answer is applied so it costs no extra read."""

    def accept(
        self, request_id: str | None, now: datetime, *, link_hash: str | None = None
    ) -> Transition:
        return _measured(super().accept(request_id, now, link_hash=link_hash))

    def decline(
        self, request_id: str, now: datetime, *, link_hash: str | None = None
    ) -> Transition:
        return _measured(super().decline(request_id, now, link_hash=link_hash))

    def accept_link(self, link_hash: str, now: datetime) -> Transition:
        return _measured(super().accept_link(link_hash, now))

    def decline_link(self, link_hash: str, now: datetime) -> Transition:
        return _measured(super().decline_link(link_hash, now))


def _measured(transition: Transition) -> Transition:
    request = transition.request
    if transition.applied and request is not None and request.answered_at is not None:
        seconds = (request.answered_at - request.requested_at).total_seconds()
        metrics.add_metric(name="AnswerTimeSeconds", unit=MetricUnit.Seconds, value=seconds)
    return transition


class Deps:
    """Adapters for one function, each built on first use and kept for the container's life."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @functools.cached_property
    def store(self) -> DynamoRequestStore:
        return MeasuredRequestStore(client("dynamodb"), self.settings.table_name)

    @functools.cached_property
    def bus(self) -> EventBridgePublisher:
        return EventBridgePublisher(client("events"), self.settings.event_bus_name, clock=now)

    @functools.cached_property
    def directory(self) -> S3Directory:
        return S3Directory(
            client("s3"), self.settings.directory_bucket, self.settings.directory_key
        )

    @functools.cached_property
    def timer(self) -> SchedulerAnswerTimer:
        s = self.settings
        return SchedulerAnswerTimer(
            client("scheduler"),
            group=s.schedule_group,
            target_arn=s.timer_target_arn,
            role_arn=s.scheduler_role_arn,
            dead_letter_arn=s.timer_dead_letter_arn or None,
        )

    @functools.cached_property
    def sms(self) -> SmsSender:
        provider: SmsSender
        if self.settings.sms_provider == "end-user-messaging":
            provider = EndUserMessagingSms(
                client("pinpoint-sms-voice-v2"),
                origination_identity=self.settings.sms_origination_identity or None,
            )
        else:
            provider = SnsSms(client("sns"))
        # Counted after the retries: one SmsSent or one SmsFailed per message.
        return MeteredSms(RetryingSms(provider), count=count)

    @functools.cached_property
    def once_only(self) -> OnceOnly:
        return OnceOnly(client("dynamodb"), self.settings.idempotency_table_name, clock=now)

    @functools.cached_property
    def once_only_sms(self) -> OnceOnlySms:
        return OnceOnlySms(self.sms, self.once_only)


def parse_event(event: dict[str, Any], *models: type[DataT]) -> tuple[EventBridgeEvent, DataT]:
    """The EventBridge envelope and the typed payload (the model named by detail-type); a
    malformed event raises with a log line that says what was wrong (field paths only, no
    values: they may be phone numbers)."""
    by_type = {m.detail_type: m for m in models}
    try:
        outer = EventBridgeEvent.model_validate(event)
        model = by_type.get(outer.detail_type)
        if model is None:
            raise ValueError(f"expected one of {sorted(by_type)}, got {outer.detail_type!r}")
        inner = Envelope[model].model_validate(outer.detail)  # type: ignore[valid-type]
    except (ValidationError, ValueError) as exc:
        problems = (
            [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
            if isinstance(exc, ValidationError)
            else [str(exc)]
        )
        logger.error("malformed event rejected", models=sorted(by_type), problems=problems)
        raise
    return outer, inner.data


Consumer = Callable[[DataT, Deps], None]


def consumer(
    *models: type[DataT], does: str, needs: tuple[str, ...] = ()
) -> Callable[[Consumer[DataT]], Callable[[dict[str, Any], LambdaContext], None]]:
    """Turns `fn(data, deps)` into a Lambda handler for EventBridge events of `models`.

    A replayed event (it carries `replay-name`) never texts anyone or starts a timer unless
    the deployment allows it: the consumer logs what it would have done instead.
    """

    def wrap(fn: Consumer[DataT]) -> Callable[[dict[str, Any], LambdaContext], None]:
        deps: Deps | None = None

        @logger.inject_lambda_context(clear_state=True)
        @metrics.log_metrics
        @functools.wraps(fn)
        def handler(event: dict[str, Any], context: LambdaContext) -> None:
            nonlocal deps
            if deps is None:
                deps = Deps(Settings.from_env(needs=needs))
            outer, data = parse_event(event, *models)
            correlation = getattr(data, "request_id", None) or getattr(data, "member_id", "")
            logger.append_keys(event_id=outer.id, correlation_id=correlation)
            if outer.replay_name and not deps.settings.allow_replay_side_effects:
                logger.info(
                    "replayed event: side effect skipped",
                    replay_name=outer.replay_name,
                    detail_type=outer.detail_type,
                    would_have=does,
                )
                metrics.add_metric(name="ReplaySkipped", unit=MetricUnit.Count, value=1)
                return
            fn(data, deps)

        return handler

    return wrap


__all__ = ["BY_DETAIL_TYPE", "Deps", "consumer", "logger", "metrics", "now", "parse_event"]
