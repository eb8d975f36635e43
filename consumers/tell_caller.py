"""On `Accepted`, `Declined` or `TimedOut`: text the caller how it went (once per outcome),
never "can't talk" after a late yes told them they can. On `MutualCallMatched`: text both
people the other's number (once each)."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from hotline_core.events import Accepted, Declined, MutualCallMatched, TimedOut
from hotline_core.runtime.consumer import consumer
from hotline_core.runtime.deps import handler_deps
from hotline_core.runtime.observability import metrics
from hotline_core.telling import tell_caller

deps = handler_deps(needs=("IDEMPOTENCY_TABLE_NAME",))


@consumer(
    Accepted,
    Declined,
    TimedOut,
    MutualCallMatched,
    does="text the caller the outcome",
    deps=deps,
)
def handler(event: Accepted | Declined | TimedOut | MutualCallMatched) -> None:
    sms = deps().once_only_messages.recording()
    tell_caller(event, sms, deps().lookup)
    if not sms.sent:
        return  # a duplicate delivery (or an outcome already told): nothing sent, nothing counted
    late = isinstance(event, Accepted) and event.late
    metrics.add_metric(name="CallerTold", unit=MetricUnit.Count, value=1)
    metrics.add_metric(
        name=event.detail_type + ("Late" if late else ""), unit=MetricUnit.Count, value=1
    )
