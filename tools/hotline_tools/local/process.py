"""Starts `hotline local` as its own process and waits until it is healthy: for the end-to-end
and browser tests, the startup measurement and the benchmarks, which all need exactly this."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hotline_tools.local.template import ROOT


class NotHealthy(RuntimeError):
    """The process exited, or did not answer /_local/health with 200 in time."""


@dataclass
class LocalProcess:
    url: str
    seconds_to_healthy: float
    process: subprocess.Popen[bytes]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/_local/health", timeout=2) as response:  # noqa: S310
            return bool(response.status == 200)
    except OSError:
        return False


def hotline_command() -> list[str]:
    exe = Path(sys.executable).with_name("hotline")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "hotline_tools.cli"]


@contextmanager
def local_process(
    *args: str, log: Path | None = None, limit: float = 60.0
) -> Iterator[LocalProcess]:
    """`hotline local --port <free> [args]` until healthy; stopped with SIGTERM (Ctrl-C's
    clean path) on exit. Output goes to `log` (or nowhere)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(
        os.environ,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",  # noqa: S106 - moto's fake credentials
        AWS_DEFAULT_REGION="ap-northeast-1",
        PYTHONUNBUFFERED="1",
    )
    out = log.open("wb") if log else subprocess.DEVNULL
    started = time.perf_counter()
    try:
        process = subprocess.Popen(  # noqa: S603 - our own command
            [*hotline_command(), "local", "--port", str(port), *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    finally:
        if log:
            out.close()  # type: ignore[union-attr]
    try:
        while not healthy(url):
            if process.poll() is not None:
                raise NotHealthy(f"hotline local exited with {process.returncode}")
            if time.perf_counter() - started > limit:
                raise NotHealthy(f"hotline local not healthy after {limit:.0f} s")
            time.sleep(0.02)
        yield LocalProcess(url, time.perf_counter() - started, process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
