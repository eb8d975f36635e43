"""`POST /line/webhook`: what LINE posts when someone adds, blocks or writes to the hotline's
LINE account, or taps one of its buttons.

The `x-line-signature` (base64 HMAC-SHA256 of the raw body, keyed by the channel secret) is
checked before anything else: missing or wrong is a 401 and nothing changes. Without LINE
(no LINE_SECRET_NAME) the route answers 404 and reads no secret. Each event is handled in
`hotline_core.line_chat` and answered with a free reply; an event type not handled here is
ignored. A 200 once every event is handled; a 500 when one could not be (DynamoDB down),
so that LINE, where redelivery is on, posts it again: every handler is idempotent (a code
sent again by the user it linked links them again; a tap again is a repeated answer).

Nothing logged names anyone: no user id, no code, no token, no text.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from hotline_core import line_chat
from hotline_core.adapters.line_api import signature_valid
from hotline_core.clock import now
from hotline_core.line_messages import both_languages
from hotline_core.ports import PublishFailed
from hotline_core.runtime.budgets import invocation_deadline
from hotline_core.runtime.deps import handler_deps
from hotline_core.runtime.observability import count, logger, metrics

deps = handler_deps()
MAX_BODY_BYTES = 256 * 1024
COUNTED = {
    "linked": "LineLinked",
    "unlinked": "LineUnlinked",
    "wrong_code": "LineCodeRefused",
    "too_many_codes": "LineCodeRefused",
    "not_theirs": "LinePostbackRefused",
    "invalid": "LinePostbackRefused",
}


def _respond(status: int, message: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", "Cache-Control": "no-store"},
        "body": json.dumps({"message": message}),
    }


def _raw_body(event: dict[str, Any]) -> bytes | None:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return None
    return str(body).encode("utf-8")


def _header(event: dict[str, Any], name: str) -> str | None:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name:
            return str(value)
    return None


def handle(event: dict[str, Any]) -> tuple[str, dict[str, Any] | None, float | None]:
    """One webhook event: what happened, the reply, and the answer time (a settling tap)."""
    source = event.get("source") or {}
    user_id = source.get("userId")
    if source.get("type") != "user" or not isinstance(user_id, str) or not user_id:
        return "ignored", None, None  # a group or a room: the hotline talks to people only
    kind = event.get("type")
    d = deps()
    handled: line_chat.Handled
    if kind == "follow":
        handled = line_chat.on_follow(user_id, d.line_links)
    elif kind == "unfollow":
        handled = line_chat.on_unfollow(user_id, d.line_links)
    elif kind == "message" and (event.get("message") or {}).get("type") == "text":
        handled = line_chat.on_text(user_id, str(event["message"].get("text", "")), d.line_links)
    elif kind == "postback":
        data = str((event.get("postback") or {}).get("data", ""))
        try:
            handled = line_chat.on_postback(
                user_id, data, links=d.line_links, store=d.store, bus=d.bus, now=now()
            )
        except PublishFailed:
            # Stored, not announced: the next tap announces it (as on the link's page).
            logger.exception("LINE answer stored, announcement failed")
            count("AnswerPageFailures")
            return "retry", both_languages("retry"), None
    else:
        return "ignored", None, None
    return handled.result, handled.reply, handled.answer_seconds


def _reply(token: Any, message: dict[str, Any]) -> None:
    if not isinstance(token, str) or not token:
        return
    try:
        deps().line_reply_api.reply(token, [message])
    except Exception as exc:  # noqa: BLE001 - the event is handled; only the reply is lost
        logger.warning("LINE reply not sent", error=type(exc).__name__, detail=str(exc)[:200])
        count("LineReplyFailed")
    else:
        count("LineReplies")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    with invocation_deadline(context):
        settings = deps().settings
        if not settings.line_on:
            return _respond(404, "Not Found")
        body = _raw_body(event)
        if body is None or len(body) > MAX_BODY_BYTES:
            count("LineWebhookRejected")
            return _respond(401, "Unauthorized")
        secret = deps().line_credentials.channel_secret
        if not signature_valid(body, _header(event, "x-line-signature"), secret):
            logger.warning("LINE webhook refused: bad or missing signature")
            count("LineWebhookRejected")
            return _respond(401, "Unauthorized")
        try:
            payload = json.loads(body)
            events = payload["events"]
            if not isinstance(events, list):
                raise TypeError("events is not a list")
        except (ValueError, KeyError, TypeError):
            logger.warning("LINE webhook: signed, but not a webhook body")
            return _respond(400, "Bad Request")
        failed = 0
        for item in events:
            if not isinstance(item, dict):
                continue
            try:
                result, reply, seconds = handle(item)
            except Exception:  # noqa: BLE001 - the others still run; LINE may redeliver
                logger.exception("LINE event not handled", event_type=item.get("type"))
                count("LineEventFailures")
                failed += 1
                continue
            logger.info("LINE event", event_type=item.get("type"), result=result)
            if result in ("accepted", "accepted_late", "declined"):
                count("Answers")
                count("LineAnswers")
                if seconds is not None:
                    metrics.add_metric(
                        name="AnswerTimeSeconds", unit=MetricUnit.Seconds, value=seconds
                    )
            elif result in COUNTED:
                count(COUNTED[result])
            if reply is not None:
                _reply(item.get("replyToken"), reply)
        if failed:
            return _respond(500, "Internal Server Error")
        return _respond(200, "OK")
