"""What every Lambda entry point shares: Powertools logger and metrics, AWS clients and
adapters built once per cold start, and the consumer wrapper (parse, replay guard, log)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import botocore.session
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from hotline_core import clock
from hotline_core.adapters.bus import EVENTS_CLIENT, EventBridgePublisher
from hotline_core.adapters.idempotency import OnceOnly, OnceOnlySms
from hotline_core.adapters.retry import (
    Limits,
    Retrier,
    RetryingSms,
    RetryPolicy,
    deadline,
    transient_or_unanswered,
)
from hotline_core.adapters.sms import EndUserMessagingSms, MeteredSms, SnsSms
from hotline_core.adapters.store import DynamoRequestStore
from hotline_core.eventbridge import EventBridgeEvent
from hotline_core.events import BY_DETAIL_TYPE, Envelope, EventData
from hotline_core.settings import Settings

if TYPE_CHECKING:
    from hotline_core.adapters.directory_source import S3Directory
    from hotline_core.adapters.timer import SchedulerAnswerTimer
    from hotline_core.ports import SmsSender

logger = Logger(service="hotline")
metrics = Metrics(namespace="Hotline", service="hotline")

DataT = TypeVar("DataT", bound=EventData)


def now() -> datetime:
    return clock.now()


# --- How long a side effect may take -----------------------------------------------------
# Every call a consumer's effect makes is bounded, so that the effect ends (done, or raised
# with its claim released) well before the function's Timeout in template.yaml; a test does
# the arithmetic against the template (tests/integration/test_guarantees.py).
CLAIMS_CLIENT = Limits(connect=0.5, read=0.5)  # DynamoDB PutItem/DeleteItem: ms when healthy
# A consumer's read of the request, inside its claimed effect: one attempt; a failure raises,
# releases the claim, and Lambda's retry decides again.
LOOKUP_CLIENT = Limits(connect=0.5, read=0.5)
SMS_CLIENT = Limits(connect=0.5, read=2.0)
SCHEDULER_CLIENT = Limits(connect=0.5, read=1.5)
# The producers' store (a Connect flow waits on two of them: within its 8 s, with the
# publish) and the directory (read once per cold start): botocore retries each once.
STORE_CLIENT = Limits(connect=0.5, read=1.0, attempts=2)
DIRECTORY_CLIENT = Limits(connect=1.0, read=2.0, attempts=2)
# A producer that cannot publish must have time left to undo its write and answer.
PUBLISH_RESERVE = 1.5
# Every client the Lambda code makes, by (service, purpose): `client()` refuses any other.
CLIENT_LIMITS: dict[tuple[str, str], Limits] = {
    ("events", ""): EVENTS_CLIENT,
    ("dynamodb", ""): STORE_CLIENT,
    ("dynamodb", "claims"): CLAIMS_CLIENT,
    ("dynamodb", "lookup"): LOOKUP_CLIENT,
    ("s3", ""): DIRECTORY_CLIENT,
    ("sns", ""): SMS_CLIENT,
    ("pinpoint-sms-voice-v2", ""): SMS_CLIENT,
    ("scheduler", ""): SCHEDULER_CLIENT,
}
CLAIM_RETRIES = RetryPolicy(
    attempts=2,
    attempt_seconds=CLAIMS_CLIENT.attempt_seconds,
    budget_seconds=2.1,
    base_delay=0.05,
    max_delay=0.1,
)
SMS_RETRIES = RetryPolicy(
    attempts=4,
    attempt_seconds=SMS_CLIENT.attempt_seconds,
    budget_seconds=3.5,  # one slow attempt, or a few quickly throttled ones
    base_delay=0.2,
    max_delay=2.0,
)
SCHEDULER_RETRIES = RetryPolicy(
    attempts=3,
    attempt_seconds=SCHEDULER_CLIENT.attempt_seconds,
    budget_seconds=3.0,
    base_delay=0.1,
    max_delay=0.5,
)
FINISH_SECONDS = 0.5  # after the last call: the log lines and the metrics flush
# What a call inside a claimed effect must leave of the invocation: time to release the claim.
RELEASE_RESERVE = CLAIM_RETRIES.worst_case + FINISH_SECONDS


@functools.cache
def _session() -> Any:
    """One botocore session for all clients (its parsed models, credentials, endpoints), as
    boto3's default session would be."""
    return botocore.session.get_session()


