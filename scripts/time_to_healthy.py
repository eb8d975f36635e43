"""How long `hotline local` takes from launch to a 200 on /_local/health.

    .venv/bin/python scripts/time_to_healthy.py [--runs 5]

Starts the real command a few times on a free port and reports each figure and the median.
A measurement, not a test: it asserts nothing."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - localhost
            return bool(response.status == 200)
    except OSError:
        return False


def one_run(limit: float = 60.0) -> float:
    port = free_port()
    url = f"http://127.0.0.1:{port}/_local/health"
    hotline = Path(sys.executable).with_name("hotline")
    env = dict(os.environ, AWS_DEFAULT_REGION="ap-northeast-1")
    started = time.perf_counter()
    process = subprocess.Popen(  # noqa: S603 - our own command
        [str(hotline), "local", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while not healthy(url):
            if process.poll() is not None:
                raise SystemExit(f"hotline local exited with {process.returncode}")
            if time.perf_counter() - started > limit:
                raise SystemExit(f"not healthy after {limit:.0f} s")
            time.sleep(0.02)
        return time.perf_counter() - started
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
