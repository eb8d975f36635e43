"""Runs the real Lambda handlers in this process, each with its own environment from the
template, as Lambda would: the module is loaded from the function's CodeUri on first use (its
cold start) and invoked with the real event shapes."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl

from hotline_tools.local.provision import ProvisionedFunction, Stack
from hotline_tools.local.template import ACCOUNT, REGION


@dataclass
class FakeContext:
    """The LambdaContext attributes Powertools reads."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 256
    aws_request_id: str = ""
    timeout_s: int = 10

    def __post_init__(self) -> None:
        self.aws_request_id = self.aws_request_id or str(uuid.uuid4())
        self._deadline = time.monotonic() + self.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class FunctionHost:
    """One loaded module per function; invocations are serialised because each function's
    environment is process-wide while it runs."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self._modules: dict[str, ModuleType] = {}
        self._lock = threading.RLock()
        self.invocations: dict[str, int] = {}
        self._running = threading.local()

    def in_handler(self) -> bool:
        """Whether a handler is running on this thread: the AWS calls made now are the
        handler's (faults apply to them), not the runtime's own."""
        return bool(getattr(self._running, "depth", 0))

    @contextmanager
    def _environment(self, fn: ProvisionedFunction) -> Iterator[None]:
        saved = dict(os.environ)
        os.environ.update(fn.environment)
        os.environ["AWS_LAMBDA_FUNCTION_NAME"] = fn.arn.rsplit(":", 1)[1]
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def _load(self, fn: ProvisionedFunction) -> ModuleType:
        module = self._modules.get(fn.spec.logical_id)
        if module is None:
            code_dir = self.stack.template.root / fn.spec.code_uri
            path = code_dir / (fn.spec.module.replace(".", "/") + ".py")
            name = f"_hotline_local_{fn.spec.logical_id}"
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {fn.spec.handler} from {path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
            self._modules[fn.spec.logical_id] = module
        return module

    def handler(self, logical_id: str) -> Callable[[dict[str, Any], Any], Any]:
        fn = self.stack.functions[logical_id]
        with self._environment(fn):
            return getattr(self._load(fn), fn.spec.attribute)  # type: ignore[no-any-return]

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        fn = self.stack.functions[logical_id]
        with self._lock, self._environment(fn):
            handler = getattr(self._load(fn), fn.spec.attribute)
            context = FakeContext(
                function_name=fn.arn.rsplit(":", 1)[1],
                invoked_function_arn=fn.arn,
                timeout_s=fn.spec.timeout,
            )
            self.invocations[logical_id] = self.invocations.get(logical_id, 0) + 1
            self._running.depth = getattr(self._running, "depth", 0) + 1
            try:
                return handler(event, context)
            finally:
                self._running.depth -= 1


def eventbridge_event(body: str) -> dict[str, Any]:
    """An event as moto delivered it to a queue, completed as EventBridge delivers it to a
    Lambda: moto's deliveries omit `account`."""
    event: dict[str, Any] = json.loads(body)
    event.setdefault("account", ACCOUNT)
    event.setdefault("region", REGION)
    event.setdefault("resources", [])
    event.setdefault("version", "0")
    return event


def http_api_event(
    method: str,
    path: str,
    *,
    route_key: str,
    path_parameters: dict[str, str],
    body: bytes = b"",
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    query: str = "",
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event. As API Gateway builds it: header
    names in lower case, a repeated header's values joined with commas, the same for a
    repeated query parameter, and the Cookie header(s) not among the headers but split into
    `cookies`; a key with nothing to hold (no query, no cookies, no body) is left out."""
    now = datetime.now(UTC)
    pairs = headers.items() if isinstance(headers, Mapping) else headers or []
    headers = _joined((name.lower(), value) for name, value in pairs)
    cookie_header = headers.pop("cookie", "")
    cookies = [c.strip() for c in re.split(r"[;,]", cookie_header) if c.strip()]
    parameters = _joined(parse_qsl(query, keep_blank_values=True))
    try:
        text_body: str | None = body.decode("utf-8") if body else None
        encoded = False
    except UnicodeDecodeError:
        text_body, encoded = base64.b64encode(body).decode("ascii"), True
    content_type = headers.get("content-type", "")
    if (
        text_body is not None
        and not encoded
        and content_type.startswith("application/x-www-form-urlencoded")
    ):
        # HTTP APIs pass form bodies base64-encoded; the handler must cope with that.
        text_body, encoded = base64.b64encode(body).decode("ascii"), True
    return {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query,
        **({"cookies": cookies} if cookies else {}),
        "headers": headers,
        **({"queryStringParameters": parameters} if parameters else {}),
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "local",
            "domainName": headers.get("host", "127.0.0.1"),
            "domainPrefix": "127",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        **({"pathParameters": path_parameters} if path_parameters else {}),
        "isBase64Encoded": encoded,
        **({"body": text_body} if text_body is not None else {}),
    }


def _joined(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Repeated names with their values joined by commas, in order, as API Gateway does."""
    joined: dict[str, str] = {}
    for name, value in pairs:
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    return joined
