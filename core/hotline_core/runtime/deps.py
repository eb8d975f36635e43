"""The adapters a Lambda function uses, each built on first use from the function's settings
and the shared clients, and kept for the container's life; `handler_deps`, the one way a
handler keeps them."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

from hotline_core import clock
from hotline_core.adapters.bus import EventBridgePublisher
from hotline_core.adapters.idempotency import OnceOnly, OnceOnlyMessages
from hotline_core.adapters.retry import Retrier, RetryingSms, transient_or_unanswered
from hotline_core.adapters.sms import EndUserMessagingSms, MeteredSms, SnsSms
from hotline_core.adapters.store import DynamoRequestStore
from hotline_core.runtime.budgets import (
    CLAIM_RETRIES,
    FINISH_SECONDS,
    LINE_PUSH_RETRIES,
    LINE_REPLY_RETRIES,
    PUBLISH_RESERVE,
    RELEASE_RESERVE,
    SCHEDULER_RETRIES,
    SMS_RETRIES,
)
from hotline_core.runtime.clients import client
from hotline_core.runtime.observability import count
from hotline_core.settings import Settings

if TYPE_CHECKING:
    from hotline_core.adapters.benefits_store import (
        DynamoAttemptGuard,
        DynamoBenefits,
        DynamoMembers,
    )
    from hotline_core.adapters.directory_source import S3Directory
    from hotline_core.adapters.line_api import LineApi, LineCredentials
    from hotline_core.adapters.line_links import LineLinks
    from hotline_core.adapters.timer import SchedulerAnswerTimer
    from hotline_core.ports import SmsSender


def handler_deps(*, needs: tuple[str, ...] = ()) -> Callable[[], Deps]:
    """The one way a Lambda entry point keeps its dependencies. Once, at module level:

        deps = handler_deps(needs=("IDEMPOTENCY_TABLE_NAME",))

    then `deps()` wherever the handler needs an adapter (a consumer passes `deps` to
    `@consumer`, which calls it too). The first call, in the container's first invocation,
    reads the settings from the environment (a variable in `needs` that is missing or empty
    is an error naming it) and makes the `Deps`; every later call returns that same `Deps`,
    whose adapters are each built on first use. The cache belongs to the accessor, so each
    loaded copy of a handler module has its own (the local runtime loads one per stack)."""

    @functools.cache
    def deps() -> Deps:
        return Deps(Settings.from_env(needs=needs))

    return deps


class Deps:
    """Adapters for one function, each built on first use and kept for the container's life."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def warm(self, *adapters: str) -> None:
        """Build these adapters now: creating their clients is most of a cold start's first
        invocation. A Connect flow's ASYNCHRONOUS warm-up does this while the greeting
        plays; a failure here is only logged (the real invocation builds them again)."""
        from hotline_core.runtime.observability import logger

        for name in adapters:
            try:
                getattr(self, name)
            except Exception as exc:  # noqa: BLE001 - a warm-up must never fail the call
                logger.warning("warm-up could not build an adapter", adapter=name, error=str(exc))

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
            client("events"), self.settings.event_bus_name, clock=clock.now, reserve=PUBLISH_RESERVE
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
            clock=clock.now,
            # A claim attempt leaves time to release it; a release leaves time to finish.
            claim_retry=Retrier(
                CLAIM_RETRIES, retry_if=transient_or_unanswered, reserve=RELEASE_RESERVE
            ),
            release_retry=Retrier(
                CLAIM_RETRIES, retry_if=transient_or_unanswered, reserve=FINISH_SECONDS
            ),
        )

    @functools.cached_property
    def once_only_sms(self) -> OnceOnlyMessages:
        """Texts by SMS only (the benefits line's campaign page)."""
        return OnceOnlyMessages(self.sms, self.once_only)

    @functools.cached_property
    def once_only_messages(self) -> OnceOnlyMessages:
        """The hotline's messages: LINE first for a linked person where LINE is on
        (LINE_SECRET_NAME), SMS for everyone else and whenever LINE fails."""
        if not self.settings.line_on:
            return self.once_only_sms
        from hotline_core.adapters.channels import LineFirst

        line = LineFirst(
            lambda: self.line_links, lambda: self.line_push_api, count=count, failed=_push_failed
        )
        return OnceOnlyMessages(self.sms, self.once_only, line=line, count=count)

    # LINE, only where LINE_SECRET_NAME is set: its modules are imported on first use.
    @functools.cached_property
    def line_links(self) -> LineLinks:
        from hotline_core.adapters.line_links import LineLinks

        return LineLinks(client("dynamodb", "line"), self.settings.line_table_name, clock=clock.now)

    @functools.cached_property
    def line_credentials(self) -> LineCredentials:
        """The channel's secret and access token: one Secrets Manager read per container."""
        from hotline_core.adapters.line_api import line_credentials_from_secret

        if not self.settings.line_secret_name:
            raise RuntimeError("LINE is off: no LINE_SECRET_NAME")
        return line_credentials_from_secret(
            client("secretsmanager", "line"), self.settings.line_secret_name
        )

    @functools.cached_property
    def line_push_api(self) -> LineApi:
        """For pushes inside a claimed effect: each attempt leaves time to release the claim."""
        from hotline_core.adapters import line_api

        retry = Retrier(LINE_PUSH_RETRIES, retry_if=line_api.retryable, reserve=RELEASE_RESERVE)
        return line_api.LineApi(lambda: self.line_credentials.channel_access_token, retry=retry)

    @functools.cached_property
    def line_reply_api(self) -> LineApi:
        """For the webhook's replies: each attempt leaves time to answer LINE."""
        from hotline_core.adapters import line_api

        retry = Retrier(LINE_REPLY_RETRIES, retry_if=line_api.retryable, reserve=FINISH_SECONDS)
        return line_api.LineApi(lambda: self.line_credentials.channel_access_token, retry=retry)

    # The PIN lockout's counters and the benefits line's tables, each only where a function
    # uses them: their module is imported on first use.
    @functools.cached_property
    def attempt_guard(self) -> DynamoAttemptGuard | None:
        """The PIN lockout's counters; None for a function without ATTEMPTS_TABLE_NAME."""
        from hotline_core.adapters.benefits_store import DynamoAttemptGuard

        name = self.settings.attempts_table_name
        return DynamoAttemptGuard(client("dynamodb"), name) if name else None

    @functools.cached_property
    def members(self) -> DynamoMembers:
        from hotline_core.adapters.benefits_store import DynamoMembers

        return DynamoMembers(client("dynamodb"), self.settings.members_table_name)

    @functools.cached_property
    def benefits(self) -> DynamoBenefits:
        from hotline_core.adapters.benefits_store import DynamoBenefits

        return DynamoBenefits(
            client("dynamodb"), self.settings.benefits_table_name, key=lambda: self.pin_key
        )

    @functools.cached_property
    def pin_key(self) -> bytes:
        """The stack's PIN key: one Secrets Manager read per container, on the first PIN."""
        from hotline_core.adapters.benefits_store import pin_key_from_secret

        if not self.settings.pin_key_secret:
            raise RuntimeError("the benefits line needs PIN_KEY_SECRET (the PIN key's secret)")
        return pin_key_from_secret(client("secretsmanager"), self.settings.pin_key_secret)


def _push_failed(exc: BaseException) -> None:
    """Why a LINE push failed (its status and LINE's message; never the user or the text)."""
    from hotline_core.runtime.observability import logger

    logger.warning("LINE push failed: sending SMS", error=type(exc).__name__, detail=str(exc)[:200])
