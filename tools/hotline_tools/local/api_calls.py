"""Every AWS API call a handler makes while the local runtime runs it, and why the call is
made: the benchmarks count a conversation's calls with it, and the IAM test checks each one
against the functions' policies.

A `before-parameter-build` handler is added to botocore's built-in handlers, so every client
any session creates reports every operation it is about to call. Only calls made inside a
handler invocation count (the runtime's FunctionHost sets `AWS_LAMBDA_FUNCTION_NAME` for the
invocation); the runtime's own bookkeeping (queues, schedules, the SMS record) is excluded.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from typing import Any


class ApiCallCounter:
    """Records (phase, function, service, operation, why) for every API call a handler makes."""

    def __init__(self) -> None:
        self.calls: list[dict[str, str]] = []
        self.phase = ""
        self.names: dict[str, str] = {}  # physical function name → logical id
        self._lock = threading.Lock()
        self.installed = False

    def install(self) -> None:
        """Before any boto3 session exists (moto resets the default one on start)."""
        import botocore.handlers

        if not self.installed:
            botocore.handlers.BUILTIN_HANDLERS.append(("before-parameter-build", self._record))
            self.installed = True

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        if not function:
            return
        service = model.service_model.service_id
        logical = self.names.get(function, function)
        with self._lock:
            self.calls.append(
                {
                    "phase": self.phase,
                    "function": logical,
                    "call": f"{service} {model.name}",
                    "why": why(logical, model.name, params),
                }
            )

    @contextmanager
    def during(self, phase: str) -> Any:
        self.phase = phase
        try:
            yield
        finally:
            self.phase = ""


def _key(params: dict[str, Any]) -> str:
    item = params.get("Key") or params.get("Item")
    if not isinstance(item, dict):
        return ""
    return str(item.get("pk", {}).get("S", "")).split("#", 1)[0]


def why(function: str, operation: str, params: dict[str, Any]) -> str:
    """Why this call is needed, from what the call carries."""
    table_name = params.get("TableName", "")
    idempotency = table_name and table_name == os.environ.get("IDEMPOTENCY_TABLE_NAME")
    if idempotency:
        claimed = params.get("Item", params.get("Key", {})).get("id", {}).get("S", "")
        purpose = "`" + claimed.split("#", 1)[0] + "#<request>`" if claimed else "a purpose"
        if operation == "PutItem":
            return f"once only: claim {purpose} (a duplicate delivery stops here)"
        if operation == "DeleteItem":
            return f"once only: release {purpose} after a failure, so the retry runs"
        return f"once only: {operation}"
    key = _key(params)
    reasons = {
        ("GetObject", ""): "read `phonenumber.json` (cached for the container's life)",
        ("TransactWriteItems", ""): (
            "create the request (keyed by its link, `LINK#`), its contact pointer (`REQ#`) and "
            "the caller → receiver pair item (`OPEN#`) in one conditional transaction"
        ),
        ("GetItem", "LINK"): "read the request the link points to (with its expiry)",
        ("GetItem", "REQ"): "find a request by contact id (the pointer to its link)",
        ("GetItem", "phone"): "LINE first: is this phone linked to a LINE user (no: SMS)",
        ("GetItem", "user"): "LINE: which phone this LINE user is linked to",
        ("Publish", ""): "send the SMS (SNS)",
        ("SendTextMessage", ""): "send the SMS (End User Messaging)",
        ("CreateSchedule", ""): "start the one-shot answer timer (`answer-<request>`)",
        ("DeleteSchedule", ""): "cancel the answer timer, so it never fires",
    }
    if operation == "UpdateItem" and key == "LINK":
        values = params.get("ExpressionAttributeValues", {})
        to = "accepted" if ":accepted" in values else "refused"
        reason = values.get(":reason", {}).get("S", "")
        return f"the state change: one conditional write `inquiry → {to}`" + (
            f" ({reason})" if reason else ""
        )
    if operation == "PutEvents":
        event = (params.get("Entries") or [{}])[0].get("DetailType", "an event")
        return f"publish `{event}` on the bus"
    return reasons.get((operation, key), reasons.get((operation, ""), operation))
