"""LINE in the local runtime: the fake Messaging API the handlers talk to, the channel secret in
moto's Secrets Manager, and what the control API's LINE routes do (DESIGN.md, "Local runtime
contract": `--line-channel-secret`, `GET /_local/line`, `POST /_local/line/codes`,
`POST /_local/line/send`, and the extensions `GET /_local/line/links`, `POST /_local/line/unlink`).

The runtime posts webhook events to the template's own `/line/webhook` route, signed with the
channel secret as LINE signs them, through its HTTP routing (the real LineWebhookFunction);
the handlers' Messaging API calls reach `FakeLineApi` through
`hotline_core.adapters.line_api.use_transport`."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from hotline_tools.local.line_fake import (
    LOCAL_BOT_USER_ID,
    USER_ID,
    FakeLineApi,
    SpecViolation,
    sign,
    webhook_body,
)

DEFAULT_CHANNEL_SECRET = "local-channel-secret"  # noqa: S105 - the documented local default
LOCAL_ACCESS_TOKEN = "local-channel-access-token"  # noqa: S105 - only the fake accepts it
SECRET_NAME = "hotline-local/line"  # noqa: S105 - the LineSecretName the runtime passes
SECRET_PARAMETER = "LineSecretName"  # noqa: S105 - a parameter name
WEBHOOK_PATH = "/line/webhook"
EVENT_TYPES = ("follow", "unfollow", "message", "postback")
SEND_FIELDS = frozenset({"from", "type", "text", "data"})
MAX_TEXT = 5000  # what LINE lets a user type in one message
MAX_POSTBACK_DATA = 300  # PostbackAction.data in messaging-api.yml
_SECRET = re.compile(r"^\S{1,256}$")


class LineInputError(ValueError):
    """A control-API request about LINE that cannot be carried out."""


class _Http(Protocol):
    def __call__(self, method: str, path: str, *, body: bytes, headers: dict[str, str]) -> Any: ...


def check_channel_secret(value: str) -> str:
    """`--line-channel-secret`: any non-empty text without spaces (LINE's are 32 hex digits)."""
    if not isinstance(value, str) or not _SECRET.match(value):
        raise LineInputError(
            "the LINE channel secret must be 1 to 256 characters with no spaces or line breaks"
        )
    return value


class LocalLine:
    """One runtime's LINE: its fake Messaging API and channel secret."""

    def __init__(
        self,
        channel_secret: str = DEFAULT_CHANNEL_SECRET,
        *,
        clock: Callable[[], datetime],
        fault: Callable[[], int | None] | None = None,
    ) -> None:
        self.channel_secret = check_channel_secret(channel_secret)
        self.api = FakeLineApi(LOCAL_ACCESS_TOKEN, clock=clock, fault=fault)
        self._installed = False

    def secret_string(self) -> str:
        """The secret's JSON, as README tells an operator to store it on AWS."""
        return json.dumps(
            {"channelSecret": self.channel_secret, "channelAccessToken": LOCAL_ACCESS_TOKEN}
        )

    def create_secret(self, secretsmanager: Any) -> None:
        secretsmanager.create_secret(Name=SECRET_NAME, SecretString=self.secret_string())

    def install(self) -> None:
        """Every Messaging API call in this process goes to the fake from now on."""
        from hotline_core.adapters import line_api

        line_api.use_transport(self.api)
        self._installed = True

    def uninstall(self) -> None:
        if self._installed:
            from hotline_core.adapters import line_api

            line_api.use_transport(None)
            self._installed = False

    def listed(self) -> list[dict[str, Any]]:
        return self.api.listed()

    def send(self, data: dict[str, Any], http: _Http) -> dict[str, Any]:
        """`POST /_local/line/send`: the event LINE would post for a user's action, signed and
        posted to the webhook route; the webhook's status and the replies it sent."""
        unknown = sorted(set(data) - SEND_FIELDS)
        if unknown:
            raise LineInputError(f"unknown field(s): {', '.join(unknown)}")
        user, kind = data.get("from"), data.get("type")
        text, postback = data.get("text"), data.get("data")
        if not isinstance(user, str) or not USER_ID.fullmatch(user):
            raise LineInputError('"from" must be a LINE user id: "U" and 32 hex digits')
        if kind not in EVENT_TYPES:
            raise LineInputError(f'"type" must be one of {", ".join(EVENT_TYPES)}')
        if kind == "message" and (not isinstance(text, str) or not 0 < len(text) <= MAX_TEXT):
            raise LineInputError(f'a "message" needs "text": 1 to {MAX_TEXT} characters')
        if kind == "postback" and (
            not isinstance(postback, str) or len(postback) > MAX_POSTBACK_DATA
        ):
            raise LineInputError(
                f'a "postback" needs "data": the tapped button\'s data, at most '
                f"{MAX_POSTBACK_DATA} characters"
            )
        if kind != "message" and text is not None:
            raise LineInputError('"text" goes only with "type": "message"')
        if kind != "postback" and postback is not None:
            raise LineInputError('"data" goes only with "type": "postback"')
        try:
            event = self.api.event(kind, user, text=text, data=postback)
            body = webhook_body(LOCAL_BOT_USER_ID, [event])
        except SpecViolation as exc:  # the checks above should make this unreachable
            raise LineInputError(str(exc)) from exc
        before = len(self.api.sent)
        response = http(
            "POST",
            WEBHOOK_PATH,
            body=body,
            headers={
                "content-type": "application/json; charset=utf-8",
                "user-agent": "LineBotWebhook/2.0",
                "x-line-signature": sign(body, self.channel_secret),
            },
        )
        if response is None:
            raise LineInputError(
                f"the template has no {WEBHOOK_PATH} route: LINE is off in this template"
            )
        replies = [
            item
            for item in self.api.listed()[before:]
            if item["kind"] == "reply" and item["to"] == user
        ]
        return {
            "status": response.status,
            "event": {"type": kind, "webhookEventId": event["webhookEventId"]},
            "replies": replies,
        }
