"""Cold start: how long importing each handler module takes in a fresh interpreter, beside a
bare `import boto3` in the same round; what the stack costs before any code of ours; the
heaviest imports, which of them the handlers avoid and what that saves; what Tracer adds."""

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

# What the project's conventions make every handler import before any code of ours: botocore
# (the clients), Powertools Logger and Metrics, and pydantic with one model validated (the
# first model a process builds loads pydantic's schema machinery).
FLOOR = (
    "import botocore.config, botocore.exceptions, botocore.session\n"
    "from aws_lambda_powertools import Logger, Metrics\n"
    "from pydantic import BaseModel\n"
    "class _M(BaseModel):\n"
    "    x: int\n"
    "_M(x=1)\n"
)

# Heavy imports a handler can do without, each timed on top of the floor: `module` (its
# presence in sys.modules shows a handler imports it), `code` (what importing it takes),
# `needed_by` (handlers that do need it), what was done about it and what could be.
AVOIDABLE: tuple[dict[str, Any], ...] = (
    {
        "module": "boto3",
        "what": "boto3 on top of botocore (its resource layer, s3transfer)",
        "code": "import boto3",
        "needed_by": (),
        "done": "clients are made with botocore (`runtime.clients.client`): a boto3 client is "
        "the same botocore client",
        "todo": "make the clients with botocore (`botocore.session`): a boto3 client is the "
        "same botocore client",
    },
    {
        "module": "aws_lambda_powertools.event_handler",
        "what": "Powertools `event_handler` (its `__init__` loads every resolver, and asyncio)",
        "code": "import aws_lambda_powertools.event_handler",
        "needed_by": (),
        "done": "`answer_link` routes its two routes (`GET|POST /a/{token}`) itself",
        "todo": "`answer_link` could route its two routes (`GET|POST /a/{token}`) itself",
    },
    {
        "module": "aws_lambda_powertools.utilities.parser",
        "what": "Powertools parser and its EventBridge model (its event models load on first use)",
        "code": "from aws_lambda_powertools.utilities.parser import parse\n"
        "from aws_lambda_powertools.utilities.parser.models import EventBridgeModel",
        "needed_by": (),
        "done": "our own EventBridge envelope model (`hotline_core.eventbridge`)",
        "todo": "use our own EventBridge envelope model (`hotline_core.eventbridge`)",
    },
    {
        "module": "aws_lambda_powertools.utilities.idempotency",
        "what": "Powertools idempotency utility",
        "code": "import aws_lambda_powertools.utilities.idempotency",
        "needed_by": (),
        "done": "one conditional `PutItem` per side effect (`hotline_core.adapters.idempotency`)",
        "todo": "use `hotline_core.adapters.idempotency`",
    },
    {
        "module": "aws_xray_sdk",
        "what": "the X-Ray SDK (Powertools Tracer)",
        "code": "import aws_xray_sdk.core",
        "needed_by": (),
        "done": "no Tracer (what an enabled one adds is below)",
        "todo": "drop Tracer",
    },
    {
        "module": "hotline_core.directory",
        "what": "the directory parser with quiet hours and PIN hashing (zoneinfo, difflib)",
        "code": "import hotline_core.directory",
        "needed_by": ("call_request",),
        "done": "type-only imports elsewhere",
        "todo": "type-only or function-level imports in the modules every handler imports "
        "(`messages`, `pages`, `ports`, `events`, `telling`, `time_out`, `runtime`)",
    },
)
WATCH = ",".join(a["module"] for a in AVOIDABLE)
# Every event model's pydantic schema, built up front: what `defer_build=True` on the event
# models (`hotline_core.events`) leaves to the first event a handler parses, one model each.
ALL_EVENT_SCHEMAS = "for e in ALL_EVENTS:\n    Envelope[e].model_rebuild(force=True)\n"
EVENTS_IMPORTED = FLOOR + "from hotline_core.events import ALL_EVENTS, Envelope\n"

