"""How long `hotline local` takes from launch to a 200 on /_local/health.

    .venv/bin/python scripts/time_to_healthy.py [--runs 5]

Starts the real command a few times on a free port and reports each figure and the median.
A measurement, not a test: it asserts nothing."""

from __future__ import annotations

import argparse
import statistics

from hotline_tools.local.process import local_process


def one_run(limit: float = 60.0) -> float:
    with local_process(limit=limit) as running:
        return running.seconds_to_healthy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    figures = []
    for i in range(1, runs + 1):
        figures.append(one_run())
        print(f"run {i}: {figures[-1]:.2f} s")
    print(f"median time to healthy over {runs} runs: {statistics.median(figures):.2f} s")


if __name__ == "__main__":
    main()
