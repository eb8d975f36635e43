"""The wrapper that makes an EventBridge consumer of `fn(data)`: the envelope parsed and typed,
logs keyed by the event, replays kept from texting anyone, the invocation's deadline."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from hotline_core.eventbridge import EventBridgeEvent
from hotline_core.events import Envelope, EventData
from hotline_core.runtime.budgets import invocation_deadline
from hotline_core.runtime.deps import Deps
from hotline_core.runtime.observability import logger, metrics, validation_problems

DataT = TypeVar("DataT", bound=EventData)


def parse_event(event: dict[str, Any], *models: type[DataT]) -> tuple[EventBridgeEvent, DataT]:
    """The EventBridge envelope and the typed payload (the model named by detail-type); a
    malformed event raises with a log line that says what was wrong (field paths only, no
    values: they may be phone numbers)."""
    by_type = {m.detail_type: m for m in models}
    try:
        outer = EventBridgeEvent.model_validate(event)
        model = by_type.get(outer.detail_type)
        if model is None:
            raise ValueError(f"expected one of {sorted(by_type)}, got {outer.detail_type!r}")
        inner = Envelope[model].model_validate(outer.detail)  # type: ignore[valid-type]
    except (ValidationError, ValueError) as exc:
        problems = validation_problems(exc) if isinstance(exc, ValidationError) else [str(exc)]
        logger.error("malformed event rejected", models=sorted(by_type), problems=problems)
        raise
    return outer, inner.data


Consumer = Callable[[DataT], None]


def consumer(
    *models: type[DataT], does: str, deps: Callable[[], Deps]
) -> Callable[[Consumer[DataT]], Callable[[dict[str, Any], LambdaContext], None]]:
    """Turns `fn(data)` into a Lambda handler for EventBridge events of `models`. `deps` is
    the module's `handler_deps(...)` accessor, the one `fn` takes its adapters from: the
    wrapper calls it first, so a function missing a variable fails before parsing anything.

    A replayed event (it carries `replay-name`) never texts anyone or starts a timer unless
    the deployment allows it: the consumer logs what it would have done instead.
    """

    def wrap(fn: Consumer[DataT]) -> Callable[[dict[str, Any], LambdaContext], None]:
        @logger.inject_lambda_context(clear_state=True)
        @metrics.log_metrics
        @functools.wraps(fn)
        def handler(event: dict[str, Any], context: LambdaContext) -> None:
            settings = deps().settings
            outer, data = parse_event(event, *models)
            correlation = getattr(data, "request_id", None) or getattr(data, "member_id", "")
            logger.append_keys(event_id=outer.id, correlation_id=correlation)
            if outer.replay_name and not settings.allow_replay_side_effects:
                logger.info(
                    "replayed event: side effect skipped",
                    replay_name=outer.replay_name,
                    detail_type=outer.detail_type,
                    would_have=does,
                )
                metrics.add_metric(name="ReplaySkipped", unit=MetricUnit.Count, value=1)
                return
            with invocation_deadline(context):
                fn(data)

        return handler

    return wrap
