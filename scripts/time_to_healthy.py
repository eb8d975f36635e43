"""How long `hotline local` takes from launch to a 200 on /_local/health.

    .venv/bin/python scripts/time_to_healthy.py [--runs 5]

Starts the real command a few times on a free port and reports each figure and the median.
A measurement, not a test: it asserts nothing. `make bench` (benchmarks/local_runtime.py)
measures time to healthy with this module's `measure`."""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from hotline_tools.local.process import NotHealthy, local_process


def one_run(limit: float = 60.0) -> float:
    with local_process(limit=limit) as running:
        return running.seconds_to_healthy


def measure(runs: int, limit: float = 60.0) -> dict[str, Any]:
    """`runs` launches: each figure in seconds, their median, and why any run failed."""
    figures: list[float] = []
    problems: list[str] = []
    for _ in range(runs):
        try:
            figures.append(one_run(limit))
        except NotHealthy as exc:
            problems.append(str(exc))
    return {
        "runs": figures,
        "median": statistics.median(figures) if figures else float("nan"),
        "problems": problems,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    result = measure(runs)
    for i, figure in enumerate(result["runs"], start=1):
        print(f"run {i}: {figure:.2f} s")
    for problem in result["problems"]:
        print(f"failed run: {problem}")
    if result["runs"]:
        print(f"median time to healthy over {len(result['runs'])} runs: {result['median']:.2f} s")


if __name__ == "__main__":
    main()