@functools.cache
def client(service: str, purpose: str = "") -> Any:
    """One client per service (and purpose) per container, with its timeouts and attempts
    from `CLIENT_LIMITS`: the same on Lambda, locally and in tests, whatever the environment.

    Made with botocore, not boto3: a boto3 client is this same botocore client, and importing
    boto3 (its resource layer, s3transfer) costs every cold start ~15 ms for nothing here."""
    limits = CLIENT_LIMITS.get((service, purpose))
    if limits is None:
        raise LookupError(f"no limits set for a {service} client ({purpose or 'default'})")
    return _session().create_client(service, config=limits.config())


def forget_clients() -> None:
    """Drop the session and its clients, so those made next take up botocore handlers
    registered since (moto's, a call counter's): the local runtime calls this inside its
    mock."""
    client.cache_clear()
    _session.cache_clear()


def count(name: str) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


class Deps:
    """Adapters for one function, each built on first use and kept for the container's life."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @functools.cached_property
    def store(self) -> DynamoRequestStore:
        return DynamoRequestStore(client("dynamodb"), self.settings.table_name)

    @functools.cached_property
    def lookup(self) -> DynamoRequestStore:
        """The store for a consumer's reads inside its claimed effect: one short attempt."""
        return DynamoRequestStore(client("dynamodb", "lookup"), self.settings.table_name)

    @functools.cached_property
    def bus(self) -> EventBridgePublisher:
        return EventBridgePublisher(
            client("events"), self.settings.event_bus_name, clock=now, reserve=PUBLISH_RESERVE
        )

    @functools.cached_property
    def directory(self) -> S3Directory:
        from hotline_core.adapters.directory_source import S3Directory  # only call_request

        return S3Directory(
            client("s3"), self.settings.directory_bucket, self.settings.directory_key
        )

    @functools.cached_property
    def timer(self) -> SchedulerAnswerTimer:
        from hotline_core.adapters.timer import SchedulerAnswerTimer

        s = self.settings
        return SchedulerAnswerTimer(
            client("scheduler"),
            group=s.schedule_group,
            target_arn=s.timer_target_arn,
            role_arn=s.scheduler_role_arn,
            dead_letter_arn=s.timer_dead_letter_arn or None,
            retry=Retrier(
                SCHEDULER_RETRIES, retry_if=transient_or_unanswered, reserve=RELEASE_RESERVE
            ),
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
        return MeteredSms(RetryingSms(provider, SMS_RETRIES, reserve=RELEASE_RESERVE), count=count)

    @functools.cached_property
    def once_only(self) -> OnceOnly:
        return OnceOnly(
            client("dynamodb", "claims"),
            self.settings.idempotency_table_name,
            clock=now,
            # A claim attempt leaves time to release it; a release leaves time to finish.
            claim_retry=Retrier(
                CLAIM_RETRIES, retry_if=transient_or_unanswered, reserve=RELEASE_RESERVE
            ),
            release_retry=Retrier(
                CLAIM_RETRIES, retry_if=transient_or_unanswered, reserve=FINISH_SECONDS
            ),
        )

    @functools.cached_property
    def once_only_sms(self) -> OnceOnlySms:
        return OnceOnlySms(self.sms, self.once_only)


def validation_problems(exc: ValidationError) -> list[str]:
    """What was wrong, as field paths and messages: never an input value (it may be a phone
    number), and not the name of an unexpected field either (that is input too)."""
    problems = []
    for error in exc.errors():
        path = [str(part) for part in error["loc"]]
        if error["type"] == "extra_forbidden" and path:
            path[-1] = "<unexpected field>"
        problems.append(f"{'.'.join(path) or '<input>'}: {error['msg']}")
    return problems


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
        problems = validation_problems(exc) if isinstance(exc, ValidationError) else [str(exc)]
        logger.error("malformed event rejected", models=sorted(by_type), problems=problems)
        raise
    return outer, inner.data


Consumer = Callable[[DataT, Deps], None]


def invocation_deadline(context: LambdaContext) -> AbstractContextManager[None]:
    """Within this block, retried AWS calls start no attempt that might outlast the
    invocation (leaving each retrier's reserve): a producer ends with time to undo or answer."""
    return deadline(_seconds_left(context))


def _seconds_left(context: LambdaContext) -> Callable[[], float] | None:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    return lambda: float(remaining()) / 1000


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
            with invocation_deadline(context):
                fn(data, deps)

        return handler

    return wrap


__all__ = [
    "BY_DETAIL_TYPE",
    "Deps",
    "consumer",
    "invocation_deadline",
    "logger",
    "metrics",
    "now",
    "parse_event",
    "validation_problems",
]
