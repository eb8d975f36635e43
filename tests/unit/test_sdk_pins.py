"""The Lambda layer ships the AWS SDK the tests ran, and tests run with no environment setting
that Lambda lacks: every client's retries and timeouts come from code."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version

from tests.conftest import ROOT

SDK = ("boto3", "botocore")


def _pins(lines: list[str]) -> dict[str, str]:
    found = (re.fullmatch(r"\s*\"?([A-Za-z0-9_.\-\[\]]+)==([^\s\",]+)\"?,?\s*", s) for s in lines)
    return {m.group(1): m.group(2) for m in found if m}


def test_the_layer_pins_the_sdk_the_tests_ran():
    layer = _pins((ROOT / "core" / "requirements.txt").read_text().splitlines())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    dev = _pins(project)
    for name in SDK:
        assert layer[name] == dev[name] == version(name), name


def test_nothing_sets_aws_retries_for_the_tests_that_lambda_does_not_have():
    places = [
        ROOT / "Makefile",
        ROOT / ".ci" / "run",
        *sorted((ROOT / "tests").rglob("conftest.py")),
    ]
    for place in places:
        text = place.read_text()
        for setting in ("AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"):
            assert setting not in text, f"{place.relative_to(ROOT)} sets {setting}"
