"""The Amazon Connect contact-flow event, as a parser model (only the fields we use)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hotline_core.phone import E164_PATTERN

# What Connect (and carriers) put in the caller's address when there is no number to show.
WITHHELD_ADDRESSES = frozenset({"", "anonymous", "restricted", "unavailable", "private"})
# The flows' first action invokes their Lambda ASYNCHRONOUSLY with this parameter while the
# greeting plays, so the caller's first synchronous invocation meets a warm container.
WARM_UP_PARAMETER = "warm"


class _CallerEndpoint(BaseModel):
    # Not checked against E.164: an unknown caller's number is answered "not registered".
    # Missing, null, empty or "anonymous" is a withheld number (see `withheld`), not an error:
    # an error would take the flow's error branch ("unavailable"), the wrong words.
    model_config = ConfigDict(populate_by_name=True)
    address: str | None = Field(alias="Address", default=None)


class _DialledEndpoint(BaseModel):
    # The hotline number: it picks the circle and travels in CallRequested, so a value no
    # phone could dial is refused here, before anything is looked up or stored.
    model_config = ConfigDict(populate_by_name=True)
    address: str = Field(alias="Address", pattern=E164_PATTERN)


class _ContactData(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    contact_id: str = Field(alias="ContactId", min_length=1, max_length=256)
    customer_endpoint: _CallerEndpoint | None = Field(alias="CustomerEndpoint", default=None)
    system_endpoint: _DialledEndpoint = Field(alias="SystemEndpoint")
    attributes: dict[str, str] = Field(alias="Attributes", default_factory=dict)


class _Details(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    contact_data: _ContactData = Field(alias="ContactData")
    parameters: dict[str, str] = Field(alias="Parameters", default_factory=dict)


class ConnectContactEvent(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    details: _Details = Field(alias="Details")
    name: str = Field(alias="Name", pattern="^ContactFlowEvent$")

    @classmethod
    def parse(cls, event: dict[str, Any]) -> ConnectContactEvent:
        return cls.model_validate(event)

    @property
    def contact_id(self) -> str:
        return self.details.contact_data.contact_id

    @property
    def withheld(self) -> bool:
        """No usable caller ID: no CustomerEndpoint, no address, or one that stands for a
        withheld number ("anonymous", empty)."""
        endpoint = self.details.contact_data.customer_endpoint
        address = endpoint.address if endpoint is not None else None
        return address is None or address.strip().lower() in WITHHELD_ADDRESSES

    @property
    def caller(self) -> str:
        """The caller's number as Connect gives it; "" when it is withheld."""
        endpoint = self.details.contact_data.customer_endpoint
        if self.withheld or endpoint is None or endpoint.address is None:
            return ""
        return endpoint.address

    @property
    def dialled(self) -> str:
        return self.details.contact_data.system_endpoint.address

    @property
    def parameters(self) -> dict[str, str]:
        return self.details.parameters

    @property
    def warm_up(self) -> bool:
        """The flow's warm-up invocation: build the clients, answer nothing, change nothing."""
        return self.parameters.get(WARM_UP_PARAMETER) == "1"
