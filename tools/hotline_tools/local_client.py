"""The one HTTP client for a running local runtime's control API (`hotline call`, `sms`,
`replay --local`, `events tail --local`, `members|benefits import --local`)."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

err = Console(stderr=True)


class LocalRuntimeError(Exception):
    """The runtime answered with an error (`status`), or could not be reached (`status` 0)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def call_local(base: str, method: str, path: str, body: Any = None, *, timeout: float = 30) -> Any:
    if not base.startswith(("http://", "https://")):
        raise LocalRuntimeError(0, f"{base} is not an http(s) URL")
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(  # noqa: S310 - a URL the user gave, http(s) checked
        base.rstrip("/") + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json"} if data is not None else {},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")
        with contextlib.suppress(ValueError, AttributeError):
            detail = json.loads(detail).get("error", detail)
        raise LocalRuntimeError(exc.code, str(detail)) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise LocalRuntimeError(
            0,
            f"no local hotline at {base}; start one with `make run` (port 3000) or "
            "`hotline local --port PORT`",
        ) from exc


def call_local_or_exit(
    base: str, method: str, path: str, body: Any = None, *, timeout: float = 30
) -> Any:
    """`call_local` for commands: print what went wrong and exit 1 (2 for a bad URL)."""
    try:
        return call_local(base, method, path, body, timeout=timeout)
    except LocalRuntimeError as exc:
        prefix = f"{exc.status}: " if exc.status else ""
        err.print(f"[red]{prefix}{escape(str(exc))}[/red]", soft_wrap=True)
        bad_url = not base.startswith(("http://", "https://"))
        raise typer.Exit(2 if bad_url else 1) from exc
