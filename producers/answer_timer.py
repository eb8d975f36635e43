"""EventBridge Scheduler one-shot target: the answer window is over. `inquiry → refused`
and `TimedOut`; after an accept (or a decline) the conditional write refuses and nothing
happens."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hotline_core.clock import now
from hotline_core.requests import Outcome
from hotline_core.runtime.budgets import invocation_deadline
from hotline_core.runtime.deps import handler_deps
from hotline_core.runtime.observability import logger, metrics, validation_problems
from hotline_core.time_out import time_out

deps = handler_deps()


class TimerInput(BaseModel):
    """The schedule's `Input`, written by the timer adapter."""

    model_config = ConfigDict(extra="forbid")
    request_id: str = Field(min_length=1, max_length=256)
    # Where the request is stored (absent in schedules made before it was carried).
    link_hash: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    adapters = deps()
    try:
        timer = TimerInput.model_validate(event)
    except ValidationError as exc:
        # Paths and messages only: str(exc) quotes the input, which may hold a phone number.
        logger.error("malformed timer input rejected", problems=validation_problems(exc))
        raise
    logger.append_keys(correlation_id=timer.request_id)
    with invocation_deadline(context):
        outcome = time_out(
            request_id=timer.request_id,
            link_hash=timer.link_hash,
            store=adapters.store,
            bus=adapters.bus,
            now=now(),
        )
    if outcome is Outcome.APPLIED:
        # Not "TimedOut": TellCaller counts that one when it tells the caller.
        metrics.add_metric(name="AnswerWindowsClosed", unit=MetricUnit.Count, value=1)
    logger.info("answer window closed", outcome=outcome.value)
    return {"outcome": outcome.value}
