"""One SMS port, two providers: SNS `Publish(PhoneNumber=…)` (the default) and AWS End User
Messaging SMS (`pinpoint-sms-voice-v2 SendTextMessage`), chosen by configuration."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_pinpoint_sms_voice_v2 import PinpointSMSVoiceV2Client
    from mypy_boto3_sns import SNSClient

    from hotline_core.ports import SmsSender


class MeteredSms:
    """Any SMS sender, counted: `count("SmsSent")` after a send, `count("SmsFailed")` when the
    provider raises (the error still propagates, so retries stay where they were)."""

    def __init__(self, sender: SmsSender, count: Callable[[str], None]) -> None:
        self._sender = sender
        self._count = count

    def send(self, to: str, body: str) -> None:
        try:
            self._sender.send(to, body)
        except Exception:
            self._count("SmsFailed")
            raise
        self._count("SmsSent")


class SnsSms:
    def __init__(self, client: SNSClient, *, sender_id: str | None = None) -> None:
        self._sns = client
        self._attributes: dict[str, Any] = {
            "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}
        }
        if sender_id:
            self._attributes["AWS.SNS.SMS.SenderID"] = {
                "DataType": "String",
                "StringValue": sender_id,
            }

    def send(self, to: str, body: str) -> None:
        self._sns.publish(PhoneNumber=to, Message=body, MessageAttributes=self._attributes)


class EndUserMessagingSms:
    def __init__(
        self,
        client: PinpointSMSVoiceV2Client,
        *,
        origination_identity: str | None = None,
        configuration_set: str | None = None,
    ) -> None:
        self._sms = client
        self._origin = origination_identity
        self._config_set = configuration_set

    def send(self, to: str, body: str) -> None:
        request: dict[str, Any] = {
            "DestinationPhoneNumber": to,
            "MessageBody": body,
            "MessageType": "TRANSACTIONAL",
        }
        if self._origin:
            request["OriginationIdentity"] = self._origin
        if self._config_set:
            request["ConfigurationSetName"] = self._config_set
        self._sms.send_text_message(**request)
