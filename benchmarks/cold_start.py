"""Cold start: how long importing each handler module takes in a fresh interpreter, beside a
bare `import boto3` in the same round, and what Powertools' Tracer would add."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from typing import Any

from benchmarks.common import FAKE_AWS, ROOT, median, ok, table

HANDLERS = {
    "call_request": "producers",
    "answer_link": "producers",
    "answer_timer": "producers",
    "benefit_request": "producers",
    "invite_receiver": "consumers",
    "start_timer": "consumers",
    "tell_caller": "consumers",
    "cancel_timer": "consumers",
    "text_member": "consumers",
}
TARGET_RATIO = 1.5
HTTP_HANDLERS = {"answer_link"}  # the one behind the HTTP API, on Powertools' event_handler

# What the project's conventions make every handler import before any code of ours: boto3,
# Powertools Logger and Metrics, and pydantic with one model validated (the first model a
# process defines loads pydantic's schema machinery). The HTTP handler adds event_handler.
_STACK = (
    "import boto3\n"
    "from aws_lambda_powertools import Logger, Metrics\n"
    "from pydantic import BaseModel\n"
    "class _M(BaseModel):\n"
    "    x: int\n"
    "_M(x=1)\n"
)
FLOORS = {
    "event handlers": _STACK,
    "HTTP handler": _STACK
    + "from aws_lambda_powertools.event_handler import APIGatewayHttpResolver\n",
}

# Runs in a fresh interpreter: times one import (and, for "tracer", what an enabled
# Tracer() adds after the handler is loaded), prints JSON.
PROBE = """
import json, sys, time
name, tracer = sys.argv[1], sys.argv[2] == "1"
t = time.perf_counter()
if name.startswith("code:"):
    exec(name[5:], {})
else:
    __import__(name)
took = time.perf_counter() - t
extra = {}
if tracer:
    t = time.perf_counter()
    from aws_lambda_powertools import Tracer
    extra["tracer_import"] = time.perf_counter() - t
    t = time.perf_counter()
    Tracer(service="hotline")
    extra["tracer_init"] = time.perf_counter() - t
    extra["xray_loaded"] = "aws_xray_sdk.core" in sys.modules
