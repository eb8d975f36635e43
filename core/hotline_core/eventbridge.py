"""The EventBridge event as EventBridge delivers it to a Lambda target.

Our own model, not Powertools' parser models: importing `aws_lambda_powertools.utilities.
parser.models` loads every AWS event model (about 170 ms at cold start) for the one we use.
It is as strict as the Powertools one: `account` and the other envelope fields are required.
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
