"""The LINE client's cold start: what importing an HTTPS client for the Messaging API costs a
fresh interpreter. Plain urllib3 (which botocore ships and imports as soon as a client
exists) against the official SDK's messaging module (`line-bot-sdk` v3,
`linebot.v3.messaging`).

The SDK is never installed into the project: give a Python that has it (a throwaway venv) in
LINE_SDK_PYTHON, e.g.

    python -m venv /tmp/line-sdk && /tmp/line-sdk/bin/pip install line-bot-sdk
    LINE_SDK_PYTHON=/tmp/line-sdk/bin/python python -m benchmarks.line_client

Without it, the SDK's row says it was not measured in this run. Each figure is the median over
`runs` fresh interpreters of the module's cumulative time in `python -X importtime -c
"import <module>"` (its own line, everything it imports included)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

from benchmarks.common import median, table

_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")


def cumulative_ms(python: str, module: str, before: str = "") -> float:
    """The module's cumulative import time, ms, in a fresh `python`. `before` is imported
    first (what a handler has already loaded); 0 when `before` already imported it."""
    code = (f"import {before}; " if before else "") + f"import {module}"
    stderr = subprocess.run(  # noqa: S603 - our own interpreters, our own code
        [python, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True
    ).stderr
    seen_before = not before
    total = 0
    for line in stderr.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        name, depth = match.group(4), len(match.group(3))
        if before and name == before.split(",")[0].strip() and depth == 1:
            seen_before = True
            continue
        if seen_before and name == module and depth == 1:
            total = int(match.group(2))
    return total / 1000


def _version(python: str, module: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({module!r}))"
    done = subprocess.run([python, "-c", code], capture_output=True, text=True)  # noqa: S603
    return done.stdout.strip() or "?"


def measure(runs: int = 15) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    here = sys.executable
    for label, python, module, before, dist in (
        ("urllib3, fresh interpreter", here, "urllib3", "", "urllib3"),
        (
            "urllib3, after a botocore client exists",
            here,
            "urllib3",
            "botocore.httpsession",
            "urllib3",
        ),
    ):
        values = [cumulative_ms(python, module, before) for _ in range(runs)]
        rows.append({"label": label, "median": median(values), "version": _version(python, dist)})
    sdk = os.environ.get("LINE_SDK_PYTHON")
    if sdk:
        for label, before in (
            ("line-bot-sdk `linebot.v3.messaging`, fresh interpreter", ""),
            (
                "line-bot-sdk `linebot.v3.messaging`, after urllib3, pydantic, aiohttp",
                "urllib3, pydantic, aiohttp",
            ),
        ):
            values = [cumulative_ms(sdk, "linebot.v3.messaging", before) for _ in range(runs)]
            rows.append(
                {"label": label, "median": median(values), "version": _version(sdk, "line-bot-sdk")}
            )
    return {"runs": runs, "rows": rows, "sdk_measured": bool(sdk)}


def render(r: dict[str, Any]) -> str:
    lines = [
        "## 4c. The LINE client's cold start",
        "",
        "Why the Messaging API is a few plain HTTPS calls over urllib3 "
        "(`hotline_core.adapters.line_api`) and not the official SDK: the import each costs a "
        f'fresh interpreter, median of {r["runs"]} runs of `python -X importtime -c "import '
        "<module>\"` (the module's cumulative time: everything it imports). A handler has a "
        "botocore client before it sends anything, and botocore's HTTP session has imported "
        "urllib3 by then, so the second row is what LINE adds to a consumer's cold start. "
        "The SDK was installed into a throwaway venv (`LINE_SDK_PYTHON`), never into the project.",
        "",
        table(
            ["import", "version", "ms"],
            [[row["label"], row["version"], f"{row['median']:.1f}"] for row in r["rows"]],
        ),
    ]
    if not r["sdk_measured"]:
        lines += ["", "The SDK was not measured in this run (no LINE_SDK_PYTHON)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(measure()))
