"""The LINE Messaging API as a few plain HTTPS calls: a push (`POST /v2/bot/message/push`)
and a reply (`POST /v2/bot/message/reply`), over a transport.

Not the official SDK (`line-bot-sdk`): importing `linebot.v3.messaging` costs a cold start
~0.8 s, against nothing for urllib3, which botocore has already imported by the time a
client exists (BENCHMARKS.md, "LINE client"). The transport is a callable

    transport(method, url, *, headers, body, timeout) -> (status, headers, body)

with response header names in lower case. `use_transport` swaps it process-wide, as
`hotline_core.clock.use` swaps the clock: the local runtime and the tests install a fake
Messaging API with it.

Timeouts and retries are set here, never by the environment: each attempt is bounded by
`CONNECT_SECONDS` + `READ_SECONDS`, and the `Retrier` given starts no attempt that might
outlast its budget or the invocation (`adapters.retry`). A push carries `X-Line-Retry-Key`,
the same on every attempt and on a Lambda retry a minute later (a uuid5 of the once-only
claim's key): LINE runs the request once and answers a repeat with 409 and
`x-line-accepted-request-id`, which is success. Throttling (429), server errors (5xx) and a
request that got no answer are retried; any other 4xx is final.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

LINE_API = "https://api.line.me"
PUSH_PATH = "/v2/bot/message/push"
REPLY_PATH = "/v2/bot/message/reply"
CONNECT_SECONDS = 0.5
READ_SECONDS = 2.0
ATTEMPT_SECONDS = CONNECT_SECONDS + READ_SECONDS
# The namespace of the retry keys: uuid5(namespace, once-only key). Fixed forever, so a
# retry of the same message, by any container at any later time, carries the same key.
RETRY_KEY_NAMESPACE = uuid.UUID("6f1c3a52-9d0e-5b7a-8c41-2e7d9b0f4a63")

Message = Mapping[str, Any]


class Transport(Protocol):
    def __call__(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        body: bytes | None,
        timeout: float,
    ) -> tuple[int, dict[str, str], bytes]: ...


class LineUnreachable(ConnectionError):
    """No answer from the Messaging API: no connection (`sent` False: the request never
    left), or a connection that broke or timed out after the request was sent."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class LineApiError(RuntimeError):
    """The Messaging API answered with an error status. The message never holds the
    request (a user id, a text): only the status and LINE's own error message."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"LINE Messaging API answered {status}: {detail}")
        self.status = status


def retryable(error: BaseException) -> bool:
    """Worth another attempt with the same request: throttled, a server error, no answer."""
    if isinstance(error, LineApiError):
        return error.status == 429 or error.status >= 500
    return isinstance(error, LineUnreachable)


def retry_key(once_key: str) -> str:
    """The push's `X-Line-Retry-Key` for the message a once-only claim stands for."""
    return str(uuid.uuid5(RETRY_KEY_NAMESPACE, once_key))


@functools.cache
def _pool() -> Any:
    """One connection pool per container. urllib3 is already loaded by botocore; its
    certificate bundle is botocore's too (certifi where installed)."""
    import urllib3
    from botocore.httpsession import get_cert_path

    return urllib3.PoolManager(
        num_pools=2, maxsize=4, cert_reqs="CERT_REQUIRED", ca_certs=get_cert_path(True)
    )


def urllib3_transport(
    method: str, url: str, *, headers: dict[str, str], body: bytes | None, timeout: float
) -> tuple[int, dict[str, str], bytes]:
    """The real transport: one HTTPS request, no retries and no redirects of urllib3's own."""
    import urllib3
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ProtocolError
    from urllib3.exceptions import HTTPError as Urllib3Error

    try:
        response = _pool().request(
            method,
            url,
            headers=headers,
            body=body,
            timeout=urllib3.Timeout(connect=min(CONNECT_SECONDS, timeout), read=timeout),
            retries=False,
            redirect=False,
        )
    except (ConnectTimeoutError, NewConnectionError) as exc:
        raise LineUnreachable(f"no connection to LINE: {type(exc).__name__}", sent=False) from exc
    except (ProtocolError, Urllib3Error) as exc:
        raise LineUnreachable(f"no answer from LINE: {type(exc).__name__}", sent=True) from exc
    return response.status, {k.lower(): v for k, v in response.headers.items()}, response.data


