"""What every benchmark shares: paths, a Lambda-like process environment without AWS, and the
machine description that heads the report."""

from __future__ import annotations

import os
import platform
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HANDLER_DIRS = (ROOT / "producers", ROOT / "consumers")
TAKUMI, MIZUKI = "+819011112222", "+817033334444"
REGION = "ap-northeast-1"
# The default link base: a 10-character API id on the execute-api endpoint (template.yaml).
DEFAULT_BASE = f"https://a1b2c3d4e5.execute-api.{REGION}.amazonaws.com"
SHORT_BASE = "https://h.example.jp"

# No benchmark ever reaches AWS: fake credentials (moto), quiet handler logs; every client sets
# its own retries and timeouts in code, as on Lambda.
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_SERVICE_NAME": "hotline",
    "POWERTOOLS_METRICS_NAMESPACE": "Hotline",
    "POWERTOOLS_LOG_LEVEL": "ERROR",
    "POWERTOOLS_METRICS_DISABLED": "true",
}


def use_fake_aws() -> None:
    """Call before anything imports hotline_core: the handlers' logger reads its level once."""
    os.environ.update(FAKE_AWS)
    os.environ.pop("AWS_PROFILE", None)
    for path in (*HANDLER_DIRS, ROOT):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    import warnings

    # Powertools warns on every handler that publishes no metric; not a benchmark figure.
    warnings.filterwarnings("ignore", message="No application metrics to publish")


def machine() -> dict[str, str]:
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or "unknown",
        "cpus": str(os.cpu_count()),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (p99 of 200 values is the 198th smallest)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def ok(met: bool) -> str:
    return "✅" if met else "❌ over target"
