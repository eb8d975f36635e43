"""The AWS clients the Lambda code makes: one per service and purpose per container, each with
its timeouts and attempts set here (`CLIENT_LIMITS`), never by the environment."""

from __future__ import annotations

import functools
from typing import Any

import botocore.session

from hotline_core.adapters.bus import EVENTS_CLIENT
from hotline_core.adapters.retry import Limits

# Every call a consumer's effect makes is bounded, so that the effect ends (done, or raised
# with its claim released) well before the function's Timeout in template.yaml; a test does
# the arithmetic against the template (tests/integration/test_guarantees.py). The retries
# and reserves that go with these timeouts are in `budgets`.
CLAIMS_CLIENT = Limits(connect=0.5, read=0.5)  # DynamoDB PutItem/DeleteItem: ms when healthy
# A consumer's read of the request, inside its claimed effect: one attempt; a failure raises,
# releases the claim, and Lambda's retry decides again.
LOOKUP_CLIENT = Limits(connect=0.5, read=0.5)
SMS_CLIENT = Limits(connect=0.5, read=2.0)
SCHEDULER_CLIENT = Limits(connect=0.5, read=1.5)
# The producers' store (a Connect flow waits on two of them: within its 8 s, with the
# publish) and the directory (read once per cold start): botocore retries each once.
STORE_CLIENT = Limits(connect=0.5, read=1.0, attempts=2)
DIRECTORY_CLIENT = Limits(connect=1.0, read=2.0, attempts=2)
# The benefits line's PIN key, read once per container on its first PIN (the caller waits).
SECRETS_CLIENT = Limits(connect=0.5, read=1.0, attempts=2)
# LINE: the links table, read by a consumer inside its claimed effect (one short attempt, as
# LOOKUP_CLIENT) and by the webhook; the channel's secret, read once per container on the
# first message to a linked person (a failure sends that message by SMS).
LINE_LINKS_CLIENT = Limits(connect=0.5, read=0.5)
LINE_SECRET_CLIENT = Limits(connect=0.5, read=1.0)
# Every client the Lambda code makes, by (service, purpose): `client()` refuses any other.
CLIENT_LIMITS: dict[tuple[str, str], Limits] = {
    ("events", ""): EVENTS_CLIENT,
    ("dynamodb", ""): STORE_CLIENT,
    ("dynamodb", "claims"): CLAIMS_CLIENT,
    ("dynamodb", "lookup"): LOOKUP_CLIENT,
    ("s3", ""): DIRECTORY_CLIENT,
    ("secretsmanager", ""): SECRETS_CLIENT,
    ("dynamodb", "line"): LINE_LINKS_CLIENT,
    ("secretsmanager", "line"): LINE_SECRET_CLIENT,
    ("sns", ""): SMS_CLIENT,
    ("pinpoint-sms-voice-v2", ""): SMS_CLIENT,
    ("scheduler", ""): SCHEDULER_CLIENT,
}


@functools.cache
def _session() -> Any:
    """One botocore session for all clients (its parsed models, credentials, endpoints), as
    boto3's default session would be."""
    return botocore.session.get_session()


@functools.cache
def client(service: str, purpose: str = "") -> Any:
    """One client per service (and purpose) per container, with its timeouts and attempts
    from `CLIENT_LIMITS`: the same on Lambda, locally and in tests, whatever the environment.

    Made with botocore, not boto3: a boto3 client is this same botocore client, and importing
    boto3 (its resource layer, s3transfer) costs every cold start ~15 ms for nothing here."""
    limits = CLIENT_LIMITS.get((service, purpose))
    if limits is None:
        raise LookupError(f"no limits set for a {service} client ({purpose or 'default'})")
    return _session().create_client(service, config=limits.config())


def forget_clients() -> None:
    """Drop the session and its clients, so those made next take up botocore handlers
    registered since (moto's, a call counter's): the local runtime calls this inside its
    mock."""
    client.cache_clear()
    _session.cache_clear()
