"""On `BenefitRequested`: text the member the campaign URL (plain text, once)."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from hotline_core import benefits
from hotline_core.events import BenefitRequested
from hotline_core.runtime.consumer import consumer
from hotline_core.runtime.deps import handler_deps
from hotline_core.runtime.observability import metrics

deps = handler_deps(needs=("IDEMPOTENCY_TABLE_NAME",))


@consumer(BenefitRequested, does="text the member the campaign URL", deps=deps)
def handler(event: BenefitRequested) -> None:
    sms = deps().once_only_sms.recording()
    benefits.text_member(event, sms)
    if sms.sent:  # not for a duplicate delivery, which sent nothing
        metrics.add_metric(name="BenefitTexts", unit=MetricUnit.Count, value=1)
