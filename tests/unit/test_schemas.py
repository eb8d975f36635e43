"""The committed JSON Schemas are generated from the event models; drift fails here."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from hotline_core.events import ALL_EVENTS, CallRequested, Envelope
from hotline_core.schemas import render
from tests.conftest import ROOT, load_event


@pytest.mark.parametrize("event", ALL_EVENTS, ids=lambda e: e.detail_type)
def test_committed_schema_matches_its_model(event):
    path = ROOT / "schemas" / f"{event.detail_type}.json"
    assert path.exists(), f"run `make schemas`: {path.name} is missing"
    assert path.read_text(encoding="utf-8") == render(event.detail_type), (
        f"{path.name} drifted from its model; run `make schemas`"
    )


def test_no_schema_without_a_model():
    names = {p.stem for p in (ROOT / "schemas").glob("*.json")}
    assert names == {e.detail_type for e in ALL_EVENTS}


def test_every_event_carries_a_schema_version():
    for event in ALL_EVENTS:
        schema = json.loads(render(event.detail_type))
        metadata = schema["$defs"]["Metadata"]
        assert "schema_version" in metadata["properties"]


def test_the_sample_event_satisfies_the_model_and_a_bad_one_does_not():
    detail = load_event("eventbridge-call-requested.json")["detail"]
    parsed = Envelope[CallRequested].model_validate(detail)
    assert parsed.data.receiver.name == "ミズキ"
    detail["data"]["caller"]["phone"] = "090-1111-2222"
    with pytest.raises(ValidationError, match=r"caller\.phone"):
        Envelope[CallRequested].model_validate(detail)
