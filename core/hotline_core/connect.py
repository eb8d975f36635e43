"""The Amazon Connect contact-flow event, as a parser model (only the fields we use)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hotline_core.phone import E164_PATTERN


class _Endpoint(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    address: str = Field(alias="Address", min_length=1)


class _DialledEndpoint(_Endpoint):
    # The hotline number: it picks the circle and travels in CallRequested, so a value no
    # phone could dial is refused here, before anything is looked up or stored. (The caller's
    # address is not checked: a withheld number arrives as "anonymous", an unknown caller.)
    address: str = Field(alias="Address", pattern=E164_PATTERN)


class _ContactData(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    contact_id: str = Field(alias="ContactId", min_length=1, max_length=256)
    customer_endpoint: _Endpoint = Field(alias="CustomerEndpoint")
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
    def caller(self) -> str:
        return self.details.contact_data.customer_endpoint.address

    @property
    def dialled(self) -> str:
        return self.details.contact_data.system_endpoint.address

    @property
    def parameters(self) -> dict[str, str]:
        return self.details.parameters
