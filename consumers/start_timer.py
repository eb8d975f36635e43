"""On `CallRequested`: start the one-shot answer timer (named after the request, so a
duplicate delivery finds it already there)."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from hotline_core import service
from hotline_core.events import CallRequested
from hotline_core.lambda_support import Deps, consumer, logger, metrics

NEEDS = ("SCHEDULE_GROUP", "TIMER_TARGET_ARN", "SCHEDULER_ROLE_ARN")


@consumer(CallRequested, does="start the answer timer", needs=NEEDS)
def handler(event: CallRequested, deps: Deps) -> None:
    started = service.start_timer(event, deps.timer)
    logger.info("answer timer", timer_started=started)
    metrics.add_metric(name="TimersStarted", unit=MetricUnit.Count, value=int(started))
