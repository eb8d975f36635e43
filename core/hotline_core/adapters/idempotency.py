"""Sends an SMS at most once per purpose (`invite#<request>`, `outcome#<request>`, …) with the
Powertools idempotency utility. EventBridge delivers at least once and Lambda retries; a
duplicate finds the completed record and sends nothing. A failed send deletes the in-progress
record, so the retry sends."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from hotline_core.ports import SmsSender

# Long enough to outlive every EventBridge retry (24 h) and a DLQ redrive soon after.
RECORD_LIFETIME_SECONDS = 3 * 24 * 3600


class OnceOnlySms:
    def __init__(self, sms: SmsSender, client: DynamoDBClient, table_name: str) -> None:
        # Only the purpose key is hashed: the record holds neither phone number nor text.
        self.config = IdempotencyConfig(
            event_key_jmespath="key",
            expires_after_seconds=RECORD_LIFETIME_SECONDS,
            raise_on_no_idempotency_key=True,
        )
        persistence = DynamoDBPersistenceLayer(
            table_name=table_name, boto3_client=client, static_pk_value=None
        )

        @idempotent_function(  # type: ignore[untyped-decorator]
            data_keyword_argument="message",
            config=self.config,
            persistence_store=persistence,
            key_prefix="sms",
        )
        def _send(message: dict[str, Any]) -> dict[str, bool]:
            sms.send(message["to"], message["body"])
            return {"sent": True}

        self._send = _send

    def send_once(self, key: str, to: str, body: str) -> None:
        self._send(message={"key": key, "to": to, "body": body})