print(json.dumps({"import": took, **extra}))
"""


def _env(code_dir: str | None) -> dict[str, str]:
    env = dict(os.environ, **FAKE_AWS)
    # What Lambda sets: Tracer enables itself only when LAMBDA_TASK_ROOT is there.
    env.update(
        AWS_LAMBDA_FUNCTION_NAME="bench",
        LAMBDA_TASK_ROOT=str(ROOT / (code_dir or "")),
        PYTHONDONTWRITEBYTECODE="0",
    )
    env.pop("POWERTOOLS_TRACE_DISABLED", None)
    # Lambda's sys.path: the function's code, then the layer (/opt/python holds core/'s files).
    env["PYTHONPATH"] = (
        os.pathsep.join([str(ROOT / code_dir), str(ROOT / "core")]) if code_dir else ""
    )
    return env


def _probe(name: str, code_dir: str | None, tracer: bool = False) -> dict[str, Any]:
    out = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", PROBE, name, "1" if tracer else "0"],
        cwd=ROOT / (code_dir or ""),
        env=_env(code_dir),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def importtime(name: str, code_dir: str) -> list[tuple[int, int, str]]:
    """`python -X importtime -c 'import name'`: (self µs, cumulative µs, module)."""
    out = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-X", "importtime", "-c", f"import {name}"],
        cwd=ROOT / code_dir,
        env=_env(code_dir),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    rows = []
    for line in out.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m:
            rows.append((int(m.group(1)), int(m.group(2)), m.group(3) + m.group(4)))
    return rows


def measure(runs: int = 10) -> dict[str, Any]:
    # One warm-up round so the OS file cache and .pyc files are in place for every round.
    _probe("boto3", None)
    for name, code_dir in HANDLERS.items():
        _probe(name, code_dir)
    for code in FLOORS.values():
        _probe("code:" + code, None)
    times: dict[str, list[float]] = defaultdict(list)
    tracer: dict[str, list[float]] = defaultdict(list)
    for _ in range(runs):  # interleaved rounds: a busy moment hits every module alike
        times["boto3"].append(_probe("boto3", None)["import"])
        for name, code_dir in HANDLERS.items():
            times[name].append(_probe(name, code_dir)["import"])
        for floor, code in FLOORS.items():
            times[floor].append(_probe("code:" + code, None)["import"])
    boto3 = median(times["boto3"])
    floors = {f: {"median": median(times[f]), "ratio": median(times[f]) / boto3} for f in FLOORS}
    handlers = {
        name: {
            "median": median(times[name]),
            "ratio": median(times[name]) / boto3,
            "above_floor": median(times[name]) - floors[_floor_of(name)]["median"],
        }
        for name in HANDLERS
    }
    worst = max(handlers, key=lambda n: handlers[n]["ratio"])
    xray = False
    for _ in range(max(3, runs // 2)):
        got = _probe(worst, HANDLERS[worst], tracer=True)
        tracer["import"].append(got["tracer_import"])
        tracer["init"].append(got["tracer_init"])
        xray = xray or bool(got["xray_loaded"])
    rows = importtime(worst, HANDLERS[worst])
    by_package: dict[str, int] = defaultdict(int)
    for self_us, _, module in rows:
        by_package[module.strip().split(".")[0]] += self_us
    direct = [r for r in rows if not r[2].startswith(" " * 3)]  # the handler's own imports
    return {
        "runs": runs,
        "boto3": boto3,
        "handlers": handlers,
        "floors": floors,
        "worst": worst,
        "target_met": all(h["ratio"] <= TARGET_RATIO for h in handlers.values()),
        "tracer": {
            "import": median(tracer["import"]),
            "init": median(tracer["init"]),
            "xray_loaded": xray,
        },
        "total_us": sum(r[0] for r in rows),
        "by_package": sorted(by_package.items(), key=lambda kv: -kv[1])[:10],
        "heaviest_self": sorted(rows, key=lambda r: -r[0])[:10],
        "heaviest_direct": sorted(direct, key=lambda r: -r[1])[:10],
    }


def _floor_of(handler: str) -> str:
    return "HTTP handler" if handler in HTTP_HANDLERS else "event handlers"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def render(r: dict[str, Any]) -> str:
    rows = [
        [
            name,
            HANDLERS[name] + "/",
            _ms(h["median"]),
            f"{h['ratio']:.2f}",
            f"{h['above_floor'] * 1000:+.0f} ms",
            ok(h["ratio"] <= TARGET_RATIO),
        ]
        for name, h in sorted(r["handlers"].items(), key=lambda kv: -kv[1]["ratio"])
    ]
    worst = r["worst"]
    t = r["tracer"]
    return "\n".join(
        [
            "## 4. Cold start: handler import time",
            "",
            f"Each figure is the median of {r['runs']} fresh interpreters (`{sys.executable} "
            "-c`, `time.perf_counter()` around `__import__(handler)`, the function's code "
            "directory first on `sys.path` as on Lambda, `.pyc` files already written, one "
            "unmeasured warm-up round first). Every round imports bare `boto3` and every "
            "handler in turn, so the ratio compares like with like. Interpreter start-up is "
            "not included (Lambda's is not either). Local machine, not Lambda: compare "
            "the ratios, not the milliseconds.",
            "",
            f"Bare `import boto3`: **{_ms(r['boto3'])}** (median).",
            "",
            table(
                [
                    "handler",
                    "code",
                    "import (median)",
                    "÷ boto3",
                    "above its floor",
                    f"≤ {TARGET_RATIO}",
                ],
                rows,
            ),
            "",
            "**The floor**: what the project's conventions import before any code of ours, "
            "timed in the same rounds: boto3, Powertools `Logger` and `Metrics`, and pydantic "
            "with one model validated (a process's first model loads pydantic's schema "
            "machinery); the HTTP handler adds Powertools `event_handler`, whose package "
            "`__init__` loads every resolver (AppSync, Bedrock, VPC Lattice, …) and asyncio. "
            "*Above its floor* is what our own code adds.",
            "",
            table(
                ["floor", "import (median)", "÷ boto3", f"≤ {TARGET_RATIO}"],
                [
                    [f, _ms(v["median"]), f"{v['ratio']:.2f}", ok(v["ratio"] <= TARGET_RATIO)]
                    for f, v in r["floors"].items()
                ],
            ),
            "",
            f"**Heaviest imports of the worst handler, `{worst}`** "
            f"(`python -X importtime`, one run; {r['total_us'] / 1000:.0f} ms of self time in "
            "all):",
            "",
            "By top-level package (self time summed):",
            "",
            table(
                ["package", "self time"],
                [[f"`{p}`", f"{us / 1000:.1f} ms"] for p, us in r["by_package"]],
            ),
            "",
            "Largest single modules (self time):",
            "",
            table(
                ["module", "self", "cumulative"],
                [
                    [f"`{m.strip()}`", f"{s / 1000:.1f} ms", f"{c / 1000:.1f} ms"]
                    for s, c, m in r["heaviest_self"]
                ],
            ),
            "",
            "**Powertools Tracer** (not used by Hotline): `from aws_lambda_powertools import "
            f"Tracer` after the handler is loaded adds {_ms(t['import'])} — the package's "
            "`__init__` already imports the tracing module whenever `Logger` or `Metrics` is "
            "imported — and creating an enabled `Tracer()` (with `LAMBDA_TASK_ROOT` set, as on "
            f"Lambda) adds **{_ms(t['init'])}** (median), the X-Ray SDK import and its patching "
            f"of botocore (`aws_xray_sdk.core` loaded: {t['xray_loaded']}). Keeping Tracer out "
            "keeps that off every cold start.",
            "",
        ]
    )
