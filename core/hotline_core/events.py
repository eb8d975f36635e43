"""Domain events: the contract between producers and consumers.

Every event travels as EventBridge `detail` = {"metadata": {...}, "data": {...}} with source
`hotline` and detail-type = the event's name. The JSON Schemas in `schemas/` are generated from
these models (`python -m hotline_core.schemas`) and a test fails when they drift.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from hotline_core.phone import E164_PATTERN

if TYPE_CHECKING:
    from hotline_core.directory import Person

SOURCE = "hotline"
SCHEMA_VERSION = "1"

Phone = str  # validated as E.164 by E164_PATTERN


class _Model(BaseModel):
    # Schemas are built on first use: a handler pays only for the events it handles.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Party(_Model):
    name: str = Field(min_length=1)
    phone: Phone = Field(pattern=E164_PATTERN)
    lang: Literal["ja", "en"] = "ja"
    # Their quiet hours ("22:00-07:00") and the zone they are in, when they have any: an
    # invitation delivered late must still not reach them inside those hours.
    quiet_hours: str | None = Field(
        default=None, pattern=r"^[0-2][0-9]:[0-5][0-9]-[0-2][0-9]:[0-5][0-9]$"
    )
    timezone: str | None = Field(default=None, min_length=1, max_length=64)

    @classmethod
    def of(cls, person: Person) -> Party:
        quiet = person.quiet_hours
        if quiet is None:
            return cls(name=person.name, phone=person.phone, lang=person.lang)
        return cls(
            name=person.name,
            phone=person.phone,
            lang=person.lang,
            quiet_hours=quiet.span,
            timezone=quiet.timezone,
        )


class EventData(_Model):
    """Base of every event payload; `detail_type` is the EventBridge detail-type."""

    detail_type: ClassVar[str]


class CallRequested(EventData):
    detail_type: ClassVar[str] = "CallRequested"
    request_id: str = Field(min_length=1)
    caller: Party
    receiver: Party
    hotline_number: Phone = Field(pattern=E164_PATTERN)
    requested_at: AwareDatetime
    answer_by: AwareDatetime
    link: str = Field(pattern=r"^https?://")


class Accepted(EventData):
    detail_type: ClassVar[str] = "Accepted"
    request_id: str = Field(min_length=1)
    caller: Party
    receiver: Party
    accepted_at: AwareDatetime
    late: bool


class Declined(EventData):
    detail_type: ClassVar[str] = "Declined"
    request_id: str = Field(min_length=1)
    caller: Party
    receiver: Party
    declined_at: AwareDatetime


class TimedOut(EventData):
    detail_type: ClassVar[str] = "TimedOut"
    request_id: str = Field(min_length=1)
    caller: Party
    receiver: Party
    timed_out_at: AwareDatetime


class MutualCallMatched(EventData):
    """The receiver of an open request called the hotline for its caller: both want to talk.
    The request (the first caller's) is settled as accepted; both get the other's number."""

    detail_type: ClassVar[str] = "MutualCallMatched"
    request_id: str = Field(min_length=1)
    caller: Party
    receiver: Party
    matched_at: AwareDatetime


class BenefitRequested(EventData):
    detail_type: ClassVar[str] = "BenefitRequested"
    member_id: str = Field(min_length=1)
    phone: Phone = Field(pattern=E164_PATTERN)
    campaign_url: str = Field(pattern=r"^https://")
    requested_at: AwareDatetime


class Metadata(_Model):
    schema_version: Literal["1"] = "1"
    event_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    correlation_id: str = Field(min_length=1)
    created_at: AwareDatetime


DataT = TypeVar("DataT", bound=EventData)


class Envelope(_Model, Generic[DataT]):
    """What goes into EventBridge `detail`."""

    metadata: Metadata
    data: DataT


ALL_EVENTS: tuple[type[EventData], ...] = (
    CallRequested,
    Accepted,
    Declined,
    TimedOut,
    MutualCallMatched,
    BenefitRequested,
)
BY_DETAIL_TYPE: dict[str, type[EventData]] = {e.detail_type: e for e in ALL_EVENTS}


def envelope(data: EventData, *, correlation_id: str, now: datetime) -> dict[str, Any]:
    """The JSON-ready `detail` for `data`."""
    model: Any = Envelope[type(data)]  # type: ignore[misc]
    env = model(metadata=Metadata(correlation_id=correlation_id, created_at=now), data=data)
    dumped: dict[str, Any] = env.model_dump(mode="json")
    return dumped


def json_schema(event: type[EventData]) -> dict[str, Any]:
    schema = Envelope[event].model_json_schema()  # type: ignore[valid-type]
    schema["title"] = event.detail_type
    schema["$id"] = f"https://hotline.invalid/schemas/{event.detail_type}.json"
    schema["description"] = (
        f"EventBridge detail of source '{SOURCE}', detail-type '{event.detail_type}'"
    )
    return schema