_override: Transport | None = None


def use_transport(transport: Transport | None) -> None:
    """Send every Messaging API request through `transport` (None: the real one again)."""
    global _override
    _override = transport


def current_transport() -> Transport:
    return _override or urllib3_transport


def _at_once(call: Callable[[], None]) -> None:
    call()


class LineApi:
    """The two calls Hotline makes. `token` gives the channel access token (read from
    Secrets Manager on first use, not before); `retry` runs each call with bounded retries
    (`retry_if=retryable`)."""

    def __init__(
        self,
        token: Callable[[], str],
        *,
        retry: Callable[[Callable[[], None]], None] | None = None,
        base_url: str = LINE_API,
        timeout: float = READ_SECONDS,
    ) -> None:
        self._token = token
        self._retry = retry or _at_once
        self._base = base_url.rstrip("/")
        self._timeout = timeout

    def push(self, to: str, messages: Sequence[Message], *, retry_key: str) -> None:
        """Send `messages` to the user `to`; the same `retry_key` on every attempt."""
        body = {"to": to, "messages": list(messages)}
        self._retry(lambda: self._post(PUSH_PATH, body, {"X-Line-Retry-Key": retry_key}))

    def reply(self, reply_token: str, messages: Sequence[Message]) -> None:
        """Answer a webhook event (free; its token is valid once, for a short time)."""
        body = {"replyToken": reply_token, "messages": list(messages)}
        self._retry(lambda: self._post(REPLY_PATH, body, {}))

    def _post(self, path: str, payload: dict[str, Any], extra: dict[str, str]) -> None:
        headers = {
            "Authorization": f"Bearer {self._token()}",
            "Content-Type": "application/json",
            **extra,
        }
        data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        status, response_headers, content = current_transport()(
            "POST", self._base + path, headers=headers, body=data, timeout=self._timeout
        )
        if 200 <= status < 300:
            return
        if status == 409 and response_headers.get("x-line-accepted-request-id"):
            return  # the same retry key was accepted before: the message went out once
        raise LineApiError(status, _error_message(content))


def _error_message(content: bytes) -> str:
    """LINE's `message` field only: its `details` may quote the request."""
    try:
        parsed = json.loads(content or b"{}")
    except ValueError:
        return "(no JSON body)"
    message = parsed.get("message") if isinstance(parsed, dict) else None
    return str(message)[:200] if message else "(no message)"


@dataclass(frozen=True)
class LineCredentials:
    channel_secret: str
    channel_access_token: str


def line_credentials_from_secret(client: Any, secret_id: str) -> LineCredentials:
    """The channel's secret and access token, from the Secrets Manager secret the template
    parameter `LineSecretName` names: JSON `{"channelSecret", "channelAccessToken"}`."""
    value = json.loads(client.get_secret_value(SecretId=secret_id)["SecretString"])
    secret, token = value.get("channelSecret"), value.get("channelAccessToken")
    if not isinstance(secret, str) or not secret or not isinstance(token, str) or not token:
        raise ValueError(
            f"secret {secret_id} needs JSON with channelSecret and channelAccessToken (strings)"
        )
    return LineCredentials(channel_secret=secret, channel_access_token=token)


def signature_valid(body: bytes, signature: str | None, channel_secret: str) -> bool:
    """Whether `x-line-signature` is base64(HMAC-SHA256(channel secret, raw body))."""
    if not signature:
        return False
    digest = hmac.new(channel_secret.encode("utf-8"), body, hashlib.sha256).digest()
    expected = base64.b64encode(digest).decode("ascii")
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace"))
