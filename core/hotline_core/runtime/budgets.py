"""How long a side effect may take: each retried call's policy (attempts, pauses, a time
budget), what an attempt must leave of the invocation, and the invocation's deadline that
every retrier respects."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from aws_lambda_powertools.utilities.typing import LambdaContext

from hotline_core.adapters.line_api import ATTEMPT_SECONDS as LINE_ATTEMPT_SECONDS
from hotline_core.adapters.retry import RetryPolicy, deadline
from hotline_core.runtime.clients import CLAIMS_CLIENT, SCHEDULER_CLIENT, SMS_CLIENT

# Each policy's attempt takes at most its client's timeouts (`clients`); a test adds them up
# against each function's Timeout in template.yaml (tests/integration/test_guarantees.py).
CLAIM_RETRIES = RetryPolicy(
    attempts=2,
    attempt_seconds=CLAIMS_CLIENT.attempt_seconds,
    budget_seconds=2.1,
    base_delay=0.05,
    max_delay=0.1,
)
SMS_RETRIES = RetryPolicy(
    attempts=4,
    attempt_seconds=SMS_CLIENT.attempt_seconds,
    budget_seconds=3.5,  # one slow attempt, or a few quickly throttled ones
    base_delay=0.2,
    max_delay=2.0,
)
SCHEDULER_RETRIES = RetryPolicy(
    attempts=3,
    attempt_seconds=SCHEDULER_CLIENT.attempt_seconds,
    budget_seconds=3.0,
    base_delay=0.1,
    max_delay=0.5,
)
# A LINE push: one slow attempt, or a few quickly refused ones (429, 5xx), each with the
# same retry key; what still fails goes by SMS (SMS_RETRIES) under the same claim.
LINE_PUSH_RETRIES = RetryPolicy(
    attempts=3,
    attempt_seconds=LINE_ATTEMPT_SECONDS,
    budget_seconds=3.0,
    base_delay=0.1,
    max_delay=0.5,
)
# The webhook's free reply: a reply token is good once and briefly; LINE waits on the webhook.
LINE_REPLY_RETRIES = RetryPolicy(
    attempts=2,
    attempt_seconds=LINE_ATTEMPT_SECONDS,
    budget_seconds=3.0,
    base_delay=0.1,
    max_delay=0.3,
)
# A producer that cannot publish must have time left to undo its write and answer.
PUBLISH_RESERVE = 1.5
FINISH_SECONDS = 0.5  # after the last call: the log lines and the metrics flush
# What a call inside a claimed effect must leave of the invocation: time to release the claim.
RELEASE_RESERVE = CLAIM_RETRIES.worst_case + FINISH_SECONDS


def invocation_deadline(context: LambdaContext) -> AbstractContextManager[None]:
    """Within this block, retried AWS calls start no attempt that might outlast the
    invocation (leaving each retrier's reserve): a producer ends with time to undo or answer."""
    return deadline(_seconds_left(context))


def _seconds_left(context: LambdaContext) -> Callable[[], float] | None:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    return lambda: float(remaining()) / 1000
