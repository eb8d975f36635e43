"""On `CallRequested`: text the receiver the link (once, whatever the deliveries)."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from hotline_core import service
from hotline_core.events import CallRequested
from hotline_core.lambda_support import Deps, consumer, metrics


@consumer(CallRequested, does="text the receiver the link", needs=("IDEMPOTENCY_TABLE_NAME",))
def handler(event: CallRequested, deps: Deps) -> None:
    sms = deps.once_only_sms.recording()
    service.invite_receiver(event, sms)
    if sms.sent:  # not for a duplicate delivery, which sent nothing
        metrics.add_metric(name="Invitations", unit=MetricUnit.Count, value=1)
