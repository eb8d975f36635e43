"""Writes `schemas/<DetailType>.json` from the event models.

python -m hotline_core.schemas schemas
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hotline_core.events import ALL_EVENTS, json_schema


def render(event_name: str) -> str:
    event = next(e for e in ALL_EVENTS if e.detail_type == event_name)
    return json.dumps(json_schema(event), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def write_all(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for event in ALL_EVENTS:
        path = directory / f"{event.detail_type}.json"
        path.write_text(render(event.detail_type), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_all(Path(sys.argv[1] if len(sys.argv) > 1 else "schemas")):
        print(path)
