"""On `CallRequested`: start the one-shot answer timer, once per request. The schedule is named
after the request, so a concurrent duplicate finds it there; the claim also stops a duplicate
that arrives after the schedule fired or was cancelled from starting a second timer."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from hotline_core.clock import now
from hotline_core.events import CallRequested
from hotline_core.runtime.consumer import consumer
from hotline_core.runtime.deps import handler_deps
from hotline_core.runtime.observability import logger, metrics
from hotline_core.time_out import start_timer

deps = handler_deps(
    needs=("SCHEDULE_GROUP", "TIMER_TARGET_ARN", "SCHEDULER_ROLE_ARN", "IDEMPOTENCY_TABLE_NAME")
)


@consumer(CallRequested, does="start the answer timer", deps=deps)
def handler(event: CallRequested) -> None:
    once = deps().once_only.do(
        f"timer#{event.request_id}", lambda: start_timer(event, deps().timer, now())
    )
    # Not started: a duplicate delivery (the claim was there) or the schedule already existed.
    started = once.ran and bool(once.value)
    logger.info("answer timer", timer_started=started)
    metrics.add_metric(name="TimersStarted", unit=MetricUnit.Count, value=int(started))