# Runs in a fresh interpreter: `setup` untimed, then `timed` timed; reports which watched
# modules got loaded and, for "tracer", what an enabled Tracer() adds after that. JSON out.
PROBE = """
import json, sys, time
setup, timed, watch, tracer = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
ns = {}
exec(setup, ns)
t = time.perf_counter()
exec(timed, ns)
took = time.perf_counter() - t
extra = {"loaded": [m for m in watch.split(",") if m and m in sys.modules]}
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
    env.update(AWS_LAMBDA_FUNCTION_NAME="bench", LAMBDA_TASK_ROOT=str(ROOT / (code_dir or "")))
    env.pop("POWERTOOLS_TRACE_DISABLED", None)
    # Any value, "0" too, stops Python writing .pyc files; the warm-up round must write them.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    # Lambda's sys.path: the function's code, then the layer (/opt/python holds core/'s files).
    env["PYTHONPATH"] = (
        os.pathsep.join([str(ROOT / code_dir), str(ROOT / "core")]) if code_dir else ""
    )
    return env


def _probe(
    timed: str, code_dir: str | None, setup: str = "", tracer: bool = False
) -> dict[str, Any]:
    out = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", PROBE, setup, timed, WATCH, "1" if tracer else "0"],
        cwd=ROOT / (code_dir or ""),
        env=_env(code_dir),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if out.returncode:
        raise RuntimeError(f"timing {timed.strip()!r} failed:\n{out.stderr[-2000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def importtime(name: str, code_dir: str) -> list[tuple[int, int, int, str]]:
    """`python -X importtime -c 'import name'`: (self µs, cumulative µs, depth, module)."""
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
            depth = (len(m.group(3)) - 1) // 2
            rows.append((int(m.group(1)), int(m.group(2)), depth, m.group(4)))
    return rows


def direct_imports(rows: list[tuple[int, int, int, str]], name: str) -> list[tuple[int, str]]:
    """What `name` imports itself, with each one's cumulative µs (what it brought in first).
    importtime prints a module after everything it imported, so `name`'s direct imports are
    the depth-1 lines just before its own depth-0 line."""
    pending: list[tuple[int, str]] = []
    for _, cumulative, depth, module in rows:
        if depth == 1:
            pending.append((cumulative, module))
        elif depth == 0:
            if module == name:
                return pending
            pending = []
    return []


def measure(runs: int = 10) -> dict[str, Any]:
    # One warm-up round so the OS file cache and .pyc files are in place for every round.
    _probe("import boto3", None)
    for name, code_dir in HANDLERS.items():
        _probe(f"import {name}", code_dir)
    _probe(FLOOR, None)
    times: dict[str, list[float]] = defaultdict(list)
    loaded: dict[str, set[str]] = defaultdict(set)
    for _ in range(runs):  # interleaved rounds: a busy moment hits every module alike
        times["boto3"].append(_probe("import boto3", None)["import"])
        times["floor"].append(_probe(FLOOR, None)["import"])
        for name, code_dir in HANDLERS.items():
            got = _probe(f"import {name}", code_dir)
            times[name].append(got["import"])
            for module in got["loaded"]:
                loaded[module].add(name)
    boto3 = median(times["boto3"])
    floor = median(times["floor"])
    handlers = {
        name: {
            "median": median(times[name]),
            "ratio": median(times[name]) / boto3,
            "above_floor": median(times[name]) - floor,
        }
        for name in HANDLERS
    }
    # What each avoidable import costs on top of the floor, and who still imports it.
    extra_runs = max(3, runs // 2)
    avoidable = []
    for a in AVOIDABLE:
        costs = [_probe(a["code"], "consumers", setup=FLOOR)["import"] for _ in range(extra_runs)]
        imported_by = sorted(loaded.get(a["module"], ()))
        avoidable.append(
            {
                **{k: a[k] for k in ("module", "what", "needed_by", "done", "todo")},
                "cost": median(costs),
                "imported_by": imported_by,
                "avoided": set(imported_by) <= set(a["needed_by"]),
            }
        )
    schemas = [
        _probe(ALL_EVENT_SCHEMAS, "consumers", setup=EVENTS_IMPORTED)["import"]
        for _ in range(extra_runs)
    ]
    worst = max(handlers, key=lambda n: handlers[n]["ratio"])
    tracer: dict[str, list[float]] = defaultdict(list)
    xray = False
    for _ in range(extra_runs):
        got = _probe(f"import {worst}", HANDLERS[worst], tracer=True)
        tracer["import"].append(got["tracer_import"])
        tracer["init"].append(got["tracer_init"])
        xray = xray or bool(got["xray_loaded"])
    rows = importtime(worst, HANDLERS[worst])
    by_package: dict[str, int] = defaultdict(int)
    for self_us, _, _, module in rows:
        by_package[module.split(".")[0]] += self_us
    return {
        "runs": runs,
        "extra_runs": extra_runs,
        "boto3": boto3,
        "floor": {"median": floor, "ratio": floor / boto3},
        "handlers": handlers,
        "worst": worst,
        "target_met": all(h["ratio"] <= TARGET_RATIO for h in handlers.values()),
        "avoidable": avoidable,
        "event_schemas": median(schemas),
        "events_deferred": _events_deferred(),
        "tracer": {
            "import": median(tracer["import"]),
            "init": median(tracer["init"]),
            "xray_loaded": xray,
        },
        "total_us": sum(r[0] for r in rows),
        "by_package": sorted(by_package.items(), key=lambda kv: -kv[1])[:10],
        "heaviest_self": sorted(rows, key=lambda r: -r[0])[:10],
        "direct": sorted(direct_imports(rows, worst), key=lambda r: -r[0])[:12],
    }


def _events_deferred() -> bool:
    from hotline_core.events import ALL_EVENTS

    return all(e.model_config.get("defer_build") for e in ALL_EVENTS)


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
    floor = r["floor"]
    budget = TARGET_RATIO * r["boto3"] - floor["median"]
    above = [h["above_floor"] for h in r["handlers"].values()]
    if r["target_met"]:
        verdict = f"Every handler is within {TARGET_RATIO}× bare `import boto3`."
    else:
        verdict = (
            f"**Not met.** The floor alone is {floor['ratio']:.2f}× bare `import boto3`, which "
            f"leaves {budget * 1000:+.0f} ms for all of our own code under the "
            f"{TARGET_RATIO}× target; our code adds {min(above) * 1000:+.0f} (leanest handler) "
            f"to {max(above) * 1000:+.0f} ms (heaviest) on top of the floor. "
            + (
                "With botocore, Powertools Logger and Metrics and pydantic models validated at "
                "cold start (the project's conventions), the target cannot be met however lean "
                "our own code is."
                if budget <= 0
                else "Our own code would have to fit in that margin; no handler's does."
            )
            + " What our code adds is `hotline_core` in the by-package table below, and any "
            "import of the next table that a handler still makes."
        )
    avoid_rows = []
    for a in r["avoidable"]:
        who = ", ".join(f"`{w}`" for w in a["imported_by"]) or "none"
        avoid_rows.append(
            [
                a["what"],
                f"`{a['module']}`",
                f"+{a['cost'] * 1000:.0f} ms",
                f"{who}: {a['done']}" if a["avoided"] else who,
                "" if a["avoided"] else a["todo"],
            ]
        )
    deferred = r["events_deferred"]
    avoid_rows.append(
        [
            "building every event model's pydantic schema at import",
            "`hotline_core.events`",
            f"+{r['event_schemas'] * 1000:.0f} ms",
            "none: `defer_build=True`, so a handler builds only the models of the events it "
            "parses, on its first invocation"
            if deferred
            else "every handler",
            "" if deferred else "`defer_build=True` on the event models",
        ]
    )
    return "\n".join(
        [
            "## 4b. Cold start: handler import time, in detail",
            "",
            f"Each figure is the median of {r['runs']} fresh interpreters (`{sys.executable} "
            "-c`, `time.perf_counter()` around the import, the function's code directory "
            "first on `sys.path` and `core/` after it, as Lambda has the function and its "
            "layer, `.pyc` files written by one unmeasured warm-up round). Every round "
            "imports bare `boto3`, the floor and every handler in turn, so the ratio compares "
            "like with like. Interpreter start-up is not included (Lambda's is not either). "
            "Local machine, not Lambda: compare the ratios, not the milliseconds.",
            "",
            f"Bare `import boto3`: **{_ms(r['boto3'])}** (median).",
            "",
            table(
                [
                    "handler",
                    "code",
                    "import (median)",
                    "÷ boto3",
                    "above the floor",
                    f"≤ {TARGET_RATIO}",
                ],
                rows,
            ),
            "",
            "**The floor**: what the project's conventions import before any code of ours, "
            "timed in the same rounds: botocore (session, config, exceptions), Powertools "
            "`Logger` and `Metrics`, and pydantic with one model validated (a process's first "
            f"model loads pydantic's schema machinery): **{_ms(floor['median'])}, "
            f"{floor['ratio']:.2f}× bare `import boto3`** "
            f"({ok(floor['ratio'] <= TARGET_RATIO)}). *Above the floor* is what our own code "
            "adds, and any import of the table below.",
            "",
            verdict,
            "",
            "**The heaviest imports and what was done about them.** Each is timed on top of "
            f"the floor (median of {r['extra_runs']} fresh interpreters; what it costs a "
            "handler that imports it), and *imported by* is read from `sys.modules` after "
            "each handler's import in the rounds above:",
            "",
            table(
                ["import", "module", "cost", "imported by: what was done", "what could be done"],
                avoid_rows,
            ),
            "",
            f"**Where the worst handler's time goes, `{worst}`** (`python -X importtime`, one "
            f"run; {r['total_us'] / 1000:.0f} ms of self time in all, importtime's own "
            "overhead included). Its direct imports, each with what it brought in first "
            "(cumulative):",
            "",
            table(
                ["import", "cumulative"],
                [[f"`{m}`", f"{c / 1000:.1f} ms"] for c, m in r["direct"]],
            ),
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
                    [f"`{m}`", f"{s / 1000:.1f} ms", f"{c / 1000:.1f} ms"]
                    for s, c, _, m in r["heaviest_self"]
                ],
            ),
            "",
            "**Powertools Tracer** (not used by Hotline): `from aws_lambda_powertools import "
            f"Tracer` after the handler is loaded adds {_ms(t['import'])} (the package's "
            "`__init__` already imports the tracing module whenever `Logger` or `Metrics` is "
            "imported), and creating an enabled `Tracer()` (with `LAMBDA_TASK_ROOT` set, as on "
            f"Lambda) adds **{_ms(t['init'])}** (median of {r['extra_runs']}): the X-Ray SDK "
            f"import and its patching of botocore (`aws_xray_sdk.core` loaded: "
            f"{t['xray_loaded']}). Keeping Tracer out keeps that off every cold start.",
            "",
        ]
    )
