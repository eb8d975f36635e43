"""Amazon Connect (second line) → `getMemberId` answers `{"memberId": id or "-1"}` (and
`"withheld": "true"` with the -1 when the caller's number is withheld: nothing is looked up);
`sendSms` with `pinCode` answers `{"result": "Success" or "Fail"}` and, on success, publishes
`BenefitRequested`. A flow that passes `pinTries` gets it back counted (and `askAgain`), so
it loops over one PIN prompt. Any other `cmd` raises, so the flow takes its error branch."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from hotline_core import benefits
from hotline_core.benefits import PinOutcome
from hotline_core.clock import now
from hotline_core.connect import ConnectContactEvent
from hotline_core.phone import mask_phone
from hotline_core.runtime.budgets import invocation_deadline
from hotline_core.runtime.deps import handler_deps
from hotline_core.runtime.observability import logger, metrics

deps = handler_deps(needs=("MEMBERS_TABLE_NAME", "BENEFITS_TABLE_NAME", "ATTEMPTS_TABLE_NAME"))
COMMANDS = ("getMemberId", "sendSms")


class UnknownCommand(ValueError):
    """The flow sent a `cmd` this function does not implement."""


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    adapters = deps()
    contact = ConnectContactEvent.parse(event)
    if contact.warm_up:
        # The flow's ASYNCHRONOUS first action, while the greeting plays: the clients (and
        # the PIN key, one Secrets Manager read per container) are ready for the caller's
        # synchronous invocations. Nothing is looked up or counted as a lookup.
        logger.append_keys(contact_id=contact.contact_id)
        adapters.warm("members", "attempt_guard", "benefits", "bus", "pin_key")
        metrics.add_metric(name="WarmUps", unit=MetricUnit.Count, value=1)
        return {"warmed": "true"}
    cmd = contact.parameters.get("cmd", "")
    logger.append_keys(contact_id=contact.contact_id, caller=mask_phone(contact.caller), cmd=cmd)
    tries = benefits.pin_tries(contact.parameters)
    if cmd == "getMemberId":
        answer = benefits.member_answer(contact.caller, adapters.members, tries)
        metrics.add_metric(name="MemberLookups", unit=MetricUnit.Count, value=1)
        logger.info(
            "member looked up",
            member=answer["memberId"] != benefits.NOT_A_MEMBER,
            withheld=contact.withheld,
        )
        return answer
    if cmd == "sendSms":
        # The PIN itself is never logged, not even its length.
        with invocation_deadline(context):
            result = benefits.request_benefit(
                phone=contact.caller,
                pin=contact.parameters.get("pinCode", ""),
                contact_id=contact.contact_id,
                now=now(),
                members=adapters.members,
                benefits=adapters.benefits,
                guard=adapters.attempt_guard,
                bus=adapters.bus,
                tries=tries,
            )
        _count(result.outcome, result.counts_as_failure)
        logger.info(
            "PIN checked",
            outcome=result.outcome.value,
            member_id=result.member_id,
            tries=result.tries,
        )
        return result.as_connect_map()
    logger.error("unknown command", known=list(COMMANDS))
    metrics.add_metric(name="UnknownCommands", unit=MetricUnit.Count, value=1)
    raise UnknownCommand(f"unknown cmd {cmd!r}: expected one of {', '.join(COMMANDS)}")


def _count(outcome: PinOutcome, failed: bool) -> None:
    if outcome is PinOutcome.GRANTED:
        metrics.add_metric(name="BenefitRequests", unit=MetricUnit.Count, value=1)
    if failed:
        metrics.add_metric(name="PinFailures", unit=MetricUnit.Count, value=1)
    if outcome is PinOutcome.WRONG_AND_LOCKED:
        metrics.add_metric(name="Lockouts", unit=MetricUnit.Count, value=1)
    if outcome is PinOutcome.LOCKED:
        metrics.add_metric(name="LockedAttempts", unit=MetricUnit.Count, value=1)
