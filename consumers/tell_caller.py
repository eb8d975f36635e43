"""On `Accepted`, `Declined` or `TimedOut`: text the caller how it went (once per outcome)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from hotline_core import service
from hotline_core.events import Accepted, Declined, TimedOut
from hotline_core.lambda_support import Deps, consumer, metrics

NEEDS = ("IDEMPOTENCY_TABLE_NAME",)


def _tell(event: Accepted | Declined | TimedOut, deps: Deps) -> None:
    service.tell_caller(event, deps.once_only_sms)
    metric = type(event).__name__ + ("Late" if getattr(event, "late", False) else "")
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)


_by_type = {
    model.detail_type: consumer(model, does="text the caller the outcome", needs=NEEDS)(_tell)
    for model in (Accepted, Declined, TimedOut)
}


def handler(event: dict[str, Any], context: LambdaContext) -> None:
    # One function, three event types: the rule matches all three; each has its own model.
    detail_type = event.get("detail-type")
    if detail_type not in _by_type:
        raise ValueError(f"tell_caller does not handle detail-type {detail_type!r}")
    _by_type[str(detail_type)](event, context)
