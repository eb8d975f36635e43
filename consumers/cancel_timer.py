"""On `Accepted`, `Declined` or `MutualCallMatched`: cancel the answer timer; it may already
have fired, which is fine. A timer that still fires after an answer re-announces it (see
answer_timer)."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from hotline_core.events import Accepted, Declined, MutualCallMatched
from hotline_core.runtime.consumer import consumer
from hotline_core.runtime.deps import handler_deps
from hotline_core.runtime.observability import logger, metrics
from hotline_core.time_out import cancel_timer

deps = handler_deps(needs=("SCHEDULE_GROUP",))


@consumer(Accepted, Declined, MutualCallMatched, does="cancel the answer timer", deps=deps)
def handler(event: Accepted | Declined | MutualCallMatched) -> None:
    cancelled = cancel_timer(event, deps().timer)
    logger.info("answer timer", timer_cancelled=cancelled)
    metrics.add_metric(name="TimersCancelled", unit=MetricUnit.Count, value=int(cancelled))
