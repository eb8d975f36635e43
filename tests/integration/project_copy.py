"""A copy of what the local runtime reads (template.yaml, the functions' code, the contact
flows, generated/, the default directory) in a temporary root, to edit and start there: the
tests that change the template or a flow and see local behaviour follow share it."""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hotline_tools.local.engine import LocalHotline
from tests.conftest import ROOT

TIMED_OUT = "話せないようです"


def copy_project(target: Path) -> Path:
    """What the runtime reads from its root (generated/: what the template includes and
    nests); hotline_core is the installed package (the layer), so core/ is not needed."""
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copy2(ROOT / "template.yaml", target / "template.yaml")
    for folder in ("producers", "consumers", "contact_flow", "generated"):
        shutil.copytree(ROOT / folder, target / folder, ignore=ignore)
    (target / "tests" / "events").mkdir(parents=True)
    shutil.copy2(ROOT / "tests/events/phonenumber.json", target / "tests/events/phonenumber.json")
    return target


def edit_template(root: Path, old: str, new: str, *, after: str = "") -> None:
    """Replace the first `old` that follows `after` (a resource's heading), exactly once."""
    path = root / "template.yaml"
    text = path.read_text(encoding="utf-8")
    start = text.index(after) if after else 0
    at = text.index(old, start)
    path.write_text(text[:at] + new + text[at + len(old) :], encoding="utf-8")


def add_resources(root: Path, yaml_text: str) -> None:
    edit_template(root, "\nResources:\n", "\nResources:\n" + yaml_text)


def invite_rule_block(root: Path) -> str:
    """InviteReceiverFunction's own rule, as the template has it (to edit exactly that)."""
    text = (root / "template.yaml").read_text(encoding="utf-8")
    block = text[text.index("  InviteReceiverFunction:\n") : text.index("  StartTimerFunction:\n")]
    assert block.count("detail-type: [CallRequested]") == 1, "the template's layout changed"
    return block


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(tmp_path)


@pytest.fixture
def started() -> Iterator[Callable[..., LocalHotline]]:
    running: list[LocalHotline] = []

    def start(root: Path, **options: Any) -> LocalHotline:
        hotline = LocalHotline(root=root, **options).start()
        running.append(hotline)
        return hotline

    yield start
    for hotline in running:
        hotline.stop()


def post_json(url: str, data: Any) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(data).encode(), method="POST", headers={"Content-Type": "x/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
