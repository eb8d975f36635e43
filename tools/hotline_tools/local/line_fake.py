"""A fake LINE Messaging API, checked against LINE's own published contract.

`FakeLineApi` is a transport for `hotline_core.adapters.line_api.use_transport`: a callable
`(method, url, *, headers, body, timeout) -> (status, headers, body)` that answers the two calls
the hotline makes (`POST /v2/bot/message/push`, `POST /v2/bot/message/reply`) as LINE does:

- the headers: `Authorization: Bearer <channel access token>` (anything else: 401),
  `Content-Type: application/json`, and on a push an optional `X-Line-Retry-Key` that must be a
  UUID (a bad one: 400; on a reply, where LINE takes no retry key: 400);
- the body, validated against the `PushMessageRequest` / `ReplyMessageRequest` schemas of
  `line_openapi/messaging-api.yml` (vendored from github.com/line/line-openapi, see SOURCE.md),
  the OpenAPI discriminators (`Message.type`, `Template.type`, `Action.type`, flex components...)
  resolved here, plus the few size limits the Messaging API reference documents and the
  OpenAPI description leaves out (`DOCUMENTED_LIMITS`): a body LINE would refuse is a 400 with
  LINE's error shape (`message`, `details[{message, property}]`);
- 200 with `sentMessages`; a push whose retry key was already accepted is a 409 carrying
  `x-line-accepted-request-id` (the first request's id) and the `sentMessages` it sent; a
  reply token that this fake never issued, or already used, or older than a minute, is a 400.

Every accepted message is recorded in `sent`, oldest first (what `GET /_local/line` lists);
every call, accepted or not, in `calls`. `arm(times, status)` makes the next calls fail.

The webhook side builds what LINE posts to a bot: `follow_event`, `unfollow_event`,
`text_message_event`, `postback_event`, wrapped by `webhook_body(destination, events)`, each
validated against `line_openapi/webhook.yml`; `sign(body, channel_secret)` is the
`x-line-signature` LINE computes.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

SPEC_DIR = Path(__file__).parent / "line_openapi"
LINE_HOSTS = ("api.line.me",)
PUSH_PATH = "/v2/bot/message/push"
REPLY_PATH = "/v2/bot/message/reply"
REPLY_TOKEN_LIFETIME = timedelta(minutes=1)
RETRY_KEY_LIFETIME = timedelta(hours=24)  # LINE remembers an accepted retry key this long
USER_ID = re.compile(r"U[0-9a-f]{32}")
# The bot's own user id, the `destination` of every webhook body the local runtime builds.
LOCAL_BOT_USER_ID = "U" + hashlib.sha256(b"hotline-local-bot").hexdigest()[:32]

# Limits the Messaging API reference documents (developers.line.biz/en/reference/messaging-api)
# that messaging-api.yml does not carry; LINE answers 400 to a body past any of them.
MAX_TEXT = 5000  # text message
MAX_ALT_TEXT = 1500  # template and flex messages
MAX_BUTTONS_TEXT = 160  # buttons template without an image or title
MAX_BUTTONS_TEXT_WITH_TITLE = 60  # ... with an image or a title
MAX_BUTTONS_TITLE = 40
MAX_BUTTONS_ACTIONS = 4
MAX_CONFIRM_TEXT = 240
CONFIRM_ACTIONS = 2
MAX_TEMPLATE_ACTION_LABEL = 20
DOCUMENTED_LIMITS = (
    f"text message text <= {MAX_TEXT}; altText <= {MAX_ALT_TEXT}; buttons template: text <= "
    f"{MAX_BUTTONS_TEXT} ({MAX_BUTTONS_TEXT_WITH_TITLE} with a title or image), title <= "
    f"{MAX_BUTTONS_TITLE}, 1 to {MAX_BUTTONS_ACTIONS} actions; confirm template: text <= "
    f"{MAX_CONFIRM_TEXT}, exactly {CONFIRM_ACTIONS} actions; template action label <= "
    f"{MAX_TEMPLATE_ACTION_LABEL}"
)

FAULT_MESSAGES = {
    400: "The request body has 1 error(s)",
    401: (
        "Authentication failed. Confirm that the access token in the authorization header is valid."
    ),
    403: "The bot is not allowed to use this API.",
    429: "The API rate limit has been exceeded. Try again later.",
    500: "An error occurred on the LINE Platform.",
}

Answer = tuple[int, dict[str, str], bytes]  # status, headers (lower-case names), body


class SpecViolation(ValueError):
    """A body the vendored OpenAPI description (or LINE's documented limits) rejects."""

    def __init__(self, schema: str, details: list[dict[str, str]]) -> None:
        self.schema = schema
        self.details = details
        first = details[0] if details else {"property": "", "message": "invalid"}
        where = f" at {first['property']}" if first.get("property") else ""
        more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
        super().__init__(f"not a valid {schema}{where}: {first['message']}{more}")


# --- the OpenAPI description, as JSON Schema ------------------------------------------------


def _ref_name(ref: str) -> str:
    prefix = "#/components/schemas/"
    if not ref.startswith(prefix):
        raise ValueError(f"unexpected $ref {ref!r} in the vendored LINE OpenAPI description")
    return ref[len(prefix) :]


def _to_json_schema(node: Any, base_refs: Mapping[str, str] | None = None) -> Any:
    """One OpenAPI 3.0 schema object as JSON Schema 2020-12: `$ref`s into `$defs`, `nullable`
    as a null type. `base_refs` turns a subtype's own `allOf` reference to its discriminated
    parent into the parent's plain properties (else the parent would dispatch back to it)."""
    if isinstance(node, list):
        return [_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref":
            name = _ref_name(value)
            out["$ref"] = f"#/$defs/{(base_refs or {}).get(name, name)}"
        elif key == "allOf" and base_refs:
            out["allOf"] = [_to_json_schema(part, base_refs) for part in value]
        elif key in ("discriminator", "nullable", "example", "externalDocs"):
            continue
        elif key in ("properties", "$defs"):
            out[key] = {name: _to_json_schema(sub) for name, sub in value.items()}
        elif key == "enum" or key.startswith("x-"):
            out[key] = value
        else:
            out[key] = _to_json_schema(value)
    if node.get("nullable") and isinstance(node.get("type"), str):
        out["type"] = [node["type"], "null"]
    return out


def _definitions(schemas: dict[str, Any]) -> dict[str, Any]:
    """Every component schema, each discriminated one split in two: `Name` checks the
    discriminating property is one the mapping names and then validates against the mapped
    subtype; `Name~base` is the parent's own properties, which the subtypes extend."""
    parents: dict[str, str] = {}  # subtype -> its discriminated parent
    for name, schema in schemas.items():
        for target in (schema.get("discriminator") or {}).get("mapping", {}).values():
            parents[_ref_name(target)] = name
    defs: dict[str, Any] = {}
    for name, schema in schemas.items():
        parent = parents.get(name)
        defs[name] = _to_json_schema(schema, {parent: f"{parent}~base"} if parent else None)
        discriminator = schema.get("discriminator")
        if not discriminator:
            continue
        prop = discriminator["propertyName"]
        mapping = {key: _ref_name(target) for key, target in discriminator["mapping"].items()}
        defs[f"{name}~base"] = defs[name]
        defs[name] = {
            "type": "object",
            "required": [prop],
            "properties": {prop: {"enum": sorted(mapping)}},
            "allOf": [
                {
                    "if": {"properties": {prop: {"const": key}}, "required": [prop]},
                    "then": {"$ref": f"#/$defs/{target}"},
                }
                for key, target in sorted(mapping.items())
            ],
        }
    return defs


@cache
def _defs(spec_file: str) -> dict[str, Any]:
    doc = yaml.safe_load((SPEC_DIR / spec_file).read_text(encoding="utf-8"))
    return _definitions(doc["components"]["schemas"])


@cache
def _validator(spec_file: str, schema: str) -> Draft202012Validator:
    defs = _defs(spec_file)
    if schema not in defs:
        raise KeyError(f"{spec_file} has no schema {schema!r}")
    return Draft202012Validator({"$ref": f"#/$defs/{schema}", "$defs": defs})


def _leaves(error: ValidationError) -> Iterator[ValidationError]:
    """The innermost errors: an `if`/`then` or `allOf` failure says where inside it failed."""
    if error.context:
        for sub in error.context:
            yield from _leaves(sub)
    else:
        yield error


def _property(path: Any) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def spec_errors(spec_file: str, schema: str, instance: Any) -> list[dict[str, str]]:
    """What the vendored description finds wrong with `instance` as `schema`, LINE's way:
    `[{"message", "property"}]`, empty when it is valid."""
    found = []
    for error in _validator(spec_file, schema).iter_errors(instance):
        for leaf in _leaves(error):
            found.append({"message": leaf.message, "property": _property(leaf.absolute_path)})
    unique = {(item["property"], item["message"]): item for item in found}
    return sorted(unique.values(), key=lambda item: (item["property"], item["message"]))


def check_spec(spec_file: str, schema: str, instance: Any) -> None:
    details = spec_errors(spec_file, schema, instance)
    if details:
        raise SpecViolation(schema, details)


def _limit_errors(messages: Any) -> list[dict[str, str]]:
    """LINE's documented limits (DOCUMENTED_LIMITS) on the message objects the hotline sends."""
    found: list[dict[str, str]] = []

    def longer(value: Any, limit: int, where: str) -> None:
        if isinstance(value, str) and len(value) > limit:
            found.append({"message": f"Length must be between 0 and {limit}", "property": where})

    for i, message in enumerate(messages if isinstance(messages, list) else []):
        if not isinstance(message, dict):
            continue
        at = f"messages[{i}]"
        if message.get("type") == "text":
            longer(message.get("text"), MAX_TEXT, f"{at}.text")
        if message.get("type") in ("template", "flex"):
            longer(message.get("altText"), MAX_ALT_TEXT, f"{at}.altText")
        template = message.get("template")
        if message.get("type") != "template" or not isinstance(template, dict):
            continue
        actions = template.get("actions")
        actions = actions if isinstance(actions, list) else []
        if template.get("type") == "buttons":
            titled = bool(template.get("title") or template.get("thumbnailImageUrl"))
            limit = MAX_BUTTONS_TEXT_WITH_TITLE if titled else MAX_BUTTONS_TEXT
            longer(template.get("text"), limit, f"{at}.template.text")
            longer(template.get("title"), MAX_BUTTONS_TITLE, f"{at}.template.title")
            if not 1 <= len(actions) <= MAX_BUTTONS_ACTIONS:
                found.append(
                    {
                        "message": f"Size must be between 1 and {MAX_BUTTONS_ACTIONS}",
                        "property": f"{at}.template.actions",
                    }
                )
        if template.get("type") == "confirm":
            longer(template.get("text"), MAX_CONFIRM_TEXT, f"{at}.template.text")
            if len(actions) != CONFIRM_ACTIONS:
                found.append(
                    {
                        "message": f"Size must be {CONFIRM_ACTIONS}",
                        "property": f"{at}.template.actions",
                    }
                )
        for j, action in enumerate(actions):
            if isinstance(action, dict):
                where = f"{at}.template.actions[{j}].label"
                if "label" not in action:
                    found.append({"message": "must be specified", "property": where})
                longer(action.get("label"), MAX_TEMPLATE_ACTION_LABEL, where)
    return found


def request_errors(path: str, body: Any) -> list[dict[str, str]]:
    """Everything LINE would refuse in a push or reply body: the OpenAPI schema, then the
    documented limits."""
    schema = {PUSH_PATH: "PushMessageRequest", REPLY_PATH: "ReplyMessageRequest"}[path]
    details = spec_errors("messaging-api.yml", schema, body)
    if not details and isinstance(body, dict):
        details = _limit_errors(body.get("messages"))
    return details


# --- the fake -------------------------------------------------------------------------------


def _system_now() -> datetime:
    return datetime.now(UTC)


def _answer(status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> Answer:
    out = {
        "content-type": "application/json",
        "x-line-request-id": str(uuid.uuid4()),
        **(headers or {}),
    }
    return status, out, json.dumps(payload, ensure_ascii=False).encode("utf-8")


def _error(status: int, message: str, details: list[dict[str, str]] | None = None) -> Answer:
    payload: dict[str, Any] = {"message": message}
    if details:
        payload["details"] = details
    check_spec("messaging-api.yml", "ErrorResponse", payload)
    return _answer(status, payload)


class FakeLineApi:
    """The Messaging API in-process. Thread-safe; `sent`, `calls` and `faults` are for reading."""

    def __init__(
        self,
        channel_access_token: str,
        *,
        clock: Callable[[], datetime] | None = None,
        fault: Callable[[], int | None] | None = None,
    ) -> None:
        """`fault`, when given, is asked once per call after this fake's own armed faults:
        an HTTP status makes that call fail with it (the local runtime keeps its faults, every
        service's, in one list)."""
        self.channel_access_token = channel_access_token
        self.clock = clock or _system_now
        self._fault = fault
        self.sent: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []  # {"method", "path", "status", "at"}
        self._lock = threading.Lock()
        self._faults: list[list[int]] = []  # [status, calls still to fail]
        self._reply_tokens: dict[str, tuple[str, datetime]] = {}  # token -> (user, issued)
        self._retry_keys: dict[str, tuple[str, list[dict[str, str]], datetime]] = {}

    # --- what tests and the local runtime use -------------------------------------------------
    def arm(self, times: int, status: int = 500) -> None:
        """The next `times` Messaging API calls answer `status` (LINE's error body) and send
        nothing."""
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise ValueError("times must be a whole number >= 1")
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error status (400-599)")
        with self._lock:
            self._faults.append([status, times])

    @property
    def faults(self) -> list[dict[str, int]]:
        with self._lock:
            return [{"status": status, "remaining": left} for status, left in self._faults]

    def clear_faults(self) -> list[dict[str, int]]:
        with self._lock:
            cleared = [{"status": status, "remaining": left} for status, left in self._faults]
            self._faults.clear()
        return cleared

    def issue_reply_token(self, user_id: str) -> str:
        """A reply token for an event from `user_id`, as LINE puts in a webhook event: usable
        once, within a minute."""
        token = secrets.token_hex(16)
        with self._lock:
            self._reply_tokens[token] = (user_id, self.clock())
        return token

    def messages_to(self, user_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(item) for item in self.sent if item["to"] == user_id]

    def listed(self) -> list[dict[str, Any]]:
        """`sent`, oldest first, as `GET /_local/line` answers."""
        with self._lock:
            return copy.deepcopy(self.sent)

    # --- webhook events, each with a reply token from this fake -------------------------------
    def event(
        self, kind: str, user_id: str, *, text: str | None = None, data: str | None = None
    ) -> dict[str, Any]:
        """One webhook event from `user_id` (`follow`, `unfollow`, `message` with `text`,
        `postback` with `data`), stamped with this fake's clock, with a reply token it will
        accept where LINE gives one."""
        at = self.clock()
        if kind == "follow":
            return follow_event(user_id, self.issue_reply_token(user_id), at=at)
        if kind == "unfollow":
            return unfollow_event(user_id, at=at)
        if kind == "message":
            if not isinstance(text, str) or not text:
                raise ValueError('a "message" event needs a non-empty "text"')
            return text_message_event(user_id, text, self.issue_reply_token(user_id), at=at)
        if kind == "postback":
            if not isinstance(data, str):
                raise ValueError('a "postback" event needs "data" (a string)')
            return postback_event(user_id, data, self.issue_reply_token(user_id), at=at)
        raise ValueError(f"unknown event type {kind!r}: follow, unfollow, message or postback")

    # --- the transport -------------------------------------------------------------------------
    def __call__(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: float,
    ) -> Answer:
        parts = urlsplit(url)
        status, out_headers, out_body = self._answer(method.upper(), parts, headers, body)
        with self._lock:
            self.calls.append(
                {
                    "method": method.upper(),
                    "path": parts.path,
                    "status": status,
                    "at": self.clock().isoformat(),
                }
            )
        return status, out_headers, out_body

    def _answer(
        self, method: str, parts: Any, headers: Mapping[str, str], body: bytes | None
    ) -> Answer:
        if parts.scheme != "https" or parts.hostname not in LINE_HOSTS:
            return _error(404, f"Not found: the fake Messaging API serves {LINE_HOSTS[0]} only")
        if parts.path not in (PUSH_PATH, REPLY_PATH):
            return _error(404, "Not found")
        if method != "POST":
            return _error(405, "Method not allowed")
        with self._lock:
            for fault in self._faults:
                status = fault[0]
                fault[1] -= 1
                if fault[1] == 0:
                    self._faults.remove(fault)
                return _error(status, FAULT_MESSAGES.get(status, f"HTTP {status}"))
        armed = self._fault() if self._fault else None
        if armed is not None:
            return _error(armed, FAULT_MESSAGES.get(armed, f"HTTP {armed}"))
        lower = {name.lower(): value for name, value in headers.items()}
        if lower.get("authorization") != f"Bearer {self.channel_access_token}":
            return _error(401, FAULT_MESSAGES[401])
        media = lower.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json":
            return _error(415, "Content-Type must be application/json")
        retry_key = lower.get("x-line-retry-key")
        if retry_key is not None:
            if parts.path == REPLY_PATH:
                return _error(400, "The reply API does not take the X-Line-Retry-Key header")
            if not _is_uuid(retry_key):
                return _error(400, "The value for the 'X-Line-Retry-Key' header is invalid")
        try:
            payload = json.loads(body or b"")
        except (ValueError, UnicodeDecodeError):
            return _error(400, "The request body has 1 error(s)", [{"message": "invalid JSON"}])
        details = request_errors(parts.path, payload)
        if details:
            return _error(400, f"The request body has {len(details)} error(s)", details)
        if parts.path == PUSH_PATH:
            return self._push(payload, retry_key)
        return self._reply(payload)

    def _push(self, payload: dict[str, Any], retry_key: str | None) -> Answer:
        to = payload["to"]
        if not USER_ID.fullmatch(to):
            return _error(
                400, "The property, 'to', in the request body is invalid (line: -, column: -)"
            )
        now = self.clock()
        request_id = str(uuid.uuid4())
        with self._lock:
            if retry_key is not None:
                known = self._retry_keys.get(retry_key.lower())
                if known and now - known[2] < RETRY_KEY_LIFETIME:
                    accepted, sent, _ = known
                    return _answer(
                        409,
                        {"message": "The retry key is already accepted", "sentMessages": sent},
                        {"x-line-accepted-request-id": accepted},
                    )
            sent = self._record(to, "push", payload["messages"], retry_key, now)
            if retry_key is not None:
                self._retry_keys[retry_key.lower()] = (request_id, sent, now)
        return self._ok("PushMessageResponse", sent, request_id)

    def _reply(self, payload: dict[str, Any]) -> Answer:
        now = self.clock()
        with self._lock:
            issued = self._reply_tokens.pop(payload["replyToken"], None)
            if issued is None or now - issued[1] > REPLY_TOKEN_LIFETIME:
                return _error(400, "Invalid reply token")
            sent = self._record(issued[0], "reply", payload["messages"], None, now)
        return self._ok("ReplyMessageResponse", sent, str(uuid.uuid4()))

    def _record(
        self,
        to: str,
        kind: str,
        messages: list[dict[str, Any]],
        retry_key: str | None,
        now: datetime,
    ) -> list[dict[str, str]]:
        self.sent.append(
            {
                "to": to,
                "kind": kind,
                "messages": copy.deepcopy(messages),
                "retry_key": retry_key,
                "sent_at": now.isoformat(),
            }
        )
        return [
            {"id": str(secrets.randbelow(10**18)), "quoteToken": secrets.token_urlsafe(24)}
            for _ in messages
        ]

    @staticmethod
    def _ok(schema: str, sent: list[dict[str, str]], request_id: str) -> Answer:
        payload = {"sentMessages": sent}
        check_spec("messaging-api.yml", schema, payload)
        return _answer(200, payload, {"x-line-request-id": request_id})


def _is_uuid(value: str) -> bool:
    # LINE takes the hexadecimal form with hyphens (123e4567-e89b-12d3-a456-426614174000).
    if not re.fullmatch(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}", value):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


# --- webhook bodies -------------------------------------------------------------------------

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _ulid(at: datetime) -> str:
    """A ULID (LINE's webhookEventId): 48 bits of milliseconds, 80 random bits, Crockford."""
    value = (int(at.timestamp() * 1000) << 80) | secrets.randbits(80)
    return "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))


def simulated_user_id(seed: str) -> str:
    """A LINE-shaped user id (`U` + 32 hex digits) made from `seed` (the simulator makes one
    per phone: the same phone, the same LINE user)."""
    return "U" + hashlib.sha256(f"hotline-local-line-user:{seed}".encode()).hexdigest()[:32]


def _base_event(kind: str, user_id: str, at: datetime | None) -> dict[str, Any]:
    moment = at or _system_now()
    return {
        "type": kind,
        "mode": "active",
        "timestamp": int(moment.timestamp() * 1000),
        "source": {"type": "user", "userId": user_id},
        "webhookEventId": _ulid(moment),
        "deliveryContext": {"isRedelivery": False},
    }


def follow_event(user_id: str, reply_token: str, *, at: datetime | None = None) -> dict[str, Any]:
    event = {**_base_event("follow", user_id, at), "replyToken": reply_token}
    event["follow"] = {"isUnblocked": False}
    check_spec("webhook.yml", "Event", event)
    return event


def unfollow_event(user_id: str, *, at: datetime | None = None) -> dict[str, Any]:
    event = _base_event("unfollow", user_id, at)
    check_spec("webhook.yml", "Event", event)
    return event


def text_message_event(
    user_id: str, text: str, reply_token: str, *, at: datetime | None = None
) -> dict[str, Any]:
    event = {**_base_event("message", user_id, at), "replyToken": reply_token}
    event["message"] = {
        "type": "text",
        "id": str(secrets.randbelow(10**18)),
        "quoteToken": secrets.token_urlsafe(24),
        "text": text,
    }
    check_spec("webhook.yml", "Event", event)
    return event


def postback_event(
    user_id: str, data: str, reply_token: str, *, at: datetime | None = None
) -> dict[str, Any]:
    event = {**_base_event("postback", user_id, at), "replyToken": reply_token}
    event["postback"] = {"data": data}
    check_spec("webhook.yml", "Event", event)
    return event


def webhook_body(destination: str, events: list[dict[str, Any]]) -> bytes:
    """The raw body LINE posts to the webhook URL (compact JSON, UTF-8), validated as the
    description's `CallbackRequest`. Sign exactly these bytes."""
    payload = {"destination": destination, "events": events}
    check_spec("webhook.yml", "CallbackRequest", payload)
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def sign(body: bytes, channel_secret: str) -> str:
    """`x-line-signature`: base64 of HMAC-SHA256 over the raw body, keyed by the channel secret."""
    digest = hmac.new(channel_secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")
