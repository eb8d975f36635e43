"""On `CallRequested`: text the receiver the link (once, whatever the deliveries), while the
request still waits for them and they are not in their quiet hours."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from hotline_core.clock import now
from hotline_core.events import CallRequested
from hotline_core.runtime.consumer import consumer
from hotline_core.runtime.deps import handler_deps
from hotline_core.runtime.observability import logger, metrics
from hotline_core.telling import invite_receiver

deps = handler_deps(needs=("IDEMPOTENCY_TABLE_NAME",))


@consumer(CallRequested, does="text the receiver the link", deps=deps)
def handler(event: CallRequested) -> None:
    sms = deps().once_only_messages.recording()
    skipped = invite_receiver(event, sms, deps().lookup, now())
    if skipped is not None:
        # Delivered after the request was answered or its window closed (a retry, a late
        # or re-driven delivery), or inside the receiver's quiet hours: nothing is sent.
        logger.info("invitation not sent", because=skipped)
        metrics.add_metric(name="InvitationsSkipped", unit=MetricUnit.Count, value=1)
    if sms.sent:  # not for a duplicate delivery, which sent nothing
        metrics.add_metric(name="Invitations", unit=MetricUnit.Count, value=1)
