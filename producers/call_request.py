"""Amazon Connect → identify the caller, create the request (`inquiry`), publish
`CallRequested`; answers the flow with a flat string map. One invocation for two people;
more when the flow must ask for a PIN or a menu choice (`step`), each carrying the answer
back in `Details.Parameters`. The PIN is never logged."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from hotline_core.call import CallInput, request_call
from hotline_core.clock import now
from hotline_core.connect import ConnectContactEvent
from hotline_core.directory import DirectoryError
from hotline_core.phone import mask_phone
from hotline_core.runtime.budgets import invocation_deadline
from hotline_core.runtime.deps import handler_deps
from hotline_core.runtime.observability import logger, metrics

deps = handler_deps(needs=("DIRECTORY_BUCKET", "LINK_BASE_URL"))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    adapters = deps()
    contact = ConnectContactEvent.parse(event)
    logger.append_keys(contact_id=contact.contact_id, caller=mask_phone(contact.caller))
    if contact.warm_up:
        return _warm_up()
    try:
        directory = adapters.directory.load()
    except DirectoryError as exc:
        # The flow's error branch apologises to the caller; the operator reads this line.
        logger.error("directory unusable", problem=str(exc))
        raise
    with invocation_deadline(context):
        answer = request_call(
            directory=directory,
            caller_phone=contact.caller,
            hotline_number=contact.dialled,
            request_id=contact.contact_id,
            now=now(),
            answer_window=timedelta(seconds=adapters.settings.answer_window_seconds),
            link_base_url=adapters.settings.link_base_url,
            store=adapters.store,
            bus=adapters.bus,
            call=CallInput.from_parameters(contact.parameters),
            guard=adapters.attempt_guard,
        )
    first = not contact.parameters.get("asked")
    metrics.add_metric(name="Calls" if first else "FollowUpSteps", unit=MetricUnit.Count, value=1)
    if not answer.registered:
        metrics.add_metric(name="UnknownCallers", unit=MetricUnit.Count, value=1)
    for name in _METRICS.get(answer.outcome, ()):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    logger.info(
        "call handled",
        registered=answer.registered,
        request_created=answer.created,
        step=answer.step,
        outcome=answer.outcome,
    )
    return answer.as_connect_map()


def _warm_up() -> dict[str, str]:
    """The flow's ASYNCHRONOUS first action, while the greeting plays: make the clients the
    call will use and read the directory (kept a minute), so the caller's synchronous
    invocation meets a warm container. Nothing is stored, published or counted as a call."""
    adapters = deps()
    adapters.warm("store", "bus", "attempt_guard", "directory")
    try:
        adapters.directory.load()
    except Exception as exc:  # noqa: BLE001 - the call itself reads it again and says so
        logger.warning("warm-up could not read the directory", problem=str(exc))
    metrics.add_metric(name="WarmUps", unit=MetricUnit.Count, value=1)
    return {"warmed": "true"}


# As on the benefits line: every PIN that unlocked nothing is a failure, the one that locks
# the phone is also a lockout, and what a locked phone tries is a locked attempt.
_METRICS: dict[str, tuple[str, ...]] = {
    "repeat": ("RepeatCalls",),
    "mutual": ("MutualCalls",),
    "quiet": ("QuietHoursCalls",),
    "pin_wrong": ("HotlinePinFailures",),
    "pin_lockout": ("HotlinePinFailures", "HotlineLockouts"),
    "pin_locked": ("HotlineLockedAttempts",),
    "no_choice": ("MenuAbandoned",),
    "no_circle": ("UnknownHotlineNumbers",),
}
