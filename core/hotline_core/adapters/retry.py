"""Bounded retries for the calls a consumer's side effects make, so that every effect ends
(done, or raised so its claim is released) well before the function's timeout.

Each attempt's worst case is known: botocore makes one attempt per call (its own retries are
off, see `runtime.clients`), bounded by the client's connect + read timeouts. Pauses are
jittered exponential backoff. No attempt starts that could end after the policy's time budget,
or that could leave less than `reserve` seconds of the Lambda invocation (the time the caller
needs afterwards, e.g. to release a claim). What still fails is raised: Lambda retries the
invocation, then the event lands in the consumer's dead-letter queue, which an alarm watches.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from hotline_core.ports import SmsSender

T = TypeVar("T")

RETRYABLE = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "InternalErrorException",
    "InternalServerException",
    "InternalFailure",
    "ServiceUnavailable",
    "ServiceUnavailableException",
}


def retryable(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return code in RETRYABLE or status == 429 or status >= 500


def transient(error: BaseException) -> bool:
    """Worth another attempt, and the failed one did nothing: throttling, a server error, or
    no connection made (the request never left)."""
    if isinstance(error, ClientError):
        return retryable(error)
    return isinstance(error, ConnectTimeoutError | EndpointConnectionError)


def unanswered(error: BaseException) -> bool:
    """The request was sent but no answer came: it may or may not have taken effect."""
    return isinstance(error, ReadTimeoutError | ConnectionClosedError)


def transient_or_unanswered(error: BaseException) -> bool:
    """For idempotent calls only: also a request that was sent but not answered in time."""
    return transient(error) or unanswered(error)


@dataclass(frozen=True)
class Limits:
    """One AWS client's timeouts and botocore attempts, set in code (never left to the
    environment, which differs between Lambda and a laptop). Side-effect clients make a
    single attempt per call: botocore's own backoff honours a server's `x-amz-retry-after` (up
    to 5 s more) and differs between botocore versions, so it cannot be bounded from here;
    `Retrier` owns their retries and timing instead. A client nothing retries for (the
    producers' store, the directory) lets botocore retry once (`attempts` 2, standard mode:
    a first backoff of at most `BOTOCORE_FIRST_BACKOFF`)."""

    connect: float
    read: float
    attempts: int = 1

    @property
    def attempt_seconds(self) -> float:
        return self.connect + self.read

    @property
    def worst_case(self) -> float:
        """The longest one call can take, its botocore retries included."""
        return self.attempts * self.attempt_seconds + (self.attempts - 1) * BOTOCORE_BACKOFF

    def config(self) -> Config:
        return Config(
            connect_timeout=self.connect,
            read_timeout=self.read,
            retries={"mode": "standard", "total_max_attempts": self.attempts},
        )


# botocore's standard mode waits random(0, 1) × 2^(attempt - 1) seconds, capped at 20: at
# most 1 s before its second attempt (botocore/retries/standard.py, ExponentialBackoff).
BOTOCORE_BACKOFF = 1.0


# Seconds left in the current Lambda invocation; set by the consumer wrapper per invocation
# (a context variable, so concurrent invocations in one process, as in tests, keep theirs).
_time_left: ContextVar[Callable[[], float] | None] = ContextVar("hotline_time_left", default=None)


@contextmanager
def deadline(time_left: Callable[[], float] | None) -> Iterator[None]:
    """Within this block, `Retrier`s start no attempt that might outlast `time_left()`."""
    token = _time_left.set(time_left)
    try:
        yield
    finally:
        _time_left.reset(token)


def time_left() -> float | None:
    current = _time_left.get()
    return None if current is None else current()


class OutOfTime(TimeoutError):
    """An attempt was not started: it might not end before the invocation's deadline."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int
    attempt_seconds: float  # worst case of one attempt: the client's connect + read timeouts
    budget_seconds: float  # no attempt starts that could end later than this after the first
    base_delay: float = 0.05
    max_delay: float = 0.5

    def __post_init__(self) -> None:
        if self.budget_seconds < self.attempt_seconds:
            raise ValueError("the budget must fit at least one attempt")

    @property
    def worst_case(self) -> float:
        """The longest a call under this policy can take, pauses included."""
        unbounded = self.attempts * self.attempt_seconds + (self.attempts - 1) * self.max_delay
        return min(self.budget_seconds, unbounded)

    def ceiling(self, attempt: int) -> float:
        """The longest pause after failed attempt number `attempt` (1-based)."""
        return min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))


class Retrier:
    def __init__(
        self,
        policy: RetryPolicy,
        *,
        retry_if: Callable[[BaseException], bool] = transient,
        reserve: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        remaining: Callable[[], float | None] = time_left,
    ) -> None:
        self.policy = policy
        self.reserve = reserve
        self._retry_if = retry_if
        self._sleep = sleep
        self._clock = clock
        self._remaining = remaining

    def __call__(self, call: Callable[[], T]) -> T:
        policy = self.policy
        started = self._clock()
        delay = 0.0
        last: Exception | None = None
        for attempt in range(1, policy.attempts + 1):
            left = self._remaining()
            if left is not None and left - delay - policy.attempt_seconds < self.reserve:
                if last is not None:
                    raise last
                raise OutOfTime(
                    f"{left:.1f} s left: too little for an attempt of up to "
                    f"{policy.attempt_seconds:.1f} s and {self.reserve:.1f} s after it"
                )
            if delay:
                self._sleep(delay)
            try:
                return call()
            except Exception as error:
                if attempt == policy.attempts or not self._retry_if(error):
                    raise
                last = error
            # Full jitter: concurrent consumers do not retry in lockstep.
            delay = random.uniform(0, policy.ceiling(attempt))  # noqa: S311 - not security
            if self._clock() - started + delay + policy.attempt_seconds > policy.budget_seconds:
                raise last
        raise AssertionError("unreachable")  # pragma: no cover


class RetryingSms:
    """An SMS sender whose throttling, server errors and refused connections are retried
    under `policy`. A send that timed out waiting for the answer is not retried here: the
    text may have gone out (the consumer's retry, a minute later, may send it again)."""

    def __init__(
        self,
        sms: SmsSender,
        policy: RetryPolicy,
        *,
        reserve: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        remaining: Callable[[], float | None] = time_left,
    ) -> None:
        self._sms = sms
        self._retry = Retrier(
            policy,
            retry_if=transient,
            reserve=reserve,
            sleep=sleep,
            clock=clock,
            remaining=remaining,
        )

    def send(self, to: str, body: str) -> None:
        self._retry(lambda: self._sms.send(to, body))
