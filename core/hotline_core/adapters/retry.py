"""Retries an SMS provider's throttling and server errors with exponential backoff and
jitter. What still fails is raised: Lambda retries the invocation, then the event lands in
the consumer's dead-letter queue, which an alarm watches."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from botocore.exceptions import ClientError

from hotline_core.ports import SmsSender

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


class RetryingSms:
    def __init__(
        self,
        sms: SmsSender,
        *,
        attempts: int = 4,
        base_delay: float = 0.2,
        max_delay: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._sms = sms
        self._attempts = attempts
        self._base = base_delay
        self._max = max_delay
        self._sleep = sleep

    def send(self, to: str, body: str) -> None:
        for attempt in range(1, self._attempts + 1):
            try:
                self._sms.send(to, body)
                return
            except ClientError as error:
                if attempt == self._attempts or not retryable(error):
                    raise
                # Full jitter: concurrent consumers do not retry in lockstep.
                ceiling = min(self._max, self._base * 2 ** (attempt - 1))
                self._sleep(random.uniform(0, ceiling))  # noqa: S311 - jitter, not security
