"""The EventBridge event as EventBridge delivers it to a Lambda target.

Our own model, not Powertools' parser: older Powertools loaded every AWS event model with it
(about 170 ms at cold start); 3.37 loads them on first use, and the parser with its
EventBridge model costs ~3-6 ms (BENCHMARKS.md, section 4), so this is now a small saving,
kept because it is as strict as the Powertools one (`account` and the other envelope fields
are required) and states exactly what the consumers rely on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EventBridgeEvent(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True)

    version: str
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    account: str = Field(min_length=1)
    time: datetime
    region: str = Field(min_length=1)
    resources: list[str]
    detail_type: str = Field(alias="detail-type", min_length=1)
    detail: dict[str, Any]
    replay_name: str | None = Field(default=None, alias="replay-name")
